"""The collector process: MQTT shared subscription in, store out, receipts back, metrics up.

One asyncio loop runs named tasks that hand batches to each other:
- consume: every message from the broker; meta and status update the probe registry, results get
  every cheap check (collector/ingest.py) and the replay check against the journal;
- verify: Ed25519 signatures, in a worker thread (the check releases the GIL and costs more than
  everything else together);
- write: accepted results into the journal (collector/journal.py), then from the journal into the
  store, oldest first, in batches, with capped backoff while the store is down;
- receipts: "stored" only after the store took the write; "rejected" for permanent refusals;
- watch: which run of the store answers; lines the store has had time to put on disk are dropped
  from the journal, and all others are written again when the store was restarted (a receipt is
  a promise: VictoriaMetrics acknowledges rows it holds in memory for a few seconds);
- fleet: registry and journal housekeeping, and the fleet-state series.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from collector.api import ApiTokens, api_app, read_api_tokens
from collector.ingest import (
    Candidate,
    IngestPolicy,
    ResultRejectedError,
    check,
    probe_id_of,
    split,
    verify,
)
from collector.journal import Entry, Journal
from collector.metrics import CollectorMetrics
from collector.registry import FleetMessageRejectedError, ProbeRegistry, approval_topic
from collector.state import open_database
from collector.store import StoreWriter, result_line
from collector.verdicts import keep_verdicts_fresh
from contract.errors import ServiceError
from contract.fleet import meta_topic, status_topic
from contract.mqtt import BrokerConfig, mqtt_client
from contract.profiles import bundled_profiles, load_profiles
from contract.result import (
    MAX_BATCH,
    TOPIC_PREFIX,
    Receipt,
    encode_receipt,
    receipt_topic,
    result_topic,
)

log = logging.getLogger("qosfleet.collector")

BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0
# Each hand-over (to the verifying thread, to the store) has a fixed cost; waiting this long for
# more work turns a trickle of results into batches, for a few tens of milliseconds of latency.
VERIFY_LINGER_S = 0.02
WRITE_LINGER_S = 0.1
# An error we did not foresee is logged with its traceback at most this often (each one counted):
# a message that trips it again and again must not flood the log.
UNEXPECTED_LOG_INTERVAL_S = 60.0


class CollectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    broker: BrokerConfig
    store_url: str
    # The journal and the probe registry; one directory per collector process.
    state_dir: str
    group: str = "collectors"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # The export API; None leaves it off.
    api_host: str | None = None
    api_port: int = 9109
    # Bearer tokens that may read raw results (None: only aggregates are served).
    api_token_file: str | None = None
    # Seconds between refreshes of the per-area verdict series; 0 leaves it to another instance.
    verdict_interval_s: float = 60.0
    # Seconds between writes of the fleet-state series (qos_probe_online, budgets).
    fleet_interval_s: float = 60.0
    profiles_path: str | None = None
    policy: IngestPolicy = IngestPolicy()
    # Lines per write to the store.
    batch_size: int = 5000
    # The /metrics of every store process that holds acknowledged rows in memory (default: the
    # store's own), and how often to ask them which run answers.
    store_metrics_urls: tuple[str, ...] = ()
    store_check_interval_s: float = 1.0
    # How long after a write a store run that is still up holds the row on disk. VictoriaMetrics
    # 1.79 moves rows to disk 6 to 11 s after it acknowledged them (raw rows every second, then
    # in-memory parts once 5 s old, checked every 5 s); later versions within
    # -inmemoryDataFlushInterval (5 s). Measured on kill -9: nothing older than 5 s was lost.
    store_persist_s: float = 30.0
    ledger_ttl_s: float = timedelta(days=2).total_seconds()


def subscription(group: str, kind: str = "result") -> str:
    """MQTT v5 shared subscription: the broker splits results across a group's collectors."""
    return f"$share/{group}/{TOPIC_PREFIX}/+/{kind}"


# Single results, and batches of them (a probe draining its spool).
RESULT_KINDS = ("result", "results")


# Every instance needs the whole fleet's enrollment and liveness, so these are not shared.
# Approvals first: the broker sends retained messages in subscription order, so an operator's
# decision is known before the meta it decides on.
FLEET_TOPICS = (approval_topic("+"), meta_topic("+"), status_topic("+"))
FLEET_KINDS = frozenset({"approval", "meta", "status"})


