"""The bounded queue between two stages, with its depth and backpressure in the metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Generic, TypeVar

from collector.metrics import CollectorMetrics

Item = TypeVar("Item")


class Link(Generic[Item]):
    """The queue into one stage: a full one makes the stage before it wait (backpressure).

    `qos_collector_pipeline_queue_depth{queue}` shows how much waits in it (read at scrape time,
    so it costs nothing per item); `qos_collector_pipeline_blocked_seconds_total{queue}` how long
    the stage before it waited for room.
    """

    def __init__(self, name: str, capacity: int, metrics: CollectorMetrics) -> None:
        self.name = name
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=capacity)
        metrics.queue_depth.labels(queue=name).set_function(self._queue.qsize)
        metrics.queue_capacity.labels(queue=name).set(capacity)
        self._blocked = metrics.queue_blocked.labels(queue=name)

    async def put(self, item: Item) -> None:
        if not self._queue.full():
            self._queue.put_nowait(item)
            return
        started = time.monotonic()
        await self._queue.put(item)
        self._blocked.inc(time.monotonic() - started)

    async def take(self) -> list[Item]:
        """Wait for one item, then take every item waiting: a stage works in batches."""
        items = [await self._queue.get()]
        items.extend(self.take_waiting())
        return items

    def take_waiting(self) -> list[Item]:
        """Every item waiting now, perhaps none."""
        queue = self._queue
        return [queue.get_nowait() for _ in range(queue.qsize())]
