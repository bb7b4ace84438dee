"""Nothing lost: store outages, collector restarts; receipts only once the store has a result."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import receipt_topic
from lab.services import Mosquitto, VictoriaMetrics, free_port
from tests.integration.collector.support import (
    EnrolledProbe,
    receipts,
    running_collector,
    settings_for,
)

pytestmark = pytest.mark.integration


async def _until(registry: CollectorRegistry, name: str, value: float, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while registry.get_sample_value(name) != value:  # noqa: ASYNC110 - a gauge
            await asyncio.sleep(0.05)


async def test_store_stopped_then_restarted_loses_nothing_and_receipts_wait_for_it(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    probe = EnrolledProbe.new("vn-79-outage")
    sent = [probe.result(seq=seq) for seq in range(1, 41)]
    settings = settings_for(broker.url, store.url, tmp_path / "state")
    async with (
        mqtt_client(BrokerConfig(url=broker.url), identifier="outage-probe") as client,
        running_collector(settings) as registry,
    ):
        await probe.enroll(client)
        await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        store.stop()
        for result in sent:
            await probe.send(client, result)
        await _until(registry, "qos_collector_buffer_depth", 40.0, timeout_s=10)
        assert await receipts(client, 1, timeout_s=1) == []  # not stored: no receipt
        assert registry.get_sample_value("qos_collector_store_up") == 0.0
        store.start()  # same data directory, same port
        got = await receipts(client, 40, timeout_s=40)
        assert {r.id for r in got} == {r.id for r in sent}
        assert {r.status for r in got} == {"stored"}
        await _until(registry, "qos_collector_buffer_depth", 0.0, timeout_s=5)
        assert registry.get_sample_value("qos_collector_store_up") == 1.0
        assert registry.get_sample_value("qos_collector_results_accepted_total") == 40.0
    store.flush()
    stored = store.export(f'qos_seq{{probe="{probe.probe_id}"}}')
    assert sorted(v for s in stored for v in s["values"]) == list(range(1, 41))


async def test_buffered_results_and_enrollments_survive_a_collector_restart(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    probe = EnrolledProbe.new("vn-79-restart")
    buffered = [probe.result(seq=seq) for seq in range(1, 6)]
    later = probe.result(seq=6)
    state = tmp_path / "state"
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with mqtt_client(BrokerConfig(url=broker.url), identifier="restart-probe") as client:
        await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        async with running_collector(settings_for(broker.url, nowhere, state)) as registry:
            # Not retained: only the collector's own registry can remember this enrollment.
            await probe.enroll(client, retain=False)
            for result in buffered:
                await probe.send(client, result)
            await _until(registry, "qos_collector_buffer_depth", 5.0, timeout_s=10)
        async with running_collector(settings_for(broker.url, store.url, state)) as registry:
            got = await receipts(client, 5, timeout_s=15)
            assert {r.id for r in got} == {r.id for r in buffered}
            await probe.send(client, later)  # accepted: the registry was kept on disk
            assert [r.id for r in await receipts(client, 1, timeout_s=10)] == [later.id]
            assert registry.get_sample_value("qos_collector_probes_enrolled") == 1.0
    store.flush()
    stored = store.export(f'qos_seq{{probe="{probe.probe_id}"}}')
    assert sorted(v for s in stored for v in s["values"]) == [1, 2, 3, 4, 5, 6]
