"""Stage 4, journal: accepted results into the instance's SQLite journal before any write.

One transaction for everything waiting. The store stage is then told how far the journal goes
(`Journaled.up_to_seq`): it writes from the journal, oldest first, so what waited through a store
outage or a restart goes before what came since. A result the journal cannot keep (its disk is
full) is counted `not-journaled` and gets no receipt: its probe still holds it and sends it again.
"""

from __future__ import annotations

import logging
import uuid
from typing import NamedTuple

from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline.links import Link
from collector.pipeline.verify import Accepted
from contract.errors import ServiceError

log = logging.getLogger("qosfleet.collector")


class Journaled(NamedTuple):
    """The journal holds every result up to `up_to_seq`; `grouped` came in batches."""

    up_to_seq: int
    grouped: tuple[uuid.UUID, ...]


class JournalStage:
    def __init__(
        self,
        inbox: Link[Accepted],
        store: Link[Journaled],
        *,
        journal: Journal,
        in_flight: set[uuid.UUID],
        metrics: CollectorMetrics,
    ) -> None:
        self.inbox = inbox
        self.store = store
        self.journal = journal
        self.in_flight = in_flight
        self.metrics = metrics

    async def run(self) -> None:
        while True:
            accepted = await self.inbox.take()
            try:
                up_to_seq = self.journal.append(entry for entry, _ in accepted)
            except ServiceError as exc:
                self.metrics.rejected.labels(reason="not-journaled").inc(len(accepted))
                log.error("%d results not buffered: %s", len(accepted), exc.message)  # noqa: TRY400
                continue
            finally:
                # Journaled (a copy now is a replay the journal knows) or not (a copy is welcome).
                self.in_flight.difference_update(entry.id for entry, _ in accepted)
            grouped = tuple(entry.id for entry, batched in accepted if batched)
            await self.store.put(Journaled(up_to_seq, grouped))
