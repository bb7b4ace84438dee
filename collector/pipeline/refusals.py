"""Refusals of results, shared by the stages that decide them: counted, logged, answered."""

from __future__ import annotations

import logging
import time

from collector.ingest import ResultRejectedError, probe_id_of
from collector.metrics import CollectorMetrics
from collector.pipeline.links import Link
from collector.pipeline.receipt import Answer
from contract.result import Receipt

log = logging.getLogger("qosfleet.collector")

# An error we did not foresee is logged with its traceback at most this often (each one counted):
# a message that trips it again and again must not flood the log.
UNEXPECTED_LOG_INTERVAL_S = 60.0
# Message kinds the pipeline reads that are not results.
FLEET_KINDS = frozenset({"approval", "meta", "status"})


class Refusals:
    def __init__(self, metrics: CollectorMetrics, receipts: Link[Answer]) -> None:
        self.metrics = metrics
        self.receipts = receipts
        self._unexpected_log_after = 0.0
        self._unexpected_unlogged = 0

    async def reject(self, topic: str, rejection: ResultRejectedError) -> None:
        """Count a refusal by its reason; a permanent one with a readable id is answered."""
        self.metrics.rejected.labels(reason=rejection.reason).inc()
        log.warning("rejected result on %r: %s", topic, rejection.message)
        if rejection.permanent and rejection.result_id is not None:
            receipt = Receipt(id=rejection.result_id, status="rejected", reason=rejection.message)
            await self.receipts.put(Answer(probe_id_of(topic), receipt))

    def unexpected(self, kind: str, topic: str, error: Exception) -> None:
        """Count an unforeseen error on a message (reason "internal"); log it now and then.

        No receipt goes: the probe keeps the result and sends it again, so it is stored once the
        bug is fixed.
        """
        if kind in FLEET_KINDS:
            self.metrics.fleet_rejected.labels(kind=kind, reason="internal").inc()
        else:
            self.metrics.rejected.labels(reason="internal").inc()
        now = time.monotonic()
        if now < self._unexpected_log_after:
            self._unexpected_unlogged += 1
            return
        log.error(
            "unexpected error on %s message %r (%d more not logged since the last report, "
            "next report in %.0f s at the earliest); the collector goes on",
            kind,
            topic,
            self._unexpected_unlogged,
            UNEXPECTED_LOG_INTERVAL_S,
            exc_info=error,
        )
        self._unexpected_log_after = now + UNEXPECTED_LOG_INTERVAL_S
        self._unexpected_unlogged = 0
