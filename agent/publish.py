"""Publishing results over MQTT (QoS 1): one on demand, or the daemon's spool, in order.

The daemon's publisher holds one connection at a time and reconnects with capped, jittered
exponential backoff. On each connection it publishes the retained enrollment (meta) and the
retained "online" status; the broker publishes the retained last will "offline" if the probe
vanishes. A result leaves the spool only on the collector's receipt, never on the broker's PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import aiomqtt

from agent.config import AgentConfig
from agent.spool import Spool, SpooledResult
from contract.errors import ConfigError, ServiceError, WireError
from contract.fleet import ProbeMeta, ProbeStatus, encode, meta_topic, status_topic
from contract.i18n import _
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import (
    MAX_BATCH,
    Receipt,
    Result,
    decode_receipt,
    encode_batch_payloads,
    encode_result,
    receipt_topic,
    result_topic,
    results_topic,
)

log = logging.getLogger("qosfleet.agent")

# The last words of a clean shutdown must not hold it up for long.
GOODBYE_TIMEOUT_S = 2.0
# Calls in flight beyond a full window of results: status, meta, subscribe.
PENDING_MARGIN = 8
STABLE_SESSION_S = 30.0
# The shipped broker drops a client that sends a packet over 256 KiB (deploy/mosquitto,
# max_packet_size): a batch stays well below, whatever the results weigh.
MAX_BATCH_BYTES = 128 * 1024


async def publish_result(
    broker: BrokerConfig,
    result: Result,
    *,
    meta: ProbeMeta | None = None,
    receipt_timeout_s: float | None = 10.0,
) -> Receipt | None:
    """Publish one result; return the collector's receipt, or None when not waiting for one.

    meta: the probe's enrollment, published (retained) first as the daemon does on connecting,
    so a collector knows the probe and its key even when its daemon has never run.
    """
    try:
        async with mqtt_client(broker, identifier=f"{result.probe_id}-check") as client:
            if receipt_timeout_s is not None:
                await client.subscribe(receipt_topic(result.probe_id), qos=1)
            if meta is not None:
                await client.publish(meta_topic(meta.probe_id), encode(meta), qos=1, retain=True)
            await client.publish(result_topic(result.probe_id), encode_result(result), qos=1)
            if receipt_timeout_s is None:
                return None
            return await _await_receipt(client, result, receipt_timeout_s)
    except aiomqtt.MqttError as exc:
        raise ServiceError(
            _("cannot reach the MQTT broker at {broker}: {reason}").format(
                broker=broker.url, reason=exc
            ),
            _("check that the broker runs and broker.url / credentials in the config are right"),
        ) from exc


async def _await_receipt(client: aiomqtt.Client, result: Result, timeout_s: float) -> Receipt:
    try:
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                if not isinstance(message.payload, bytes | bytearray):
                    continue
                try:
                    receipt = decode_receipt(bytes(message.payload))
                except WireError:
                    continue
                if receipt.id == result.id:
                    return receipt
    except TimeoutError:
        pass
    raise ServiceError(
        _("no receipt for result {id} within {seconds} s").format(
            id=result.id, seconds=f"{timeout_s:g}"
        ),
        _(
            "the broker took the result, but no collector confirmed storing it: is qos-collector "
            "up? A collector also stays silent on a probe it has no enrollment for (run "
            "`qos-agent enroll` first)"
        ),
    )


class Sent:
    """A result on its way: how often it was sent, and when to give up waiting for its receipt."""

    __slots__ = ("deadline", "overdue", "sends")

    def __init__(self) -> None:
        self.sends = 0
        self.deadline = 0.0
        self.overdue = False


class Publisher:
    """Drains the spool to the broker and settles it from the collector's receipts.

    At most `publish.window` results await a receipt at once. When one times out with no receipt,
    the window closes to a single result (the oldest, re-sent with a doubling wait): a probe whose
    collector is away spends one message per wait instead of re-sending its whole backlog. The
    next receipt opens the window again.
    """

    def __init__(
        self,
        config: AgentConfig,
        spool: Spool,
        *,
        meta: ProbeMeta,
        status: Callable[[Literal["online", "offline"]], Awaitable[ProbeStatus]],
        on_connection: Callable[[bool, str | None], None] = lambda _up, _error: None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.spool = spool
        self.meta = meta
        self.status = status
        self.on_connection = on_connection
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self.wake = asyncio.Event()
        self.connected = False
        self._error: str | None = None
        self._sent: dict[str, Sent] = {}
        self._window = config.publish.window
        self._receipts: asyncio.Queue[tuple[str, Literal["stored", "rejected"]]] = asyncio.Queue()

    @property
    def probe_id(self) -> str:
        return self.config.probe_id

    async def run(self) -> None:
        """Stay connected for ever; the last will says "offline" if the probe dies."""
        publish = self.config.publish
        delay = publish.reconnect_first_s
        while True:
            offline = ProbeStatus(probe_id=self.probe_id, state="offline")
            will = aiomqtt.Will(status_topic(self.probe_id), encode(offline), qos=1, retain=True)
            connected_at: float | None = None
            try:
                # A CA file gone bad since the start is a ConfigError here: the probe keeps
                # measuring into its spool, says why it cannot connect, and tries again.
                client = mqtt_client(self.config.broker, identifier=self.probe_id, will=will)
                # A full window of results awaiting PUBACK is normal here, not a warning.
                client.pending_calls_threshold = publish.window + PENDING_MARGIN
                async with client:
                    connected_at = time.monotonic()
                    await self._session(client)
            except* (aiomqtt.MqttError, ConfigError) as errors:
                reason = str(_first(errors))
                self._set_connected(up=False, error=reason)
                # Only a session that held resets the backoff: a broker that drops the probe at
                # once (e.g. a second probe with the same id taking the session) is not hammered.
                if connected_at is not None and time.monotonic() - connected_at > STABLE_SESSION_S:
                    delay = publish.reconnect_first_s
                pause = delay * self.rng.uniform(0.5, 1.0)
                log.warning(
                    _("broker %s: %s; next try in %.1f s"), self.config.broker.url, reason, pause
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, publish.reconnect_cap_s)

    def _set_connected(self, *, up: bool, error: str | None) -> None:
        if (up, error) != (self.connected, self._error):
            self.connected, self._error = up, error
            self.on_connection(up, error)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(receipt_topic(self.probe_id), qos=1)
        await client.publish(meta_topic(self.probe_id), encode(self.meta), qos=1, retain=True)
        await client.publish(
            status_topic(self.probe_id), encode(await self.status("online")), qos=1, retain=True
        )
        log.info(_("connected to %s; %d results spooled"), self.config.broker.url, self.spool.depth)
        self._set_connected(up=True, error=None)
        # Receipts published while we were away are gone: everything unreceipted is due again.
        self._sent.clear()
        self._window = self.config.publish.window
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._receive(client), name="receive")
                tasks.create_task(self._settle(), name="settle")
                tasks.create_task(self._drain(client), name="drain")
                tasks.create_task(self._refresh_status(client), name="status")
        except asyncio.CancelledError:
            # A clean disconnect does not fire the last will: say "offline" ourselves.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                    offline = encode(await self.status("offline"))
                    await client.publish(status_topic(self.probe_id), offline, qos=1, retain=True)
            raise

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not isinstance(message.payload, bytes | bytearray):
                continue
            try:
                receipt = decode_receipt(bytes(message.payload))
            except WireError as exc:
                log.warning(_("ignored a malformed receipt: %s"), exc)
                continue
            if receipt.status == "rejected":
                log.warning(_("collector refused result %s: %s"), receipt.id, receipt.reason)
            for result_id in receipt.ids():
                self._receipts.put_nowait((str(result_id), receipt.status))

    async def _settle(self) -> None:
        """Forget receipted results, in batches: one disk sync for all receipts that are waiting."""
        while True:
            batch = [await self._receipts.get()]
            while not self._receipts.empty():
                batch.append(self._receipts.get_nowait())
            try:
                removed = self.spool.settle(batch)
            except sqlite3.Error as exc:
                # The results stay spooled and are sent again; their receipts will come again.
                log.error(_("spool: cannot settle %d receipts (%s)"), len(batch), exc)  # noqa: TRY400
                continue
            for result_id in removed:
                self._sent.pop(result_id, None)
            self._window = self.config.publish.window
            self.wake.set()

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            self.wake.clear()
            now = time.monotonic()
            overdue = [s for s in self._sent.values() if s.deadline <= now and not s.overdue]
            for sent in overdue:
                sent.overdue = True
            if overdue:
                self._window = 1  # a receipt is late: probe with the oldest result only
            waiting = {rid for rid, sent in self._sent.items() if not sent.overdue}
            try:
                batch = self.spool.due(self._window - len(waiting), skip=waiting)
            except sqlite3.Error as exc:
                log.error(_("spool: cannot read (%s)"), exc)  # noqa: TRY400
                batch = []
            if batch:
                self._track(batch, now)
                async with asyncio.TaskGroup() as sends:
                    for topic, payload in messages(self.probe_id, batch):
                        sends.create_task(client.publish(topic, payload, qos=1))
            deadlines = [sent.deadline for sent in self._sent.values() if not sent.overdue]
            timeout = max(min(deadlines) - time.monotonic(), 0.0) if deadlines else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()

    def _track(self, batch: list[SpooledResult], now: float) -> None:
        publish = self.config.publish
        self.spool.mark_sent(row.id for row in batch)
        for row in batch:
            sent = self._sent.setdefault(row.id, Sent())
            sent.sends += 1
            sent.overdue = False
            wait = publish.receipt_timeout_s * 2 ** (sent.sends - 1)
            sent.deadline = now + min(wait, publish.resend_cap_s)

    async def _refresh_status(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.config.publish.status_interval_s)
            online = encode(await self.status("online"))
            await client.publish(status_topic(self.probe_id), online, qos=1, retain=True)


def messages(probe_id: str, rows: Sequence[SpooledResult]) -> list[tuple[str, bytes]]:
    """(topic, payload) for results due: batches when draining, a lone result on its own topic.

    Each message costs the collector far more than a result's checks, so a backlog goes in
    batches of up to MAX_BATCH (and MAX_BATCH_BYTES), in spool order.
    """
    chunks: list[list[bytes]] = []
    size = 0
    for row in rows:
        if not chunks or len(chunks[-1]) >= MAX_BATCH or size + len(row.payload) > MAX_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(row.payload)
        size += len(row.payload)
    return [
        (result_topic(probe_id), chunk[0])
        if len(chunk) == 1
        else (results_topic(probe_id), encode_batch_payloads(chunk))
        for chunk in chunks
    ]


def _first(errors: BaseExceptionGroup[aiomqtt.MqttError | ConfigError]) -> BaseException:
    """The first leaf of a (possibly nested) exception group: the reason a session ended."""
    first: BaseException = errors
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
