"""A bug met on one message is counted and logged now and then; the next message is handled."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector import service
from collector.service import Collector, CollectorSettings
from contract.fleet import status_topic
from contract.mqtt import BrokerConfig
from contract.result import encode_result, result_topic
from tests.strategies import sample_result


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a bug")


async def test_an_unexpected_error_is_counted_and_logged_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = CollectorSettings(
        broker=BrokerConfig(), store_url="http://127.0.0.1:9", state_dir=str(tmp_path)
    )
    registry = CollectorRegistry()
    collector = Collector(settings, registry)
    monkeypatch.setattr(service, "check", _boom)
    monkeypatch.setattr(collector.probes, "apply_status", _boom)
    payload = encode_result(sample_result())
    try:
        with caplog.at_level(logging.ERROR, logger="qosfleet.collector"):
            for _ in range(3):
                collector.on_message(result_topic("vn-79-test-probe"), payload)
            collector.on_message(status_topic("vn-79-test-probe"), b"{}")
    finally:
        await collector.close()

    rejected = "qos_collector_results_rejected_total"
    assert registry.get_sample_value(rejected, {"reason": "internal"}) == 3.0
    fleet = "qos_collector_fleet_messages_rejected_total"
    assert registry.get_sample_value(fleet, {"kind": "status", "reason": "internal"}) == 1.0
    [record] = caplog.records
    assert record.exc_info is not None
    assert "RuntimeError: a bug" in caplog.text
