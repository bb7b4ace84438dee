"""Stage 3, verify: Ed25519 signatures against the pinned keys, in a worker thread.

The check releases the GIL and costs more than all other checks together, so it runs in batches
off the event loop. An accepted result is rendered to its line protocol here, once
(collector/store.py `result_line`), and handed to the journal stage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import NamedTuple

from collector.ingest import Candidate, ResultRejectedError, verify
from collector.journal import Entry
from collector.pipeline.check import Admitted
from collector.pipeline.links import Link
from collector.pipeline.refusals import Refusals
from collector.registry import ProbeRegistry
from collector.store import result_line
from contract.profiles import Profile
from contract.result import result_topic

# Each hand-over to the verifying thread has a fixed cost; waiting this long for more work turns
# a trickle of results into batches, for a few tens of milliseconds of latency.
VERIFY_LINGER_S = 0.02


class Accepted(NamedTuple):
    """A result with its line, ready for the journal; `batched` as in `Admitted`."""

    entry: Entry
    batched: bool


class VerifyStage:
    def __init__(
        self,
        inbox: Link[Admitted],
        journal: Link[Accepted],
        *,
        probes: ProbeRegistry,
        profiles: Mapping[str, Profile],
        in_flight: set[uuid.UUID],
        refusals: Refusals,
    ) -> None:
        self.inbox = inbox
        self.journal = journal
        self.probes = probes
        # The profiles decide each sample's class at ingest (collector/series.py).
        self.profiles = profiles
        self.in_flight = in_flight
        self.refusals = refusals

    async def run(self) -> None:
        while True:
            batch = await self.inbox.take()
            await asyncio.sleep(VERIFY_LINGER_S)
            batch.extend(self.inbox.take_waiting())
            outcomes: list[Exception | None] = [None] * len(batch)
            if any(c.result.signature and c.enrollment for c, _ in batch):
                outcomes = await asyncio.to_thread(_verify_all, [c for c, _ in batch])
            now = time.time()
            for admitted, outcome in zip(batch, outcomes, strict=True):
                result = admitted.candidate.result
                try:
                    accepted = await self._verified(admitted, outcome, now)
                except Exception as exc:  # noqa: BLE001 - one result's bug must not stop the others
                    self.in_flight.discard(result.id)
                    self.refusals.unexpected("result", result_topic(result.probe_id), exc)
                    continue
                if accepted is not None:
                    await self.journal.put(accepted)

    async def _verified(
        self, admitted: Admitted, outcome: Exception | None, now: float
    ) -> Accepted | None:
        candidate, batched = admitted
        result = candidate.result
        if isinstance(outcome, ResultRejectedError):
            self.in_flight.discard(result.id)
            await self.refusals.reject(result_topic(result.probe_id), outcome)
            return None
        if outcome is not None:
            raise outcome
        line = result_line(result, candidate.location, self.profiles)
        entry = Entry(result.id, result.probe_id, result.finished_at.timestamp(), line)
        self.probes.seen(result.probe_id, now)
        return Accepted(entry, batched)


def _verify_all(batch: list[Candidate]) -> list[Exception | None]:
    return [_verify_one(candidate) for candidate in batch]


def _verify_one(candidate: Candidate) -> Exception | None:
    """The refusal, None, or an unforeseen error: raised again on the loop, which counts it."""
    try:
        return verify(candidate)
    except Exception as exc:  # noqa: BLE001 - in the worker thread: handed to the loop
        return exc
