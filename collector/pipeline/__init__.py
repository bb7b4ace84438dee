"""The collector's ingest as a pipeline: receive -> check -> verify -> journal -> store -> receipt.

One module a stage, each an asyncio task, joined by bounded queues (collector/pipeline/links.py):
a stage that falls behind makes the ones before it wait, down to the broker, and the metrics show
where (`qos_collector_pipeline_queue_depth`, `qos_collector_pipeline_blocked_seconds_total`). The
broker and the store come in through two small protocols (collector/pipeline/ports.py), so a test
runs the whole pipeline in memory. docs/architecture.md describes each stage.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline.check import Admitted, CheckStage
from collector.pipeline.fleet import Fleet
from collector.pipeline.journal import Journaled, JournalStage
from collector.pipeline.links import Link
from collector.pipeline.ports import Broker, Message, Store
from collector.pipeline.receipt import Answer, ReceiptStage
from collector.pipeline.receive import ReceiveStage
from collector.pipeline.refusals import Refusals
from collector.pipeline.store import StoreStage
from collector.pipeline.verify import Accepted, VerifyStage
from collector.registry import ProbeRegistry
from collector.settings import CollectorSettings
from contract.profiles import Profile

# Items a queue holds before the stage feeding it waits: two seconds of results at 5,000/s.
QUEUE_CAPACITY = 10_000


class Pipeline:
    def __init__(
        self,
        settings: CollectorSettings,
        *,
        broker: Broker,
        store: Store,
        journal: Journal,
        probes: ProbeRegistry,
        profiles: Mapping[str, Profile],
        metrics: CollectorMetrics,
        queue_capacity: int = QUEUE_CAPACITY,
    ) -> None:
        checks: Link[Message] = Link("check", queue_capacity, metrics)
        verifications: Link[Admitted] = Link("verify", queue_capacity, metrics)
        journalings: Link[Accepted] = Link("journal", queue_capacity, metrics)
        writes: Link[Journaled] = Link("store", queue_capacity, metrics)
        answers: Link[Answer] = Link("receipt", queue_capacity, metrics)
        refusals = Refusals(metrics, answers)
        # Ids between the replay check and the journal, so a copy arriving meanwhile is a replay.
        in_flight: set[uuid.UUID] = set()
        self.store = StoreStage(
            writes,
            answers,
            store=store,
            journal=journal,
            metrics=metrics,
            batch_size=settings.batch_size,
            check_interval_s=settings.store_check_interval_s,
            persist_s=settings.store_persist_s,
        )
        self.fleet = Fleet(
            probes,
            journal,
            store,
            metrics,
            interval_s=settings.fleet_interval_s,
            store_down=lambda: self.store.down,
        )
        self.receive = ReceiveStage(broker, self.fleet, checks, refusals)
        self.check = CheckStage(
            checks,
            verifications,
            answers,
            policy=settings.policy,
            probes=probes,
            journal=journal,
            in_flight=in_flight,
            refusals=refusals,
            metrics=metrics,
        )
        self.verify = VerifyStage(
            verifications,
            journalings,
            probes=probes,
            profiles=profiles,
            in_flight=in_flight,
            refusals=refusals,
        )
        self.journal = JournalStage(
            journalings, writes, journal=journal, in_flight=in_flight, metrics=metrics
        )
        self.receipt = ReceiptStage(answers, broker, metrics)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.receive.run(), name="receive")
            tasks.create_task(self.check.run(), name="check")
            tasks.create_task(self.verify.run(), name="verify")
            tasks.create_task(self.journal.run(), name="journal")
            tasks.create_task(self.store.run(), name="store")
            tasks.create_task(self.receipt.run(), name="receipt")
            tasks.create_task(self.fleet.run(), name="fleet")
