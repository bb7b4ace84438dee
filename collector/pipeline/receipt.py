"""Stage 6, receipt: answers published to the probes, concurrently.

"stored" comes from the store stage only after the store took the write and the journal recorded
it (or from the check stage for a re-sent result already written); "rejected" comes for a
permanent refusal. A receipt lost on the way is answered again when the probe sends the result
again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from collector.metrics import CollectorMetrics
from collector.pipeline.links import Link
from collector.pipeline.ports import Broker
from contract.result import Receipt, encode_receipt, receipt_topic

log = logging.getLogger("qosfleet.collector")

# Receipts published at once. aiomqtt looks through every publish in flight for each new one, so
# ten thousand at once (a store write's worth) cost more than reading the results did; a hundred
# or two keep that small and still fill a broker round trip.
RECEIPTS_IN_FLIGHT = 200


class Answer(NamedTuple):
    """A receipt on its way to its probe."""

    probe_id: str
    receipt: Receipt


class ReceiptStage:
    def __init__(self, inbox: Link[Answer], broker: Broker, metrics: CollectorMetrics) -> None:
        self.inbox = inbox
        self.broker = broker
        self.metrics = metrics

    async def run(self) -> None:
        while True:
            answers = await self.inbox.take()
            for start in range(0, len(answers), RECEIPTS_IN_FLIGHT):
                if not await self._publish(answers[start : start + RECEIPTS_IN_FLIGHT]):
                    # The probes send those results again and get their receipts then.
                    rest = len(answers) - start - RECEIPTS_IN_FLIGHT
                    if rest > 0:
                        log.warning("%d more receipts not sent: the broker took none", rest)
                    break

    async def _publish(self, answers: list[Answer]) -> bool:
        """Publish concurrently; whether any went (if none did, the connection is gone)."""
        outcomes = await asyncio.gather(
            *(
                self.broker.publish(receipt_topic(probe_id), encode_receipt(receipt))
                for probe_id, receipt in answers
            ),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for (_, receipt), outcome in zip(answers, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                self.metrics.receipts.labels(status=receipt.status).inc()
        if failures:
            log.warning("%d of %d receipts not sent: %s", len(failures), len(answers), failures[0])
        return len(failures) < len(answers)
