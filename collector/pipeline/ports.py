"""What the pipeline needs from outside: a broker and a store, as two small protocols.

Production passes `MqttBroker` (collector/pipeline/mqtt.py) and `StoreWriter` (collector/store.py);
tests pass in-memory ones, so the whole pipeline runs without a network.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import NamedTuple, Protocol

from collector.store import StoreRun


class Message(NamedTuple):
    """One message from the broker: `qos/v1/{probe_id}/{kind}` and its bytes."""

    topic: str
    payload: bytes


class Broker(Protocol):
    def messages(self) -> AsyncGenerator[Message, None]:
        """Every message of the collector's subscriptions, for ever (reconnecting as needed)."""
        ...

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send at QoS 1 (returns once the connection took it, before the broker acknowledged
        it); raises when the connection did not take it."""
        ...


class Store(Protocol):
    async def write_lines(self, lines: list[str]) -> None:
        """Return once the store acknowledged every line; ServiceError when it did not."""
        ...

    async def run(self) -> StoreRun:
        """Which run of the store's processes answers; ServiceError when it cannot say."""
        ...
