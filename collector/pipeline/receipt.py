"""Stage 6, receipt: answers sent to the probes, without waiting for each acknowledgement.

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

# Receipts sent before the broker acknowledged them (the MQTT client queues the rest), and how
# many may wait in that queue before a receipt is refused (its probe sends the result again).
RECEIPTS_IN_FLIGHT = 200
RECEIPTS_QUEUED = 20_000
# Receipts handed over between two turns of the event loop, so the other stages go on.
RECEIPTS_PER_TURN = 200


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
            for done, (probe_id, receipt) in enumerate(answers):
                if done and done % RECEIPTS_PER_TURN == 0:
                    await asyncio.sleep(0)
                try:
                    await self.broker.publish(receipt_topic(probe_id), encode_receipt(receipt))
                except Exception as exc:  # noqa: BLE001 - the probes send them again
                    # The probes send those results again and get their receipts then.
                    log.warning("%d receipts not sent: %s", len(answers) - done, exc)
                    break
                self.metrics.receipts.labels(status=receipt.status).inc()
