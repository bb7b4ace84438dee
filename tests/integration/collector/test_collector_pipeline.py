"""Enrolled, signed results through real mosquitto into real VictoriaMetrics; bad ones refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import Receipt, receipt_topic
from contract.signing import new_private_key, sign_result
from lab.services import Mosquitto, VictoriaMetrics
from tests.integration.collector.support import (
    EnrolledProbe,
    receipts,
    running_collector,
    settings_for,
)
from tests.strategies import sample_result

pytestmark = pytest.mark.integration


async def test_signed_results_stored_once_and_bad_ones_refused_with_their_reason(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    probe = EnrolledProbe.new("vn-79-pipeline")
    stranger = EnrolledProbe.new("vn-79-stranger")  # never enrolled
    good = probe.result()
    unsigned = sample_result(probe.probe_id)
    forged = sign_result(sample_result(probe.probe_id), new_private_key())
    stale = probe.result(
        started_at=datetime.now(UTC) - timedelta(days=40),
        finished_at=datetime.now(UTC) - timedelta(days=40) + timedelta(seconds=10),
    )
    settings = settings_for(broker.url, store.url, tmp_path / "state", fleet_interval_s=0.5)
    async with (
        mqtt_client(BrokerConfig(url=broker.url), identifier="pipeline-probe") as client,
        running_collector(settings) as registry,
    ):
        await probe.enroll(client)
        await probe.announce(client, "online")
        await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        await client.subscribe(receipt_topic(stranger.probe_id), qos=1)
        await probe.send(client, good)
        assert await receipts(client, 1, timeout_s=10) == [Receipt(id=good.id, status="stored")]
        await probe.send(client, good)  # the probe missed the receipt: it is said again
        for bad in (unsigned, forged, stale):
            await probe.send(client, bad)
        await probe.send(client, b"x" * 70_000)
        await stranger.send(client, stranger.result())
        got = await receipts(client, 4, timeout_s=10)
        assert got[0] == Receipt(id=good.id, status="stored")
        refused = {r.id: r for r in got[1:]}
        assert {r.status for r in refused.values()} == {"rejected"}
        assert (refused[unsigned.id].reason or "").startswith("unsigned")
        assert (refused[forged.id].reason or "").startswith("bad-signature")
        assert (refused[stale.id].reason or "").startswith("too-old")
        assert await receipts(client, 1, timeout_s=1) == []  # none for oversized or stranger

        def counted(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        rejected = "qos_collector_results_rejected_total"
        assert counted(rejected, reason="replay") == 1.0
        assert counted(rejected, reason="unsigned") == 1.0
        assert counted(rejected, reason="bad-signature") == 1.0
        assert counted(rejected, reason="too-old") == 1.0
        assert counted(rejected, reason="too-large") == 1.0
        assert counted(rejected, reason="not-enrolled") == 1.0
        assert counted("qos_collector_results_accepted_total") == 1.0
        assert counted("qos_collector_probes_online") == 1.0
        online = store.wait_for(f'qos_probe_online{{probe="{probe.probe_id}"}}')
        assert online[0]["metric"] == {
            "__name__": "qos_probe_online",
            "probe": probe.probe_id,
            "province": "79",
            "commune": "26734",
            "village": "Ấp Thạnh Hòa",
        }
        assert online[0]["value"][1] == "1"

        await probe.announce(client, "offline")  # what the broker publishes as the last will
        async with asyncio.timeout(10):
            while counted("qos_collector_probes_online") != 0.0:  # noqa: ASYNC110 - a gauge
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the change is written at once, not at the next full round
        offline = store.wait_for(f'qos_probe_online{{probe="{probe.probe_id}"}} == 0')
        assert len(offline) == 1

    store.flush()
    samples = store.export(f'qos_download_mbps{{probe="{probe.probe_id}"}}')
    assert [len(s["values"]) for s in samples] == [1]  # sent twice, stored once
