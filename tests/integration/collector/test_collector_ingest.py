"""The collector with real mosquitto and VictoriaMetrics: bad results counted, good stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry
from uuid6 import uuid7

from collector.ingest import IngestPolicy
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import (
    Receipt,
    encode_result,
    receipt_topic,
    result_topic,
)
from lab.services import Mosquitto, VictoriaMetrics, free_port
from tests.integration.collector import support
from tests.integration.collector.support import receipts, settings_for
from tests.strategies import sample_result

pytestmark = pytest.mark.integration


@asynccontextmanager
async def running_collector(
    broker: Mosquitto, store_url: str, state_dir: Path
) -> AsyncIterator[CollectorRegistry]:
    """A collector that, like the lab's, takes unsigned results of probes it has no meta for."""
    settings = settings_for(
        broker.url,
        store_url,
        state_dir,
        verdict_interval_s=60.0,  # as `qos-collector serve` runs by default
        policy=IngestPolicy(signatures="optional", enrollment="optional"),
    )
    async with support.running_collector(settings) as registry:
        yield registry


async def test_bad_results_are_counted_by_reason_and_good_ones_stored(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    good = sample_result()
    future = sample_result(finished_at=datetime.now(UTC) + timedelta(hours=2))
    impostor = sample_result("vn-79-other-probe")
    unlocated = msgspec.structs.replace(sample_result(), location=None)
    async with running_collector(broker, store.url, tmp_path) as registry:
        async with mqtt_client(BrokerConfig(url=broker.url), identifier="test-probe") as client:
            await client.subscribe(receipt_topic(good.probe_id), qos=1)
            topic = result_topic(good.probe_id)
            await client.publish(topic, b"{not json", qos=1)
            await client.publish(topic, b"\xff\x00\x13", qos=1)
            await client.publish(topic, encode_result(future), qos=1)
            await client.publish(topic, encode_result(impostor), qos=1)
            await client.publish(topic, encode_result(unlocated), qos=1)
            await client.publish(topic, encode_result(good), qos=1)
            got = await receipts(client, 2, timeout_s=10)
        # A result that can never be accepted is refused for good, so the probe can drop it.
        assert {(r.id, r.status) for r in got} == {
            (good.id, "stored"),
            (future.id, "rejected"),
        }

        def rejected(reason: str) -> float | None:
            return registry.get_sample_value(
                "qos_collector_results_rejected_total", {"reason": reason}
            )

        assert rejected("malformed") == 2.0
        assert rejected("future") == 1.0
        assert rejected("topic-mismatch") == 1.0
        assert rejected("not-enrolled") == 1.0
        assert registry.get_sample_value("qos_collector_results_accepted_total") == 1.0

    series = store.wait_for(
        f'{{__name__=~"qos_.+", probe="{good.probe_id}"}}', at=good.finished_at.timestamp()
    )
    names = {s["metric"]["__name__"] for s in series}
    assert "qos_bytes_used" in names
    assert all(s["metric"]["village"] == "Ấp Thạnh Hòa" for s in series)


async def test_store_down_means_no_receipt_and_no_crash(tmp_path: Path, broker: Mosquitto) -> None:
    closed_port = free_port()
    result = sample_result()
    async with running_collector(broker, f"http://127.0.0.1:{closed_port}", tmp_path) as registry:
        async with mqtt_client(BrokerConfig(url=broker.url), identifier="test-probe") as client:
            await client.subscribe(receipt_topic(result.probe_id), qos=1)
            await client.publish(result_topic(result.probe_id), encode_result(result), qos=1)
            got = await receipts(client, 1, timeout_s=3)
        assert got == []
        assert (registry.get_sample_value("qos_collector_store_write_errors_total") or 0) >= 1
        assert registry.get_sample_value("qos_collector_results_accepted_total") == 0.0
        assert registry.get_sample_value("qos_collector_broker_connected") == 1.0
        assert registry.get_sample_value("qos_collector_buffer_depth") == 1.0


def test_receipt_wire_format_is_small_json() -> None:
    receipt = Receipt(id=uuid7(), status="stored")
    assert set(json.loads(msgspec.json.encode(receipt))) == {"id", "status"}
