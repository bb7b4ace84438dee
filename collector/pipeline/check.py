"""Stage 2, check: every check but the signature, and the replay check against the journal.

Pure checks are collector/ingest.py; this stage splits batches, refuses (counted, a permanent
refusal answered "rejected"), answers a re-sent result that is already written "stored" again,
and hands each new result on for its signature check.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
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
from collector.journal import Journal, Known
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
            messages = await self.inbox.take()
            now = datetime.now(UTC)
            checked: list[_Checked] = []
            for topic, payload in messages:
                try:
                    checked.append(self._check(topic, payload, now))
                except Exception as exc:  # noqa: BLE001 - one message's bug must not stop us
                    self.refusals.unexpected("result", topic, exc)
            ids = [
                outcome.result.id
                for message in checked
                for outcome in message.outcomes
                if isinstance(outcome, Candidate)
            ]
            try:
                known = self.journal.known(ids)
            except Exception as exc:  # noqa: BLE001 - no receipt: the probes send them again
                for message in checked:
                    self.refusals.unexpected("result", message.topic, exc)
                continue
            for message in checked:
                try:
                    await self._admit(message, known)
                except Exception as exc:  # noqa: BLE001 - one message's bug must not stop us
                    self.refusals.unexpected("result", message.topic, exc)

    def _check(self, topic: str, payload: bytes, now: datetime) -> _Checked:
        """A message's results, each checked as if it came alone (a batch split first)."""
        if not topic.endswith("/results"):
            return _Checked(topic, [self._check_one(topic, payload, now)], batched=False)
        try:
            elements = split(payload, self.policy)
        except ResultRejectedError as rejection:
            return _Checked(topic, [rejection], batched=True)
        return _Checked(
            topic, [self._check_one(topic, element, now) for element in elements], batched=True
        )

    def _check_one(
        self, topic: str, payload: bytes, now: datetime
    ) -> Candidate | ResultRejectedError:
        try:
            return check(
                topic, payload, now=now, policy=self.policy, enrollment_of=self.probes.enrollment
            )
        except ResultRejectedError as rejection:
            return rejection

    async def _admit(self, message: _Checked, known: Mapping[uuid.UUID, Known]) -> None:
        """Refusals counted, new results on to verify; a re-sent written one answered again.

        The receipts for results already written go as one (`id` plus `also`) per message.
        """
        said_again: list[uuid.UUID] = []
        for outcome in message.outcomes:
            if isinstance(outcome, ResultRejectedError):
                await self.refusals.reject(message.topic, outcome)
                continue
            result = outcome.result
            seen = "pending" if result.id in self.in_flight else known.get(result.id)
            if seen is not None:
                self.metrics.rejected.labels(reason="replay").inc()
                log.info(
                    "result %s of %r again (%s): not stored twice", result.id, message.topic, seen
                )
                # The probe missed the receipt of a written one: say it again so it drops it.
                if seen == "written":
                    said_again.append(result.id)
                continue
            self.in_flight.add(result.id)
            await self.verify.put(Admitted(outcome, message.batched))
        if said_again:
            first, *rest = said_again
            receipt = Receipt(id=first, status="stored", also=tuple(rest))
            await self.receipts.put(Answer(probe_id_of(message.topic), receipt))


class _Checked(NamedTuple):
    """One message's results after the checks: candidates and refusals, in their order."""

    topic: str
    outcomes: list[Candidate | ResultRejectedError]
    batched: bool
