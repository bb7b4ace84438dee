"""The whole ingest pipeline in memory: fake messages in; stored, journalled, receipted, refused.

The broker and the store are in-memory stand-ins for the two protocols of
collector/pipeline/ports.py; the journal and the registry are SQLite in memory. The broker checks
the receipt promise on every "stored" receipt it is asked to publish: the store already holds the
result's line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import msgspec
import pytest
from prometheus_client import CollectorRegistry

import collector.pipeline.check as check_stage
from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline import Pipeline
from collector.pipeline.ports import Message
from collector.registry import ProbeRegistry
from collector.settings import CollectorSettings
from collector.store import StoreRun
from contract.errors import ServiceError
from contract.fleet import encode, meta_topic, status_topic
from contract.mqtt import BrokerConfig
from contract.profiles import bundled_profiles
from contract.result import (
    Receipt,
    Result,
    decode_receipt,
    encode_batch_payloads,
    encode_result,
    result_topic,
    results_topic,
)
from contract.signing import new_private_key, sign_result
from tests.integration.collector.support import EnrolledProbe

_PROBE_TAG = re.compile(r",probe=([^, ]+)")
_SEQ_FIELD = re.compile(r"[ ,]seq=([0-9.]+)")


@dataclass
class MemoryStore:
    """Keeps what it is written; `failing` refuses writes; `restart` loses what it held."""

    lines: list[str] = field(default_factory=list)
    failing: bool = False
    starts: int = 1
    gate: asyncio.Event | None = None

    async def write_lines(self, lines: list[str]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ServiceError("store down (test)", "start it")
        self.lines.extend(lines)

    async def run(self) -> StoreRun:
        return StoreRun(str(self.starts), settled=True)

    def restart(self) -> None:
        """A new run that lost every row it held in memory."""
        self.starts += 1
        self.lines.clear()

    def stored(self) -> list[tuple[str, int]]:
        """(probe, seq) of every result line, in the order written (fleet lines left out)."""
        found = []
        for line in self.lines:
            probe, seq = _PROBE_TAG.search(line), _SEQ_FIELD.search(line)
            if line.startswith("qos,") and probe and seq:
                found.append((probe.group(1), int(float(seq.group(1)))))
        return found


@dataclass
class MemoryBroker:
    """Delivers `incoming`; records receipts, and any "stored" one sent before the store had it."""

    store: MemoryStore
    sent: dict[uuid.UUID, tuple[str, int]] = field(default_factory=dict)
    incoming: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    receipts: list[tuple[str, Receipt]] = field(default_factory=list)
    broken_promises: list[uuid.UUID] = field(default_factory=list)
    refusing: bool = False

    async def messages(self) -> AsyncGenerator[Message, None]:
        while True:
            yield await self.incoming.get()

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.refusing:
            raise ServiceError("broker gone (test)", "start it")
        receipt = decode_receipt(payload)
        if receipt.status == "stored":
            stored = set(self.store.stored())
            for result_id in (receipt.id, *receipt.also):
                if self.sent.get(result_id) not in stored:
                    self.broken_promises.append(result_id)
        self.receipts.append((topic.split("/")[2], receipt))

    def deliver(self, topic: str, payload: bytes) -> None:
        self.incoming.put_nowait(Message(topic, payload))

    def send(self, probe: EnrolledProbe, result: Result) -> None:
        self.sent[result.id] = (result.probe_id, result.seq)
        self.deliver(result_topic(probe.probe_id), encode_result(result))

    def stored_ids(self) -> list[uuid.UUID]:
        return [
            result_id
            for _, receipt in self.receipts
            if receipt.status == "stored"
            for result_id in (receipt.id, *receipt.also)
        ]


@dataclass
class Running:
    broker: MemoryBroker
    store: MemoryStore
    journal: Journal
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running(
    store: MemoryStore | None = None, queue_capacity: int = 100, **settings: object
) -> AsyncIterator[Running]:
    store = store or MemoryStore()
    broker = MemoryBroker(store)
    base = CollectorSettings(
        broker=BrokerConfig(),
        store_url="http://unused.invalid",
        state_dir="unused",
        store_check_interval_s=0.02,
        store_persist_s=60.0,
        fleet_interval_s=3600.0,
    )
    database = sqlite3.connect(":memory:", isolation_level=None)
    journal = Journal(database, ledger_ttl_s=3600.0)
    registry = CollectorRegistry()
    pipeline = Pipeline(
        msgspec.structs.replace(base, **settings),
        broker=broker,
        store=store,
        journal=journal,
        probes=ProbeRegistry(database),
        profiles=bundled_profiles(),
        metrics=CollectorMetrics(registry),
        queue_capacity=queue_capacity,
    )
    task = asyncio.create_task(pipeline.run())
    try:
        yield Running(broker, store, journal, registry)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        database.close()
    assert broker.broken_promises == []


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the pipeline signals none of these
            await asyncio.sleep(0.01)


def enrolled(broker: MemoryBroker, probe_id: str = "vn-79-pipeline") -> EnrolledProbe:
    probe = EnrolledProbe.new(probe_id)
    broker.deliver(meta_topic(probe_id), encode(probe.meta()))
    return probe


async def test_each_result_is_stored_journalled_receipted_or_refused_with_its_reason() -> None:
    async with running() as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        singles = [probe.result(seq) for seq in (1, 2, 3)]
        for result in singles:
            broker.send(probe, result)
        batched = [probe.result(seq) for seq in (4, 5)]
        for result in batched:
            broker.sent[result.id] = (probe.probe_id, result.seq)
        batch = encode_batch_payloads([encode_result(result) for result in batched])
        broker.deliver(results_topic(probe.probe_id), batch)
        forged = sign_result(probe.result(6), new_private_key())
        broker.send(probe, forged)
        unsigned = msgspec.structs.replace(probe.result(7), signature=None)
        broker.send(probe, unsigned)
        broker.deliver(result_topic(probe.probe_id), b'{"not": "a result"}')
        stranger = EnrolledProbe.new("vn-79-stranger")
        broker.send(stranger, stranger.result(1))
        broker.deliver(result_topic("vn-79-elsewhere"), encode_result(probe.result(8)))
        await until(lambda: len(broker.receipts) >= 6)
        broker.send(probe, singles[0])  # its receipt was lost: sent again
        await until(lambda: len(broker.receipts) >= 7)

        stored = pipeline.store.stored()
        assert sorted(stored) == [(probe.probe_id, seq) for seq in (1, 2, 3, 4, 5)]
        assert len(stored) == len(set(stored))  # the replay was not written again
        known = pipeline.journal.known([r.id for r in [*singles, *batched, forged]])
        assert known == dict.fromkeys([r.id for r in singles + batched], "written")
        receipts = {receipt.id: receipt for _, receipt in broker.receipts}
        assert receipts[batched[0].id].also == (batched[1].id,)  # one receipt for the batch
        assert receipts[forged.id].status == "rejected"
        assert (receipts[forged.id].reason or "").startswith("bad-signature")
        assert receipts[unsigned.id].status == "rejected"
        assert broker.stored_ids().count(singles[0].id) == 2  # "stored" again for the replay
        assert {probe_id for probe_id, _ in broker.receipts} == {probe.probe_id}
        assert pipeline.metric("qos_collector_results_accepted_total") == 5
        rejected = "qos_collector_results_rejected_total"
        for reason in (
            "bad-signature",
            "unsigned",
            "malformed",
            "not-enrolled",
            "topic-mismatch",
            "replay",
        ):
            assert pipeline.metric(rejected, reason=reason) == 1, reason
        assert pipeline.metric("qos_collector_receipts_sent_total", status="stored") == 5


async def test_a_failing_store_keeps_the_results_and_receipts_them_once_it_recovers() -> None:
    async with running(MemoryStore(failing=True)) as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        results = [probe.result(seq) for seq in range(1, 11)]
        for result in results:
            broker.send(probe, result)
        await until(lambda: pipeline.journal.depth() == len(results))
        await until(lambda: pipeline.metric("qos_collector_store_write_errors_total") >= 1)
        assert pipeline.metric("qos_collector_store_up") == 0
        assert broker.receipts == []  # nothing is promised while the store refuses
        assert pipeline.metric("qos_collector_buffer_depth") == len(results)

        pipeline.store.failing = False
        await until(lambda: len(broker.stored_ids()) == len(results))
        assert sorted(pipeline.store.stored()) == [(probe.probe_id, r.seq) for r in results]
        assert pipeline.journal.depth() == 0
        assert pipeline.metric("qos_collector_store_up") == 1


async def test_a_store_restart_gets_every_unconfirmed_line_again() -> None:
    async with running() as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        for seq in (1, 2, 3):
            broker.send(probe, probe.result(seq))
        await until(lambda: len(broker.stored_ids()) == 3)

        pipeline.store.restart()  # it acknowledged them but held them in memory only
        await until(lambda: len(pipeline.store.stored()) == 3)
        assert pipeline.metric("qos_collector_store_restarts_total") == 1
        assert pipeline.metric("qos_collector_store_replayed_lines_total") == 3


async def test_lines_the_store_has_had_time_to_persist_are_not_written_again() -> None:
    async with running(store_persist_s=0.05) as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        broker.send(probe, probe.result(1))
        await until(lambda: len(broker.stored_ids()) == 1)
        await until(lambda: pipeline.journal.unconfirmed_count() == 0)
        assert pipeline.metric("qos_collector_store_unconfirmed_lines") == 0

        pipeline.store.restart()
        await until(lambda: pipeline.metric("qos_collector_store_restarts_total") == 1)
        assert pipeline.store.stored() == []
        assert pipeline.metric("qos_collector_store_replayed_lines_total") == 0


async def test_a_slow_store_holds_back_the_stages_before_it_and_the_metrics_show_it() -> None:
    gate = asyncio.Event()
    async with running(MemoryStore(gate=gate), queue_capacity=2) as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        results = [probe.result(seq) for seq in range(1, 41)]
        for result in results:
            broker.send(probe, result)
        depth = "qos_collector_pipeline_queue_depth"
        await until(lambda: pipeline.metric(depth, queue="store") == 2)
        await until(lambda: pipeline.metric(depth, queue="check") == 2)
        assert broker.receipts == []
        assert pipeline.metric("qos_collector_pipeline_queue_capacity", queue="store") == 2

        gate.set()
        await until(lambda: len(broker.stored_ids()) == len(results))
        blocked = "qos_collector_pipeline_blocked_seconds_total"
        assert pipeline.metric(blocked, queue="store") > 0
        assert pipeline.metric(blocked, queue="check") > 0
        for queue in ("check", "verify", "journal", "store", "receipt"):
            assert pipeline.metric(depth, queue=queue) == 0, queue
        assert sorted(pipeline.store.stored()) == [(probe.probe_id, r.seq) for r in results]


async def test_receipts_the_broker_does_not_take_are_not_counted_and_the_next_ones_go() -> None:
    async with running() as pipeline:
        broker = pipeline.broker
        probe = enrolled(broker)
        broker.refusing = True
        for seq in (1, 2, 3):
            broker.send(probe, probe.result(seq))
        await until(lambda: len(pipeline.store.stored()) == 3)
        await asyncio.sleep(0.05)  # the receipt stage has had its go
        assert pipeline.metric("qos_collector_receipts_sent_total", status="stored") == 0

        broker.refusing = False
        broker.send(probe, probe.result(4))
        await until(lambda: len(broker.stored_ids()) == 1)
        assert pipeline.metric("qos_collector_receipts_sent_total", status="stored") == 1


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a bug")


async def test_an_unexpected_error_is_counted_and_logged_once_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(check_stage, "check", _boom)
    monkeypatch.setattr(ProbeRegistry, "apply_status", _boom)
    rejected = "qos_collector_results_rejected_total"
    fleet = "qos_collector_fleet_messages_rejected_total"
    with caplog.at_level(logging.ERROR, logger="qosfleet.collector"):
        async with running() as pipeline:
            probe = enrolled(pipeline.broker)
            for seq in (1, 2, 3):
                pipeline.broker.send(probe, probe.result(seq))
            pipeline.broker.deliver(status_topic(probe.probe_id), b"{}")
            await until(lambda: pipeline.metric(rejected, reason="internal") == 3)
            await until(lambda: pipeline.metric(fleet, kind="status", reason="internal") == 1)

    [record] = caplog.records
    assert record.exc_info is not None
    assert "RuntimeError: a bug" in caplog.text
