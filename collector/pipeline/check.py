"""Stage 2, check: every check but the signature, and the replay check against the journal.

Pure checks are collector/ingest.py; this stage splits batches, refuses (counted, a permanent
refusal answered "rejected"), answers a re-sent result that is already written "stored" again,
and hands each new result on for its signature check.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

from collector.ingest import (
    Candidate,
    IngestPolicy,
    ResultRejectedError,
    check,
    probe_id_of,
    split,
)
from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline.links import Link
from collector.pipeline.ports import Message
from collector.pipeline.receipt import Answer
from collector.pipeline.refusals import Refusals
from collector.registry import ProbeRegistry
from contract.result import Receipt

log = logging.getLogger("qosfleet.collector")


class Admitted(NamedTuple):
    """A result that passed the checks; `batched`: its "stored" receipt goes grouped."""

    candidate: Candidate
    batched: bool


class CheckStage:
    def __init__(
        self,
        inbox: Link[Message],
        verify: Link[Admitted],
        receipts: Link[Answer],
        *,
        policy: IngestPolicy,
        probes: ProbeRegistry,
        journal: Journal,
        in_flight: set[uuid.UUID],
        refusals: Refusals,
        metrics: CollectorMetrics,
    ) -> None:
        self.inbox = inbox
        self.verify = verify
        self.receipts = receipts
        self.policy = policy
        self.probes = probes
        self.journal = journal
        # Ids between this check and the journal, so a copy arriving meanwhile is a replay.
        self.in_flight = in_flight
        self.refusals = refusals
        self.metrics = metrics

    async def run(self) -> None:
        while True:
            for topic, payload in await self.inbox.take():
                try:
                    if topic.endswith("/results"):
                        await self.on_batch(topic, payload)
                    else:
                        await self.on_result(topic, payload)
                except Exception as exc:  # noqa: BLE001 - one message's bug must not stop us
                    self.refusals.unexpected("result", topic, exc)

    async def on_result(self, topic: str, payload: bytes) -> None:
        stored = await self._admit(topic, payload, now=datetime.now(UTC), batched=False)
        if stored is not None:
            await self.receipts.put(Answer(probe_id_of(topic), Receipt(id=stored, status="stored")))

    async def on_batch(self, topic: str, payload: bytes) -> None:
        """Each result of a batch as if it came alone; receipts for stored ones grouped."""
        try:
            elements = split(payload, self.policy)
        except ResultRejectedError as rejection:
            await self.refusals.reject(topic, rejection)
            return
        now = datetime.now(UTC)
        said_again: list[uuid.UUID] = []
        for element in elements:
            stored = await self._admit(topic, element, now=now, batched=True)
            if stored is not None:
                said_again.append(stored)
        if said_again:
            first, *rest = said_again
            receipt = Receipt(id=first, status="stored", also=tuple(rest))
            await self.receipts.put(Answer(probe_id_of(topic), receipt))

    async def _admit(
        self, topic: str, payload: bytes, *, now: datetime, batched: bool
    ) -> uuid.UUID | None:
        """Hand one result on for its signature check; return its id when it is already stored."""
        try:
            candidate = check(
                topic,
                payload,
                now=now,
                policy=self.policy,
                enrollment_of=self.probes.enrollment,
            )
        except ResultRejectedError as rejection:
            await self.refusals.reject(topic, rejection)
            return None
        result = candidate.result
        known = "pending" if result.id in self.in_flight else self.journal.known(result.id)
        if known is not None:
            self.metrics.rejected.labels(reason="replay").inc()
            log.info("result %s of %r again (%s): not stored twice", result.id, topic, known)
            # The probe missed the receipt of a written one: say it again so it drops the result.
            return result.id if known == "written" else None
        self.in_flight.add(result.id)
        await self.verify.put(Admitted(candidate, batched))
        return None
