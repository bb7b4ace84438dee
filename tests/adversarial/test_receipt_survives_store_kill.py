"""A receipt is a promise: "stored" survives kill -9 of VictoriaMetrics at any moment after it.

Real mosquitto, a real qos-collector process with the production policy (signed results of
enrolled probes), a real VictoriaMetrics killed with SIGKILL and restarted on its data. Two probes
send signed results and count their "stored" receipts; the store is killed at several moments
after the last receipt of a round (and once while receipts still flow, once together with the
collector). Every result receipted "stored" must be in the store in the end: sent = receipted =
stored, per probe and seq.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import decode_receipt, receipt_topic
from lab.services import Endpoint, Mosquitto, VictoriaMetrics, qos_collector
from tests.adversarial.conftest import metric
from tests.integration.collector.support import EnrolledProbe

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

RESULTS_PER_ROUND = 150
# Seconds from the last receipt of a round to kill -9: at once, within VictoriaMetrics' in-memory
# window (rows acknowledged are moved to disk 6-11 s later) and just past its 5 s boundary.
KILL_AFTER_S = (0.0, 0.5, 2.0, 6.0)
STORED_TIMEOUT_S = 40.0


@dataclass
class Fleet:
    """Probes sending results over one connection and collecting their receipts."""

    client: aiomqtt.Client
    probes: list[EnrolledProbe]
    sent: dict[str, set[int]] = field(default_factory=dict)
    receipted: dict[str, set[int]] = field(default_factory=dict)
    _ids: dict[str, tuple[str, int]] = field(default_factory=dict)
    _next_seq: int = 1

    async def send_round(self, count: int) -> None:
        """`count` results per probe, each probe's seqs continuing from the last round."""
        for seq in range(self._next_seq, self._next_seq + count):
            for probe in self.probes:
                result = probe.result(seq=seq)
                self._ids[str(result.id)] = (probe.probe_id, seq)
                self.sent.setdefault(probe.probe_id, set()).add(seq)
                await probe.send(self.client, result)
        self._next_seq += count

    async def read_receipts(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            receipt = decode_receipt(message.payload)
            assert receipt.status == "stored", receipt
            for result_id in (receipt.id, *receipt.also):
                probe_id, seq = self._ids[str(result_id)]
                self.receipted.setdefault(probe_id, set()).add(seq)

    def receipted_count(self) -> int:
        return sum(len(seqs) for seqs in self.receipted.values())

    def sent_count(self) -> int:
        return sum(len(seqs) for seqs in self.sent.values())

    async def all_receipted(self, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.receipted_count() < self.sent_count():  # noqa: ASYNC110 - filled by the reader
                await asyncio.sleep(0.02)


@asynccontextmanager
async def fleet_of(broker: Mosquitto, count: int) -> AsyncIterator[Fleet]:
    probes = [EnrolledProbe.new(f"vn-79-kill-{n}") for n in range(count)]
    async with mqtt_client(BrokerConfig(url=broker.url), identifier="kill-fleet") as client:
        for probe in probes:
            await probe.enroll(client)
            await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        fleet = Fleet(client, probes)
        reader = asyncio.create_task(fleet.read_receipts())
        try:
            yield fleet
        finally:
            reader.cancel()


def stored(store: VictoriaMetrics, probe_ids: list[str]) -> dict[str, set[int]]:
    store.flush()
    found: dict[str, set[int]] = {probe_id: set() for probe_id in probe_ids}
    for series in store.export('{__name__="qos_seq",probe=~"vn-79-kill-.*"}'):
        found[series["metric"]["probe"]].update(int(v) for v in series["values"])
    return found


async def until_stored(store: VictoriaMetrics, fleet: Fleet) -> dict[str, set[int]]:
    """The store's seqs once they match the receipts, or as they are after the timeout."""
    deadline = time.monotonic() + STORED_TIMEOUT_S
    while True:
        found = await asyncio.to_thread(stored, store, [p.probe_id for p in fleet.probes])
        if found == fleet.receipted or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def kill_and_restart(store: VictoriaMetrics) -> None:
    store.service.kill()
    store.start()  # same data directory and port


async def test_stored_results_survive_kill_9_of_the_store_at_any_moment(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, record_property: Callable[..., None]
) -> None:
    def collector() -> AbstractContextManager[Endpoint]:
        return qos_collector(tmp_path, broker_url=broker.url, store_url=store.url, extra_args=())

    async with fleet_of(broker, 2) as fleet:
        with collector() as endpoint:
            for kill_after_s in KILL_AFTER_S:
                await fleet.send_round(RESULTS_PER_ROUND)
                await fleet.all_receipted()
                await asyncio.sleep(kill_after_s)
                await asyncio.to_thread(kill_and_restart, store)
            # Killed while receipts still flow: some results receipted before, some after.
            await fleet.send_round(RESULTS_PER_ROUND)
            await asyncio.sleep(0.2)
            await asyncio.to_thread(kill_and_restart, store)
            await fleet.all_receipted()
            await until_stored(store, fleet)
            restarts = metric(endpoint, "qos_collector_store_restarts_total")
            replayed = metric(endpoint, "qos_collector_store_replayed_lines_total")
            # The store and the collector killed together right after the receipts; the
            # collector comes back after the store, on its journal.
            await fleet.send_round(RESULTS_PER_ROUND)
            await fleet.all_receipted()
            endpoint.service.kill()
            store.service.kill()
        await asyncio.to_thread(store.start)
        with collector() as endpoint:
            found = await until_stored(store, fleet)
            restarts += metric(endpoint, "qos_collector_store_restarts_total")
            replayed += metric(endpoint, "qos_collector_store_replayed_lines_total")
    sent, receipted = fleet.sent_count(), fleet.receipted_count()
    stored_count = sum(len(seqs) for seqs in found.values())
    record_property("sent / receipted / stored", f"{sent} / {receipted} / {stored_count}")
    print(
        f"FAULT store kill -9 x{len(KILL_AFTER_S) + 2}: sent {sent}, receipted {receipted}, "
        f"stored {stored_count}, store restarts seen {restarts:.0f}, lines replayed {replayed:.0f}"
    )
    assert fleet.receipted == fleet.sent
    assert found == fleet.receipted
    assert 1 <= restarts <= len(KILL_AFTER_S) + 2  # restarts within one check are one
