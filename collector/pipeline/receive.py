"""Stage 1, receive: every message from the broker, sorted by kind.

Fleet messages (approval, meta, status) are applied at once (collector/pipeline/fleet.py), so a
result is checked against the enrollment known when it is checked; results and batches of them go
on to the check stage. When the check stage falls behind, this stage waits, and so does the
broker's delivery to this collector (QoS 1: the broker keeps what it has not delivered).
"""

from __future__ import annotations

from contextlib import aclosing

from collector.pipeline.fleet import Fleet
from collector.pipeline.links import Link
from collector.pipeline.ports import Broker, Message
from collector.pipeline.refusals import FLEET_KINDS, Refusals

# Single results, and batches of them (a probe draining its spool).
RESULT_KINDS = frozenset({"result", "results"})


class ReceiveStage:
    def __init__(
        self, broker: Broker, fleet: Fleet, checks: Link[Message], refusals: Refusals
    ) -> None:
        self.broker = broker
        self.fleet = fleet
        self.checks = checks
        self.refusals = refusals

    async def run(self) -> None:
        async with aclosing(self.broker.messages()) as messages:
            async for message in messages:
                kind = message.topic.rpartition("/")[2]
                if kind in RESULT_KINDS:
                    await self.checks.put(message)
                elif kind in FLEET_KINDS:
                    try:
                        self.fleet.on_message(kind, message.topic, message.payload)
                    except Exception as exc:  # noqa: BLE001 - one message's bug must not stop us
                        self.refusals.unexpected(kind, message.topic, exc)
