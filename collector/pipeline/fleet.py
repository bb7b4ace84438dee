"""Beside the stages: enrollments, approvals and liveness, and the fleet-state series.

The receive stage hands every fleet message here at once, so a result is checked against the
enrollment known when it is checked. The housekeeping task writes `qos_probe_online` and the
budgets (every probe each interval, a changed one at once) and keeps the journal and registry
tidy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

from collector.coverage import coverage_lines, enrolled_places
from collector.ingest import probe_id_of
from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline.ports import Store
from collector.registry import FleetMessageRejectedError, ProbeRegistry
from contract.errors import ServiceError

log = logging.getLogger("qosfleet.collector")


class Fleet:
    def __init__(
        self,
        probes: ProbeRegistry,
        journal: Journal,
        store: Store,
        metrics: CollectorMetrics,
        *,
        interval_s: float,
        store_down: Callable[[], bool],
    ) -> None:
        self.probes = probes
        self.journal = journal
        self.store = store
        self.metrics = metrics
        self.interval_s = max(interval_s, 0.1)
        self._store_down = store_down
        self._changed: set[str] = set()
        self._wake = asyncio.Event()
        self._disputed_shown: set[str] = set()
        self.refresh_gauges()

    def on_message(self, kind: str, topic: str, payload: bytes) -> None:
        probe_id = probe_id_of(topic)
        now = time.time()
        try:
            if kind == "meta":
                outcome = self.probes.apply_meta(probe_id, payload, now)
                if outcome == "disputed":
                    self.metrics.enrollments_refused.inc()
                changed = outcome != "unchanged"
            elif kind == "approval":
                changed = self.probes.apply_approval(probe_id, payload)
            else:
                changed = self.probes.apply_status(probe_id, payload, now)
        except FleetMessageRejectedError as rejection:
            self.metrics.fleet_rejected.labels(kind=kind, reason=rejection.reason).inc()
            log.warning("refused %s message on %r: %s", kind, topic, rejection)
            return
        except ServiceError as exc:
            log.error("%s of %r not saved: %s", kind, probe_id, exc.message)  # noqa: TRY400
            return
        if changed:
            self._changed.add(probe_id)
            self._wake.set()
            if kind != "status":
                self._refresh_disputed()

    async def run(self) -> None:
        """Housekeeping, and the fleet series: all probes every interval, changes at once."""
        next_full = time.monotonic()
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(max(next_full - time.monotonic(), 0.0)):
                    await self._wake.wait()
            self._wake.clear()
            changed, self._changed = self._changed, set()
            full = time.monotonic() >= next_full
            if full:
                next_full = time.monotonic() + self.interval_s
                self._housekeeping()
            at_ms = round(time.time() * 1000)
            lines = self.probes.fleet_lines(at_ms, only=None if full else changed)
            if full:
                lines += coverage_lines(enrolled_places(self.probes.records()), at_ms)
            if lines:
                try:
                    await self.store.write_lines(lines)
                except ServiceError as exc:
                    # The next full round writes the current state again.
                    log.warning("fleet state not written: %s", exc.message)

    def _housekeeping(self) -> None:
        try:
            if not self._store_down():
                self.journal.prune(time.time())
            self.probes.save_last_seen()
        except ServiceError as exc:
            log.error("housekeeping: %s", exc.message)  # noqa: TRY400
        self.refresh_gauges()

    def refresh_gauges(self) -> None:
        self.metrics.probes_online.set(self.probes.online_count())
        self.metrics.probes_enrolled.set(self.probes.enrolled_count())
        self.metrics.buffer_depth.set(self.journal.depth())
        self.metrics.unconfirmed.set(self.journal.unconfirmed_count())
        self._refresh_disputed()

    def _refresh_disputed(self) -> None:
        """One series per disputed probe, so the alert names it; gone once decided."""
        disputed = set(self.probes.disputed())
        for probe_id in self._disputed_shown - disputed:
            self.metrics.enrollment_disputed.remove(probe_id)
        for probe_id in disputed:
            self.metrics.enrollment_disputed.labels(probe=probe_id).set(1)
        self._disputed_shown = disputed
