"""Enrolled, signed results through real mosquitto into real VictoriaMetrics; bad ones refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import (
    BATCH_SCHEMA,
    Receipt,
    ResultBatch,
    encode_batch,
    receipt_topic,
    results_topic,
)
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


async def test_a_batch_is_checked_per_result_and_answered_with_one_grouped_receipt(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    probe = EnrolledProbe.new("vn-79-batch")
    good = [probe.result(seq) for seq in range(1, 9)]
    forged = sign_result(probe.result(20), new_private_key())
    unsigned = msgspec.structs.replace(probe.result(21), signature=None)
    sent = [*good[:4], forged, *good[4:], unsigned]
    settings = settings_for(broker.url, store.url, tmp_path / "state")
    async with (
        mqtt_client(BrokerConfig(url=broker.url), identifier="batch-probe") as client,
        running_collector(settings) as registry,
    ):
        await probe.enroll(client)
        await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        batch = encode_batch(ResultBatch(schema=BATCH_SCHEMA, results=tuple(sent)))
        await client.publish(results_topic(probe.probe_id), batch, qos=1)
        got = await receipts(client, 3, timeout_s=10)
        stored = [r for r in got if r.status == "stored"]
        assert len(stored) == 1, "one receipt for every stored result of the batch"
        assert sorted(stored[0].ids()) == sorted(r.id for r in good)
        refused = {r.id: r.reason or "" for r in got if r.status == "rejected"}
        assert refused.keys() == {forged.id, unsigned.id}
        assert refused[forged.id].startswith("bad-signature")
        assert refused[unsigned.id].startswith("unsigned")

        # The probe missed that receipt and sends the batch again: said again, stored once.
        await client.publish(results_topic(probe.probe_id), batch, qos=1)
        again = await receipts(client, 3, timeout_s=10)
        assert [r.status for r in again].count("stored") == 1
        assert sorted(next(r for r in again if r.status == "stored").ids()) == sorted(
            r.id for r in good
        )

        def counted(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        rejected = "qos_collector_results_rejected_total"
        assert counted("qos_collector_results_accepted_total") == len(good)
        assert counted(rejected, reason="bad-signature") == 2.0
        assert counted(rejected, reason="unsigned") == 2.0
        assert counted(rejected, reason="replay") == len(good)

    store.flush()
    samples = store.export(f'qos_download_mbps{{probe="{probe.probe_id}"}}')
    assert sum(len(s["values"]) for s in samples) == len(good)
