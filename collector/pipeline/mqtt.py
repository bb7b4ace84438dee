"""The production broker of the pipeline: aiomqtt, subscribed for ever, reconnecting.

Results come through a shared subscription (the broker splits them across a group's collectors);
approvals, enrollments and liveness unshared, as every instance needs the whole fleet's.

Two ways round aiomqtt's per-message costs, each measured with bench/ingest.py (bench/RESULTS.md,
"Signatures in a process, receipts and messages without a wait each"): a backlog of received
messages is taken from its queue at once (its iterator makes a task and an `asyncio.wait` for
every message), and receipts go to the paho client under it without waiting for each
acknowledgement (aiomqtt's publish makes an event, a task and a timer for each and looks through
every call in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncGenerator

import aiomqtt
import paho.mqtt.client as paho

from collector.metrics import CollectorMetrics
from collector.pipeline.ports import Message
from collector.pipeline.receipt import RECEIPTS_IN_FLIGHT, RECEIPTS_QUEUED
from collector.pipeline.receive import RESULT_KINDS
from collector.registry import approval_topic
from contract.errors import QosfleetError
from contract.fleet import meta_topic, status_topic
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import TOPIC_PREFIX

log = logging.getLogger("qosfleet.collector")

BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0
# A receipt waits this long for a connection (at start, or across a reconnection) before it is
# given up, and its probe sends the result again.
CONNECTION_WAIT_S = 10.0
# Approvals first: the broker sends retained messages in subscription order, so an operator's
# decision is known before the meta it decides on.
FLEET_TOPICS = (approval_topic("+"), meta_topic("+"), status_topic("+"))


def subscription(group: str, kind: str) -> str:
    """Shared subscription: the broker splits results across a group's collectors."""
    return f"$share/{group}/{TOPIC_PREFIX}/+/{kind}"


class NotConnectedError(QosfleetError):
    """A receipt found no connection (or no room in its queue) to send it on; the probe sends the
    result again."""


class MqttBroker:
    def __init__(self, config: BrokerConfig, group: str, metrics: CollectorMetrics) -> None:
        self.config = config
        self.group = group
        self.metrics = metrics
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()

    async def messages(self) -> AsyncGenerator[Message, None]:
        """Stay subscribed for ever, reconnecting with capped, jittered exponential backoff."""
        delay = BACKOFF_FIRST_S
        identifier = f"qos-collector-{os.getpid()}-{random.randrange(1 << 32):08x}"  # noqa: S311
        try:
            while True:
                try:
                    # MQTT 3.1.1 on purpose: paho parses v5 properties of every PUBLISH in
                    # Python, a quarter of the ingest CPU; mosquitto splits $share
                    # subscriptions for 3.1.1 too.
                    inboxes: list[asyncio.Queue[aiomqtt.Message]] = []
                    client = mqtt_client(
                        self.config,
                        identifier=identifier,
                        protocol=aiomqtt.ProtocolVersion.V311,
                        inbox=_kept_in(inboxes),
                        max_in_flight=RECEIPTS_IN_FLIGHT,
                        max_queued_outgoing=RECEIPTS_QUEUED,
                    )
                    async with client:
                        # Fleet first: the broker sends retained enrollments before any result.
                        await client.subscribe([(topic, 1) for topic in FLEET_TOPICS])
                        shared = [subscription(self.group, kind) for kind in sorted(RESULT_KINDS)]
                        await client.subscribe([(topic, 1) for topic in shared])
                        self._client = client
                        self._connected.set()
                        self.metrics.broker_connected.set(1)
                        log.info("subscribed to %s", ", ".join(shared))
                        delay = BACKOFF_FIRST_S
                        (inbox,) = inboxes
                        async for first in client.messages:
                            yield _message(first)
                            while not inbox.empty():
                                yield _message(inbox.get_nowait())
                except aiomqtt.MqttError as exc:
                    self._disconnected()
                    log.warning("broker %s: %s; retrying in %.1f s", self.config.url, exc, delay)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311
                    delay = min(delay * 2, BACKOFF_CAP_S)
        finally:
            self._disconnected()

    def _disconnected(self) -> None:
        self._client = None
        self._connected.clear()
        self.metrics.broker_connected.set(0)

    async def publish(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            # Results the journal held are written, and answered, before the first connection.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), CONNECTION_WAIT_S)
        client = self._client
        if client is None:
            raise NotConnectedError("not connected to the broker")
        # paho sends it at QoS 1 in order, at most RECEIPTS_IN_FLIGHT unacknowledged, the rest
        # queued (up to RECEIPTS_QUEUED); aiomqtt has no public call that does not wait.
        info = client._client.publish(topic, payload, qos=1)  # noqa: SLF001
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise NotConnectedError(
                f"the broker connection did not take it: {paho.error_string(info.rc)}"
            )


def _kept_in(kept: list[asyncio.Queue[aiomqtt.Message]]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for the client's received messages whose instance lands in `kept`."""

    class Inbox(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            kept.append(self)

    return Inbox


def _message(message: aiomqtt.Message) -> Message:
    payload = message.payload
    return Message(
        message.topic.value, bytes(payload) if isinstance(payload, bytes | bytearray) else b""
    )