class Collector:
    def __init__(self, settings: CollectorSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = CollectorMetrics(registry)
        path = settings.profiles_path
        # The profiles decide each sample's class at ingest (collector/series.py).
        self.profiles = load_profiles(Path(path)) if path else bundled_profiles()
        self.store = StoreWriter(settings.store_url, settings.store_metrics_urls)
        database = open_database(Path(settings.state_dir))
        self.journal = Journal(database, ledger_ttl_s=settings.ledger_ttl_s)
        self.probes = ProbeRegistry(database)
        self._database = database
        self.subscribed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        # Ids between the replay check and the journal, so a copy arriving meanwhile is a replay.
        self._in_flight: set[uuid.UUID] = set()
        self._to_verify: list[Candidate] = []
        # Ids that came in a batch: their "stored" receipts go grouped, as the probe can read them.
        self._batched: set[uuid.UUID] = set()
        self._accepted: list[Entry] = []
        self._receipts: list[tuple[str, bytes, str]] = []
        self._fleet_changed: set[str] = set()
        self._verify_wake = asyncio.Event()
        self._write_wake = asyncio.Event()
        self._receipt_wake = asyncio.Event()
        self._fleet_wake = asyncio.Event()
        self._disputed_shown: set[str] = set()
        # The store run every written line went to, and the one the watcher saw last: when they
        # differ the store restarted, and every unconfirmed line is written again.
        self._store_run = self.journal.store_run()
        self._store_run_seen: str | None = None
        self._store_down_since: float | None = None
        self._unexpected_log_after = 0.0
        self._unexpected_unlogged = 0
        self._refresh_gauges()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.consume(), name="consume")
            tasks.create_task(self.verify_signatures(), name="verify")
            tasks.create_task(self.write_to_store(), name="write")
            tasks.create_task(self.send_receipts(), name="receipts")
            tasks.create_task(self.watch_store(), name="watch")
            tasks.create_task(self.keep_fleet_state(), name="fleet")

    # consume ---------------------------------------------------------------------------------

    async def consume(self) -> None:
        """Stay subscribed for ever, reconnecting with capped, jittered exponential backoff."""
        delay = BACKOFF_FIRST_S
        identifier = f"qos-collector-{os.getpid()}-{random.randrange(1 << 32):08x}"  # noqa: S311
        while True:
            try:
                # MQTT 3.1.1 on purpose: paho parses v5 properties of every PUBLISH in Python, a
                # quarter of the ingest CPU; mosquitto splits $share subscriptions for 3.1.1 too.
                client = mqtt_client(
                    self.settings.broker,
                    identifier=identifier,
                    protocol=aiomqtt.ProtocolVersion.V311,
                )
                # Receipts are published concurrently by the thousand: that is normal here.
                client.pending_calls_threshold = 1 << 30
                async with client:
                    # Fleet first: the broker sends retained enrollments before any result.
                    await client.subscribe([(topic, 1) for topic in FLEET_TOPICS])
                    shared = [subscription(self.settings.group, kind) for kind in RESULT_KINDS]
                    await client.subscribe([(topic, 1) for topic in shared])
                    self._client = client
                    self.metrics.broker_connected.set(1)
                    self.subscribed.set()
                    log.info("subscribed to %s", ", ".join(shared))
                    delay = BACKOFF_FIRST_S
                    async for message in client.messages:
                        self.on_message(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                self._client = None
                self.metrics.broker_connected.set(0)
                self.subscribed.clear()
                log.warning(
                    "broker %s: %s; retrying in %.1f s", self.settings.broker.url, exc, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311
                delay = min(delay * 2, BACKOFF_CAP_S)

    def on_message(self, topic: str, payload: object) -> None:
        """One message; whatever happens while handling it, the next one is handled too."""
        kind = topic.rpartition("/")[2]
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        try:
            if kind == "result":
                self.on_result(topic, data)
            elif kind == "results":
                self.on_batch(topic, data)
            elif kind in FLEET_KINDS:
                self.on_fleet_message(kind, topic, data)
        except Exception as exc:  # noqa: BLE001 - a bug on one message must not stop the collector
            self.unexpected(kind, topic, exc)

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

    def on_result(self, topic: str, payload: bytes) -> None:
        stored = self._admit(topic, payload, now=datetime.now(UTC))
        if stored is not None:
            self.queue_receipt(probe_id_of(topic), Receipt(id=stored, status="stored"))

    def on_batch(self, topic: str, payload: bytes) -> None:
        """Each result of a batch as if it came alone; receipts for stored ones grouped."""
        try:
            elements = split(payload, self.settings.policy)
        except ResultRejectedError as rejection:
            self.reject(topic, rejection)
            return
        now = datetime.now(UTC)
        said_again: list[uuid.UUID] = []
        for element in elements:
            stored = self._admit(topic, element, now=now, batched=True)
            if stored is not None:
                said_again.append(stored)
        if said_again:
            first, *rest = said_again
            self.queue_receipt(
                probe_id_of(topic), Receipt(id=first, status="stored", also=tuple(rest))
            )

    def _admit(
        self, topic: str, payload: bytes, *, now: datetime, batched: bool = False
    ) -> uuid.UUID | None:
        """Queue one result for its signature check; return its id when it is already stored."""
        try:
            candidate = check(
                topic,
                payload,
                now=now,
                policy=self.settings.policy,
                enrollment_of=self.probes.enrollment,
            )
        except ResultRejectedError as rejection:
            self.reject(topic, rejection)
            return None
        result = candidate.result
        known = "pending" if result.id in self._in_flight else self.journal.known(result.id)
        if known is not None:
            self.metrics.rejected.labels(reason="replay").inc()
            log.info("result %s of %r again (%s): not stored twice", result.id, topic, known)
            # The probe missed the receipt of a written one: say it again so it drops the result.
            return result.id if known == "written" else None
        self._in_flight.add(result.id)
        if batched:
            self._batched.add(result.id)
        self._to_verify.append(candidate)
        self._verify_wake.set()
        return None

    def on_fleet_message(self, kind: str, topic: str, payload: bytes) -> None:
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
            self._fleet_changed.add(probe_id)
            self._fleet_wake.set()
            if kind != "status":
                self._refresh_disputed()

    def reject(self, topic: str, rejection: ResultRejectedError) -> None:
        self.metrics.rejected.labels(reason=rejection.reason).inc()
        log.warning("rejected result on %r: %s", topic, rejection.message)
        if rejection.permanent and rejection.result_id is not None:
            receipt = Receipt(id=rejection.result_id, status="rejected", reason=rejection.message)
            self.queue_receipt(probe_id_of(topic), receipt)

    # verify ----------------------------------------------------------------------------------

    async def verify_signatures(self) -> None:
        while True:
            await self._verify_wake.wait()
            await asyncio.sleep(VERIFY_LINGER_S)
            self._verify_wake.clear()
            batch, self._to_verify = self._to_verify, []
            outcomes: list[Exception | None] = [None] * len(batch)
            if any(c.result.signature and c.enrollment for c in batch):
                outcomes = await asyncio.to_thread(_verify_all, batch)
            now = time.time()
            for candidate, outcome in zip(batch, outcomes, strict=True):
                try:
                    self._verified(candidate, outcome, now)
                except Exception as exc:  # noqa: BLE001 - one result's bug must not stop the others
                    self._in_flight.discard(candidate.result.id)
                    self._batched.discard(candidate.result.id)
                    self.unexpected("result", result_topic(candidate.result.probe_id), exc)
            self._write_wake.set()

    def _verified(self, candidate: Candidate, outcome: Exception | None, now: float) -> None:
        result = candidate.result
        if isinstance(outcome, ResultRejectedError):
            self._in_flight.discard(result.id)
            self._batched.discard(result.id)
            self.reject(result_topic(result.probe_id), outcome)
            return
        if outcome is not None:
            raise outcome
        line = result_line(result, candidate.location, self.profiles)
        entry = Entry(result.id, result.probe_id, result.finished_at.timestamp(), line)
        self._accepted.append(entry)
        self.probes.seen(result.probe_id, now)

    # write -----------------------------------------------------------------------------------

    async def write_to_store(self) -> None:
        delay = BACKOFF_FIRST_S
        backlog = True  # results may wait in the journal from before a restart
        while True:
            if not backlog:
                if not self._accepted and not self._replay_due():
                    await self._write_wake.wait()
                await asyncio.sleep(WRITE_LINGER_S)
            self._write_wake.clear()
            self._journal_accepted()
            batch = self.journal.pending(self.settings.batch_size)
            if not batch and not self._replay_due():
                backlog = False
                self.metrics.buffer_depth.set(0)
                continue
            if await self._write(batch):
                delay = BACKOFF_FIRST_S
                backlog = len(batch) == self.settings.batch_size
                self.metrics.buffer_depth.set(self.journal.depth() if backlog else 0)
                continue
            backlog = True
            self.metrics.buffer_depth.set(self.journal.depth())
            await self._pause(delay * random.uniform(0.5, 1.0))  # noqa: S311
            delay = min(delay * 2, BACKOFF_CAP_S)

    def _journal_accepted(self) -> None:
        fresh, self._accepted = self._accepted, []
        if not fresh:
            return
        try:
            self.journal.append(fresh)
        except ServiceError as exc:
            # Not buffered and no receipt: the probes still hold these and will send them again.
            self.metrics.rejected.labels(reason="not-journaled").inc(len(fresh))
            log.error("%d results not buffered: %s", len(fresh), exc.message)  # noqa: TRY400
            self._batched.difference_update(entry.id for entry in fresh)
        finally:
            self._in_flight.difference_update(entry.id for entry in fresh)

    async def _pause(self, seconds: float) -> None:
        """Wait before retrying the store, buffering what arrives meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._write_wake.wait()
            self._write_wake.clear()
            self._journal_accepted()

    async def _write(self, batch: list[Entry]) -> bool:
        try:
            if self._replay_due():
                await self._replay()
            if batch:
                await self.store.write_lines([entry.line for entry in batch])
        except ServiceError as exc:
            self.metrics.write_errors.inc()
            self.metrics.store_up.set(0)
            if self._store_down_since is None:
                self._store_down_since = time.time()
                self.journal.set_durability(fsync_every_commit=True)
            log.error("%d results wait for the store: %s", len(batch), exc.message)  # noqa: TRY400
            return False
        now = time.time()
        if self._store_down_since is not None:
            log.info("store back after %.0f s", now - self._store_down_since)
            self._store_down_since = None
            self.journal.set_durability(fsync_every_commit=False)
        self.metrics.store_up.set(1)
        try:
            self.journal.mark_written(batch, now)
        except ServiceError as exc:
            # The store has them but the journal cannot say so (its disk is full): no receipt
            # yet. They stay pending, so they are written again (the store keeps one copy) and
            # receipted once the journal can record it.
            log.error("%d results stored, receipts wait: %s", len(batch), exc.message)  # noqa: TRY400
            return False
        self.metrics.accepted.inc(len(batch))
        self.metrics.unconfirmed.inc(len(batch))  # counted exactly again by the housekeeping
        self._receipt_stored(batch, now)
        return True

    def _receipt_stored(self, batch: list[Entry], now: float) -> None:
        grouped: dict[str, list[uuid.UUID]] = {}
        for entry in batch:
            self.metrics.ingest_lag.observe(max(now - entry.finished_at, 0.0))
            if entry.id in self._batched:
                self._batched.discard(entry.id)
                grouped.setdefault(entry.probe_id, []).append(entry.id)
            else:
                # Sent alone, perhaps by a probe that reads only `id`: answered alone.
                self.queue_receipt(entry.probe_id, Receipt(id=entry.id, status="stored"))
        for probe_id, ids in grouped.items():
            for start in range(0, len(ids), MAX_BATCH):
                first, *rest = ids[start : start + MAX_BATCH]
                receipt = Receipt(id=first, status="stored", also=tuple(rest))
                self.queue_receipt(probe_id, receipt)

    def _replay_due(self) -> bool:
        seen = self._store_run_seen
        return seen is not None and seen != self._store_run

    async def _replay(self) -> None:
        """The store restarted: write every line it may have lost again, then trust the new run.

        The new run is recorded only after every line reached it, so a collector killed halfway
        starts over; a store restarted again meanwhile is seen by the watcher and replayed again.
        """
        run = self._store_run_seen
        assert run is not None  # _replay_due said so
        after, count = 0, 0
        while chunk := self.journal.unconfirmed(after, self.settings.batch_size):
            await self.store.write_lines([line for _, line in chunk])
            after, count = chunk[-1][0], count + len(chunk)
        self.journal.rewritten(after, time.time())
        self.journal.set_store_run(run)
        if self._store_run is not None:
            self.metrics.store_restarts.inc()
            log.warning(
                "the store restarted (run %s): wrote %d lines again that it may have lost",
                run,
                count,
            )
        self._store_run = run
        self.metrics.replayed.inc(count)

    # watch -----------------------------------------------------------------------------------

    async def watch_store(self) -> None:
        """Drop lines the store has had time to persist; spot a restart that may have lost some.

        A line written at `t` is on disk once the store run that took it has been up until
        `t + store_persist_s`. The check time is taken before the run is asked, so an answer
        from the same (settled) run proves it was up all along.
        """
        failing = False
        while True:
            await asyncio.sleep(self.settings.store_check_interval_s)
            asked_at = time.time()
            try:
                run = await self.store.run()
            except ServiceError as exc:
                if not failing:
                    log.warning("store run unknown, written lines kept: %s", exc.message)
                failing = True
                continue
            failing = False
            if not run.settled:
                continue  # another process may still start within the same second
            self._store_run_seen = run.starts
            if run.starts != self._store_run:
                self._write_wake.set()  # the write task replays
                continue
            try:
                confirmed = self.journal.confirm(asked_at - self.settings.store_persist_s)
                self.metrics.unconfirmed.dec(confirmed)
            except ServiceError as exc:
                log.error("journal: %s", exc.message)  # noqa: TRY400

    # receipts --------------------------------------------------------------------------------

    def queue_receipt(self, probe_id: str, receipt: Receipt) -> None:
        self._receipts.append((receipt_topic(probe_id), encode_receipt(receipt), receipt.status))
        self._receipt_wake.set()

    async def send_receipts(self) -> None:
        """Publish queued receipts concurrently; one lost is answered again on the re-send."""
        while True:
            await self._receipt_wake.wait()
            self._receipt_wake.clear()
            batch, self._receipts = self._receipts, []
            client = self._client
            if client is None:
                log.warning("%d receipts not sent: not connected to the broker", len(batch))
                continue
            outcomes = await asyncio.gather(
                *(client.publish(topic, payload, qos=1) for topic, payload, _ in batch),
                return_exceptions=True,
            )
            for (_, _, status), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    log.warning("receipt not sent: %s", outcome)
                else:
                    self.metrics.receipts.labels(status=status).inc()

    # fleet -----------------------------------------------------------------------------------

    async def keep_fleet_state(self) -> None:
        """Housekeeping, and the fleet series: all probes every interval, changes at once."""
        next_full = time.monotonic()
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(max(next_full - time.monotonic(), 0.0)):
                    await self._fleet_wake.wait()
            self._fleet_wake.clear()
            changed, self._fleet_changed = self._fleet_changed, set()
            full = time.monotonic() >= next_full
            if full:
                next_full = time.monotonic() + max(self.settings.fleet_interval_s, 0.1)
                self._housekeeping()
            lines = self.probes.fleet_lines(
                round(time.time() * 1000), only=None if full else changed
            )
            if lines:
                try:
                    await self.store.write_lines(lines)
                except ServiceError as exc:
                    # The next full round writes the current state again.
                    log.warning("fleet state not written: %s", exc.message)

    def _housekeeping(self) -> None:
        try:
            if self._store_down_since is None:
                self.journal.prune(time.time())
            self.probes.save_last_seen()
        except ServiceError as exc:
            log.error("housekeeping: %s", exc.message)  # noqa: TRY400
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
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

    async def close(self) -> None:
        await self.store.close()
        with suppress(ServiceError):
            self.probes.save_last_seen()
        self._database.close()


def _verify_all(batch: list[Candidate]) -> list[Exception | None]:
    return [_verify_one(candidate) for candidate in batch]


def _verify_one(candidate: Candidate) -> Exception | None:
    """The refusal, None, or an unforeseen error: raised again on the loop, which counts it."""
    try:
        return verify(candidate)
    except Exception as exc:  # noqa: BLE001 - in the worker thread: handed to the loop
        return exc


def metrics_app(registry: CollectorRegistry) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def _start_site(runner: web.AppRunner, host: str, port: int, option: str) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise ServiceError(
            f"cannot listen on {host}:{port}: {exc.strerror}", f"choose a free port with {option}"
        ) from exc


async def serve(settings: CollectorSettings, registry: CollectorRegistry | None = None) -> None:
    """Run the collector until cancelled."""
    registry = registry or CollectorRegistry()
    token_file = settings.api_token_file
    tokens = read_api_tokens(Path(token_file)) if token_file else ApiTokens(())
    collector = Collector(settings, registry)
    profiles = collector.profiles
    runners = [web.AppRunner(metrics_app(registry), access_log=None)]
    if settings.api_host is not None:
        app = api_app(settings.store_url, profiles, tokens)
        runners.append(web.AppRunner(app, access_log=None))
    try:
        for runner in runners:
            await runner.setup()
        await _start_site(
            runners[0], settings.metrics_host, settings.metrics_port, "--metrics-listen"
        )
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        if settings.api_host is not None:
            await _start_site(runners[1], settings.api_host, settings.api_port, "--api-listen")
            log.info("export API on http://%s:%d/api/v1/", settings.api_host, settings.api_port)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(collector.run(), name="ingest")
            if settings.verdict_interval_s > 0:
                tasks.create_task(
                    keep_verdicts_fresh(
                        collector.store, profiles, interval_s=settings.verdict_interval_s
                    ),
                    name="verdicts",
                )
    finally:
        await collector.close()
        for runner in runners:
            await runner.cleanup()
