"""The collector process: MQTT shared subscription in, store out, receipts back, metrics up."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from collector.ingest import ResultRejectedError, validate
from collector.metrics import CollectorMetrics
from collector.store import StoreWriter
from collector.verdicts import keep_verdicts_fresh
from contract.errors import ServiceError
from contract.mqtt import BrokerConfig, mqtt_client
from contract.profiles import bundled_profiles, load_profiles
from contract.result import TOPIC_PREFIX, Receipt, encode_receipt, receipt_topic

log = logging.getLogger("qosfleet.collector")

BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0


class CollectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    broker: BrokerConfig
    store_url: str
    group: str = "collectors"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # Seconds between refreshes of the per-area verdict series; 0 leaves it to another instance.
    verdict_interval_s: float = 60.0
    profiles_path: str | None = None


def subscription(group: str) -> str:
    """MQTT v5 shared subscription: the broker splits results across a group's collectors."""
    return f"$share/{group}/{TOPIC_PREFIX}/+/result"


class Collector:
    def __init__(self, settings: CollectorSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = CollectorMetrics(registry)
        self.store = StoreWriter(settings.store_url)
        self.subscribed = asyncio.Event()

    async def handle(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        try:
            result = validate(topic, payload)
        except ResultRejectedError as rejection:
            self.metrics.rejected.labels(reason=rejection.reason).inc()
            log.warning("rejected result on %s: %s", topic, rejection)
            return
        try:
            await self.store.write([result])
        except ServiceError as exc:
            # No receipt: the probe keeps the result in its spool and sends it again.
            self.metrics.write_errors.inc()
            log.error("result %s not stored: %s", result.id, exc.message)  # noqa: TRY400
            return
        self.metrics.accepted.inc()
        lag = (datetime.now(UTC) - result.finished_at).total_seconds()
        self.metrics.ingest_lag.observe(max(lag, 0.0))
        receipt = Receipt(id=result.id, status="stored")
        await client.publish(receipt_topic(result.probe_id), encode_receipt(receipt), qos=1)

    async def consume(self) -> None:
        """Stay subscribed for ever, reconnecting with capped, jittered exponential backoff."""
        delay = BACKOFF_FIRST_S
        identifier = f"qos-collector-{os.getpid()}-{random.randrange(1 << 32):08x}"  # noqa: S311
        while True:
            try:
                async with mqtt_client(self.settings.broker, identifier=identifier) as client:
                    await client.subscribe(subscription(self.settings.group), qos=1)
                    self.metrics.broker_connected.set(1)
                    self.subscribed.set()
                    log.info("subscribed to %s", subscription(self.settings.group))
                    delay = BACKOFF_FIRST_S
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            await self.handle(client, message.topic.value, bytes(message.payload))
                        else:
                            self.metrics.rejected.labels(reason="malformed").inc()
            except aiomqtt.MqttError as exc:
                self.metrics.broker_connected.set(0)
                self.subscribed.clear()
                log.warning(
                    "broker %s: %s; retrying in %.1f s", self.settings.broker.url, exc, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311
                delay = min(delay * 2, BACKOFF_CAP_S)

    async def close(self) -> None:
        await self.store.close()


def metrics_app(registry: CollectorRegistry) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: CollectorSettings, registry: CollectorRegistry | None = None) -> None:
    """Run the collector until cancelled."""
    registry = registry or CollectorRegistry()
    path = settings.profiles_path
    profiles = load_profiles(Path(path)) if path else bundled_profiles()
    collector = Collector(settings, registry)
    runner = web.AppRunner(metrics_app(registry), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
        try:
            await site.start()
        except OSError as exc:
            raise ServiceError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
                f"{exc.strerror}",
                "choose a free port with --metrics-listen",
            ) from exc
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(collector.consume(), name="consume")
            if settings.verdict_interval_s > 0:
                tasks.create_task(
                    keep_verdicts_fresh(
                        collector.store, profiles, interval_s=settings.verdict_interval_s
                    ),
                    name="verdicts",
                )
    finally:
        await collector.close()
        await runner.cleanup()
