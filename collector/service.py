"""The collector process: the ingest pipeline, the verdict refresh, metrics and the export API.

The pipeline (collector/pipeline/) gets the real broker connection and store writer here; its
journal and probe registry share one SQLite database in --state-dir.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from collector.api import ApiTokens, api_app, read_api_tokens
from collector.journal import Journal
from collector.metrics import CollectorMetrics
from collector.pipeline import Pipeline
from collector.pipeline.mqtt import MqttBroker
from collector.registry import ProbeRegistry
from collector.settings import CollectorSettings
from collector.state import open_database
from collector.store import StoreWriter
from collector.verdicts import keep_verdicts_fresh
from contract.errors import ServiceError
from contract.i18n import _
from contract.profiles import bundled_profiles, load_profiles

log = logging.getLogger("qosfleet.collector")


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
            _("cannot listen on {host}:{port}: {reason}").format(
                host=host, port=port, reason=exc.strerror
            ),
            _("choose a free port with {option}").format(option=option),
        ) from exc


async def serve(settings: CollectorSettings, registry: CollectorRegistry | None = None) -> None:
    """Run the collector until cancelled."""
    registry = registry or CollectorRegistry()
    token_file = settings.api_token_file
    tokens = read_api_tokens(Path(token_file)) if token_file else ApiTokens(())
    path = settings.profiles_path
    # The profiles decide each sample's class at ingest (collector/series.py).
    profiles = load_profiles(Path(path)) if path else bundled_profiles()
    metrics = CollectorMetrics(registry)
    database = open_database(Path(settings.state_dir))
    probes = ProbeRegistry(database)
    store = StoreWriter(settings.store_url, settings.store_metrics_urls)
    runners = [web.AppRunner(metrics_app(registry), access_log=None)]
    if settings.api_host is not None:
        app = api_app(settings.store_url, profiles, tokens)
        runners.append(web.AppRunner(app, access_log=None))
    try:
        pipeline = Pipeline(
            settings,
            broker=MqttBroker(settings.broker, settings.group, metrics),
            store=store,
            journal=Journal(database, ledger_ttl_s=settings.ledger_ttl_s),
            probes=probes,
            profiles=profiles,
            metrics=metrics,
        )
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
            tasks.create_task(pipeline.run(), name="ingest")
            if settings.verdict_interval_s > 0:
                tasks.create_task(
                    keep_verdicts_fresh(store, profiles, interval_s=settings.verdict_interval_s),
                    name="verdicts",
                )
    finally:
        await store.close()
        with suppress(ServiceError):
            probes.save_last_seen()
        database.close()
        for runner in runners:
            await runner.cleanup()
