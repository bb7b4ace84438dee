"""The probe's daemon: schedule, budget, measure (in a child), build the result with its radio
and health, sign, spool, publish."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import __version__, history
from agent.budget import Budget, TestKind
from agent.config import AgentConfig, TargetConfig
from agent.engine import target_for
from agent.envelope import build_result
from agent.health import clock_status, cpu_temperature_c, disk_free_bytes
from agent.measurements.kind import LinkOutcome
from agent.publish import Publisher
from agent.radio import Mmcli, read_radio, run_mmcli
from agent.schedule import Job, Scheduler
from agent.spool import RESERVE_NAME, Spool
from agent.state import DaemonState, open_state_db, record_daemon_state
from contract.fleet import ProbeHealth, ProbeMeta, ProbeStatus
from contract.i18n import _
from contract.result import HealthSnapshot, Location, encode_result
from contract.signing import public_key_text, sign_result

log = logging.getLogger("qosfleet.agent")


class Measure(Protocol):
    """The measurement engine as the daemon sees it: one test of a kind on a link -> an outcome.

    `budget_bytes` is what the link's monthly budget has left (None: no cap); the engine stops a
    transfer there.
    """

    kinds: frozenset[TestKind]

    def __call__(
        self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
    ) -> Awaitable[LinkOutcome]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def probe_meta(config: AgentConfig, key: Ed25519PrivateKey) -> ProbeMeta:
    """The enrollment published (retained) on every connection, and printed by `enroll`."""
    where = config.location
    return ProbeMeta(
        probe_id=config.probe_id,
        location=Location(
            province_code=where.province_code,
            commune_code=where.commune_code,
            village=where.village,
            lat=where.lat,
            lon=where.lon,
        ),
        links=tuple(link.as_link() for link in config.links),
        public_key=public_key_text(key),
        agent_version=__version__,
    )


class Daemon:
    def __init__(
        self,
        config: AgentConfig,
        key: Ed25519PrivateKey,
        *,
        measure: Measure,
        mmcli: Mmcli = run_mmcli,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.key = key
        self.measure = measure
        self.mmcli = mmcli
        self.rng = rng or random.Random()  # noqa: S311 - choosing targets, not secrets
        # The wall clock (budget months, spool and status times); it may step (NTP). Deadlines
        # never use it: the schedule and the receipt timeouts run on the monotonic clock.
        self.clock = clock
        self.state_dir = Path(config.state_dir)
        self.db = open_state_db(self.state_dir)
        self.spool = Spool(
            self.db,
            max_results=config.spool.max_results,
            max_bytes=config.spool.max_bytes,
            reserve=self.state_dir / RESERVE_NAME,
            reserve_bytes=config.spool.reserve_bytes,
        )
        self.budget = Budget(
            self.db,
            caps={link.interface: link.budget_bytes for link in config.links},
            first_estimates={
                "speed": config.budget.speed_test_estimate_bytes,
                "light": config.budget.light_test_estimate_bytes,
            },
        )
        self.publisher = Publisher(
            config,
            self.spool,
            meta=probe_meta(config, key),
            status=self.status,
            on_connection=self._on_connection,
        )
        self.scheduler = Scheduler(
            [link.interface for link in config.links],
            config.schedule,
            self.run_test,
            kinds=tuple(self.measure.kinds),
            rng=self.rng,
        )
        now = clock()
        self.state = DaemonState(
            pid=os.getpid(), started_at=now, updated_at=now, broker_url=config.broker.url
        )

    async def run(self) -> None:
        """Measure and publish until cancelled."""
        self._record()
        log.info(
            _("probe %s: %d links, %d results spooled, broker %s"),
            self.config.probe_id,
            len(self.config.links),
            self.spool.depth,
            self.config.broker.url,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.scheduler.run(), name="scheduler")
                tasks.create_task(self.publisher.run(), name="publisher")
        finally:
            self.db.close()

    async def run_test(self, job: Job) -> None:
        """One scheduled test; whatever happens is spooled or counted, and nothing escapes."""
        try:
            await self._run_test(job)
        except Exception:
            # A fault of the agent (a link's faults are errors in a result): log, count, go on.
            log.exception(_("%s test on %s could not run"), job.kind, job.interface)
            self._update(tests_failed=self.state.tests_failed + 1)

    async def _run_test(self, job: Job) -> None:
        link = self.config.link_config(job.interface)
        if not self.budget.allows(job.interface, job.kind, self.clock()):
            self._update(tests_skipped_budget=self.state.tests_skipped_budget + 1)
            log.warning(
                _("%s test on %s skipped: it would need ~%d bytes, %s left this month"),
                job.kind,
                job.interface,
                self.budget.estimate(job.interface, job.kind),
                self.budget.left(job.interface, self.clock()),
            )
            return
        target = self.rng.choice(self.config.targets)
        radio = await read_radio(link.interface, modem=link.modem, mmcli=self.mmcli)
        left = self.budget.left(job.interface, self.clock())
        measured = await self.measure(self.config, job, target, left)
        now = self.clock()
        self.budget.charge(job.interface, job.kind, measured.bytes_used, now)
        result = build_result(
            self.config,
            link=link.as_link(),
            target=target_for(target.url, self.config),
            measured=measured,
            radio=radio,
            health=HealthSnapshot(
                disk_free_bytes=disk_free_bytes(self.state_dir),
                cpu_temperature_c=cpu_temperature_c(),
                spool_depth=self.spool.depth,
                budget_left_bytes=self.budget.left(job.interface, now),
            ),
            clock=await asyncio.to_thread(clock_status),
        )
        signed = sign_result(result, self.key)
        if self.spool.add(str(signed.id), signed.seq, encode_result(signed), now=now.timestamp()):
            self.publisher.wake.set()
        # After the spool has it: the history is a convenience and never delays the result.
        await asyncio.to_thread(history.record, self.state_dir, "daemon", signed)
        self._update(tests_run=self.state.tests_run + 1)

    async def status(self, state: Literal["online", "offline"]) -> ProbeStatus:
        """The retained status message; building it also records the daemon's state locally."""
        health = await self.health()
        self._update(health=health)
        return ProbeStatus(
            probe_id=self.config.probe_id, state=state, at=self.clock(), health=health
        )

    async def health(self) -> ProbeHealth:
        spool = self.spool.report()
        now = self.clock()
        return ProbeHealth(
            clock=await asyncio.to_thread(clock_status),
            disk_free_bytes=disk_free_bytes(self.state_dir),
            cpu_temperature_c=cpu_temperature_c(),
            spool_depth=spool.depth,
            spool_bytes=spool.bytes,
            spool_oldest_s=max(now.timestamp() - spool.oldest_created, 0.0)
            if spool.oldest_created is not None
            else None,
            results_lost=spool.lost,
            results_rejected=spool.rejected,
            budgets=self.budget.report(now),
        )

    def _on_connection(self, up: bool, error: str | None) -> None:
        unchanged = up == self.state.broker_connected and self.state.broker_since is not None
        since = self.state.broker_since if unchanged else self.clock()
        self._update(broker_connected=up, broker_since=since, broker_error=error)

    def _update(self, **changes: object) -> None:
        self.state = msgspec.structs.replace(self.state, updated_at=self.clock(), **changes)
        self._record()

    def _record(self) -> None:
        record_daemon_state(self.db, self.state)
