"""Stage 5, store: journaled lines into the store, oldest first, and the promise behind a receipt.

Two tasks:
- write: pending lines from the journal to the store in batches, with capped backoff while it is
  down; once the store took a batch and the journal recorded it, its "stored" receipts go to the
  receipt stage (results that came in a batch answered together, `id` plus `also`);
- watch: which run of the store answers, once a second. VictoriaMetrics acknowledges rows it holds
  in memory for a few seconds, so a written line is kept until the run that took it has been up
  long enough after the write to have put it on disk, and every kept line is written again when
  another run answers (the store restarted and may have lost them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from contextlib import suppress

from collector.journal import Entry, Journal
from collector.metrics import CollectorMetrics
from collector.pipeline.journal import Journaled
from collector.pipeline.links import Link
from collector.pipeline.ports import Store
from collector.pipeline.receipt import Answer
from contract.errors import ServiceError
from contract.result import MAX_BATCH, Receipt

log = logging.getLogger("qosfleet.collector")

BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0
# Each write to the store has a fixed cost; waiting this long for more work turns a trickle of
# results into batches, for a tenth of a second of latency.
WRITE_LINGER_S = 0.1


class StoreStage:
    def __init__(
        self,
        inbox: Link[Journaled],
        receipts: Link[Answer],
        *,
        store: Store,
        journal: Journal,
        metrics: CollectorMetrics,
        batch_size: int,
        check_interval_s: float,
        persist_s: float,
    ) -> None:
        self.inbox = inbox
        self.receipts = receipts
        self.store = store
        self.journal = journal
        self.metrics = metrics
        self.batch_size = batch_size
        self.check_interval_s = check_interval_s
        self.persist_s = persist_s
        # How far the journal goes, as the journal stage said (at start: all it holds).
        self._journaled_to = journal.last_seq()
        # Ids that came in a batch, until their "stored" receipt goes.
        self._grouped: set[uuid.UUID] = set()
        # The store run every written line went to, and the one the watcher saw last: when they
        # differ the store restarted, and every unconfirmed line is written again.
        self._store_run = journal.store_run()
        self._store_run_seen: str | None = None
        self._restart_seen = asyncio.Event()
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        """Whether the last write to the store failed."""
        return self._down_since is not None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.write(), name="store-write")
            tasks.create_task(self.watch(), name="store-watch")

    # write -----------------------------------------------------------------------------------

    async def write(self) -> None:
        delay = BACKOFF_FIRST_S
        backlog = True  # results may wait in the journal from before a restart
        while True:
            if not backlog:
                await self._wait_for_work()
                await asyncio.sleep(WRITE_LINGER_S)
            self._note(self.inbox.take_waiting())
            batch = self.journal.pending(self.batch_size, self._journaled_to)
            if not batch and not self._replay_due():
                backlog = False
                self.metrics.buffer_depth.set(0)
                continue
            if await self._write(batch):
                delay = BACKOFF_FIRST_S
                backlog = len(batch) == self.batch_size
                self.metrics.buffer_depth.set(self.journal.depth() if backlog else 0)
                continue
            backlog = True
            self.metrics.buffer_depth.set(self.journal.depth())
            await self._pause(delay * random.uniform(0.5, 1.0))  # noqa: S311
            delay = min(delay * 2, BACKOFF_CAP_S)

    def _note(self, journaled: list[Journaled]) -> None:
        for up_to_seq, grouped in journaled:
            self._journaled_to = up_to_seq
            self._grouped.update(grouped)

    async def _wait_for_work(self) -> None:
        """Until the journal stage hands something on or the watcher sees a restart."""
        if self._replay_due():
            return
        take = asyncio.create_task(self.inbox.take())
        restart = asyncio.create_task(self._restart_seen.wait())
        try:
            await asyncio.wait((take, restart), return_when=asyncio.FIRST_COMPLETED)
        finally:
            restart.cancel()
            take.cancel()  # a take cancelled before it got anything leaves the queue as it was
            await asyncio.wait((take,))
        if not take.cancelled():
            self._note(take.result())
        self._restart_seen.clear()

    async def _pause(self, seconds: float) -> None:
        """Wait before retrying the store, taking note of what is journaled meanwhile.

        The journal is the buffer while the store is down: the stages before it go on.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with suppress(TimeoutError):
                async with asyncio.timeout(left):
                    self._note(await self.inbox.take())

    async def _write(self, batch: list[Entry]) -> bool:
        try:
            if self._replay_due():
                await self._replay()
            if batch:
                await self.store.write_lines([entry.line for entry in batch])
        except ServiceError as exc:
            self.metrics.write_errors.inc()
            self.metrics.store_up.set(0)
            if self._down_since is None:
                self._down_since = time.time()
                self.journal.set_durability(fsync_every_commit=True)
            log.error("%d results wait for the store: %s", len(batch), exc.message)  # noqa: TRY400
            return False
        now = time.time()
        if self._down_since is not None:
            log.info("store back after %.0f s", now - self._down_since)
            self._down_since = None
            self.journal.set_durability(fsync_every_commit=False)
        self.metrics.store_up.set(1)
        try:
            self.journal.mark_written(batch, now)
        except ServiceError as exc:
            # The store has them but the journal cannot say so (its disk is full): no receipt
            # yet. They stay pending, so they are written again (the store keeps one copy) and
            # receipted once the journal can record it.
            log.error("%d results stored, receipts wait: %s", len(batch), exc.message)  # noqa: TRY400
            return False
        self.metrics.accepted.inc(len(batch))
        self.metrics.unconfirmed.inc(len(batch))  # counted exactly again by the housekeeping
        await self._receipt_stored(batch, now)
        return True

    async def _receipt_stored(self, batch: list[Entry], now: float) -> None:
        grouped: dict[str, list[uuid.UUID]] = {}
        for entry in batch:
            self.metrics.ingest_lag.observe(max(now - entry.finished_at, 0.0))
            if entry.id in self._grouped:
                self._grouped.discard(entry.id)
                grouped.setdefault(entry.probe_id, []).append(entry.id)
            else:
                # Sent alone, perhaps by a probe that reads only `id`: answered alone.
                await self.receipts.put(
                    Answer(entry.probe_id, Receipt(id=entry.id, status="stored"))
                )
        for probe_id, ids in grouped.items():
            for start in range(0, len(ids), MAX_BATCH):
                first, *rest = ids[start : start + MAX_BATCH]
                receipt = Receipt(id=first, status="stored", also=tuple(rest))
                await self.receipts.put(Answer(probe_id, receipt))

    def _replay_due(self) -> bool:
        seen = self._store_run_seen
        return seen is not None and seen != self._store_run

    async def _replay(self) -> None:
        """The store restarted: write every line it may have lost again, then trust the new run.

        The new run is recorded only after every line reached it, so a collector killed halfway
        starts over; a store restarted again meanwhile is seen by the watcher and replayed again.
        """
        run = self._store_run_seen
        assert run is not None  # _replay_due said so
        after, count = 0, 0
        while chunk := self.journal.unconfirmed(after, self.batch_size):
            await self.store.write_lines([line for _, line in chunk])
            after, count = chunk[-1][0], count + len(chunk)
        self.journal.rewritten(after, time.time())
        self.journal.set_store_run(run)
        if self._store_run is not None:
            self.metrics.store_restarts.inc()
            log.warning(
                "the store restarted (run %s): wrote %d lines again that it may have lost",
                run,
                count,
            )
        self._store_run = run
        self.metrics.replayed.inc(count)

    # watch -----------------------------------------------------------------------------------

    async def watch(self) -> None:
        """Drop lines the store has had time to persist; spot a restart that may have lost some.

        A line written at `t` is on disk once the store run that took it has been up until
        `t + persist_s`. The check time is taken before the run is asked, so an answer from the
        same (settled) run proves it was up all along.
        """
        failing = False
        while True:
            await asyncio.sleep(self.check_interval_s)
            asked_at = time.time()
            try:
                run = await self.store.run()
            except ServiceError as exc:
                if not failing:
                    log.warning("store run unknown, written lines kept: %s", exc.message)
                failing = True
                continue
            failing = False
            if not run.settled:
                continue  # another process may still start within the same second
            self._store_run_seen = run.starts
            if run.starts != self._store_run:
                self._restart_seen.set()  # the write task replays
                continue
            try:
                confirmed = self.journal.confirm(asked_at - self.persist_s)
                self.metrics.unconfirmed.dec(confirmed)
            except ServiceError as exc:
                log.error("journal: %s", exc.message)  # noqa: TRY400
