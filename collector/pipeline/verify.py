"""Stage 3, verify: Ed25519 signatures against the pinned keys, in a process of their own.

A check costs more than all the other checks together (~125 us), so it runs in batches off the
event loop. Not in a thread: the binding lets go of the interpreter lock for each check and then
waits for it again, and every socket read of the loop hands the lock to that thread, so the two
slowed each other down (bench/RESULTS.md, "The collector as a pipeline": 126 us a check alone,
5,289 us beside a busy loop). The process gets only bytes (key, canonical bytes, signature) and
answers a yes or no each. An accepted result is rendered to its line protocol here, once
(collector/store.py `result_line`), and handed to the journal stage.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple, Self

from collector.ingest import Candidate, ResultRejectedError, signature_refusal, signed_part
from collector.journal import Entry
from collector.pipeline.check import Admitted
from collector.pipeline.links import Link
from collector.pipeline.refusals import Refusals
from collector.registry import ProbeRegistry
from collector.store import result_line
from contract.profiles import Profile
from contract.result import result_topic
from contract.signing import Signed, all_hold

log = logging.getLogger("qosfleet.collector")

# Each hand-over to the signature process has a fixed cost; waiting this long for more work turns
# a trickle of results into batches, for a few tens of milliseconds of latency.
VERIFY_LINGER_S = 0.02
# Results a hand-over carries at most, and hand-overs out at once: while the process checks one,
# the loop prepares the next and files the one before, so neither waits for the other.
VERIFY_BATCH = 500
BATCHES_OUT = 2


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
        out: asyncio.Queue[tuple[list[Admitted], asyncio.Task[list[Exception | None]]]]
        out = asyncio.Queue(maxsize=BATCHES_OUT)
        with SignatureProcess() as signatures:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._hand_over(signatures, out))
                tasks.create_task(self._file(out))

    async def _hand_over(
        self,
        signatures: SignatureProcess,
        out: asyncio.Queue[tuple[list[Admitted], asyncio.Task[list[Exception | None]]]],
    ) -> None:
        while True:
            batch = await self.inbox.take()
            await asyncio.sleep(VERIFY_LINGER_S)
            batch.extend(self.inbox.take_waiting())
            for start in range(0, len(batch), VERIFY_BATCH):
                part = batch[start : start + VERIFY_BATCH]
                checking = signatures.check([admitted.candidate for admitted in part])
                await out.put((part, asyncio.create_task(checking)))

    async def _file(
        self, out: asyncio.Queue[tuple[list[Admitted], asyncio.Task[list[Exception | None]]]]
    ) -> None:
        """Each hand-over's results in the order they came: on to the journal, or refused."""
        while True:
            part, checking = await out.get()
            outcomes = await checking
            now = time.time()
            for admitted, outcome in zip(part, outcomes, strict=True):
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


class SignatureProcess:
    """The process that checks signatures; started again if it dies (say, by the OOM killer)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, candidates: list[Candidate]) -> list[Exception | None]:
        """Per candidate: None (no signature to check, or it holds), its refusal, or the error
        that kept it from being checked (no receipt: the probe sends it again)."""
        outcomes: list[Exception | None] = [None] * len(candidates)
        work: list[Signed] = []
        where: list[int] = []
        for index, candidate in enumerate(candidates):
            try:
                item = signed_part(candidate)
            except Exception as exc:  # noqa: BLE001 - counted on the loop as unexpected
                outcomes[index] = exc
                continue
            if item is not None:
                work.append(item)
                where.append(index)
        if not work:
            return outcomes
        pool = self._process()
        try:
            verdicts = await asyncio.get_running_loop().run_in_executor(pool, all_hold, work)
        except Exception as exc:
            if isinstance(exc, BrokenProcessPool) and self._pool is pool:
                log.exception("the signature process died; starting another")
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            for index in where:
                outcomes[index] = exc
            return outcomes
        for index, holds in zip(where, verdicts, strict=True):
            if not holds:
                outcomes[index] = signature_refusal(candidates[index])
        return outcomes

    def _process(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # "spawn": the collector has threads, so the process must not be a fork of it.
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with,
                initargs=(os.getpid(),),
            )
        return self._pool


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """In the signature process: end when the collector ends, even by kill -9.

    A pool's worker holds both ends of its work queue, so it never sees the collector go and
    would wait forever. Linux can send it a signal when its parent dies; nothing in the standard
    library asks for that, and prctl is one call, so it is made here directly.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the collector died before the signal was asked for
        os._exit(0)
