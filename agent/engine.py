"""One measurement on demand: what a technician runs on site, and what the daemon will repeat.

A check runs, on one link: idle latency, download (with latency under load beside it), upload,
and the IPv6 checks. The byte budget covers the whole check; each speed direction may
spend half of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import msgspec

from agent.config import AgentConfig
from agent.envelope import CheckOutcome, build_result
from agent.health import clock_status
from agent.measurements import http, iperf3, ipv6, latency, speedtest_cli
from agent.measurements.base import (
    Binding,
    Direction,
    Progress,
    SpeedOutcome,
    SpeedSettings,
    checked_speed,
    no_progress,
)
from agent.measurements.latency import LatencyOutcome, Method
from agent.net.netif import BindError, resolve_binding
from agent.state import next_seq, sample_gap
from contract.profiles import MOBILE_TECHNOLOGIES, profile_for
from contract.result import Link, MeasurementError, Plan, Result, Setting, Target, Technology

RunnerName = Literal["http", "iperf3", "speedtest"]
TestName = Literal["download", "upload", "latency", "ipv6"]
ALL_TESTS: Final[tuple[TestName, ...]] = ("download", "upload", "latency", "ipv6")
UNENROLLED_LINK = Link(interface="auto", access="fixed", technology="unknown", operator="unknown")
# Latency under load skips the first half second of a transfer: queues are still filling.
LOADED_DELAY_S: Final = 0.5
LOADED_MAX_PROBES: Final = 600

SpeedRunner = Callable[[Direction, str, Binding, SpeedSettings, Progress], Awaitable[SpeedOutcome]]


class CheckOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The finer knobs of a check; the defaults suit a technician's one-off check."""

    tests: tuple[TestName, ...] = ALL_TESTS
    speed: SpeedSettings = SpeedSettings()
    latency_method: Method = "auto"
    latency_probes: int = 10
    iperf3_port: int = iperf3.DEFAULT_PORT
    # The IPv6 checks' target when the main one is an IPv4 address (e.g. http://[fd00::2]:8080).
    ipv6_target_url: str | None = None
    # A name to look up AAAA for (default: the target's host when it is a name).
    dns_name: str | None = None


def probe_id_from_hostname() -> str:
    name = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower()).strip("-")
    return name[:63] if len(name) > 1 else "unenrolled-probe"


def target_for(url: str, config: AgentConfig | None) -> Target:
    host = urlsplit(url).hostname or url
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        version = 4
    target_id = next((t.id for t in config.targets if t.url == url), "adhoc") if config else "adhoc"
    return Target(id=target_id, address=host, ip_version=6 if version == 6 else 4)  # noqa: PLR2004


def speed_runner(name: RunnerName, options: CheckOptions) -> SpeedRunner:
    if name == "iperf3":

        async def run_iperf3(
            direction: Direction,
            url: str,
            binding: Binding,
            settings: SpeedSettings,
            progress: Progress,
        ) -> SpeedOutcome:
            return await iperf3.measure(
                direction, url, binding, settings, progress, port=options.iperf3_port
            )

        return run_iperf3
    return speedtest_cli.measure if name == "speedtest" else http.measure


async def run_check(
    *,
    target_url: str,
    config: AgentConfig | None,
    interface: str | None,
    runner: RunnerName = "http",
    budget_bytes: int | None = None,
    options: CheckOptions | None = None,
    progress: Progress = no_progress,
    duration_s: float | None = None,
    flows: int | None = None,
    labels: LinkLabels | None = None,
) -> Result:
    """Measure one link against one target and wrap it in an (unsigned) result envelope.

    interface: the link to bind every test to (None: the config's first link; with no config,
    no binding and the kernel routes). budget_bytes: what the whole check may
    spend (None: no cap). duration_s / flows: shorthands for the longest a speed direction may
    take and its most parallel flows (options.speed holds the rest). labels: what the link
    is, for a check without a config (or to correct the config's), so that the sample can be
    held against the right QCVN profile.
    """
    options = options or CheckOptions()
    if duration_s is not None or flows is not None:
        speed = options.speed
        speed = msgspec.structs.replace(
            speed,
            max_duration_s=duration_s or speed.max_duration_s,
            max_flows=flows or speed.max_flows,
            initial_flows=min(speed.initial_flows, flows or speed.max_flows),
        )
        options = msgspec.structs.replace(options, speed=speed)
    link = config.link(interface) if config else UNENROLLED_LINK
    if config is None and interface is not None:
        link = Link(interface=interface, access="fixed", technology="unknown", operator="unknown")
    if labels is not None:
        link = labels.applied_to(link)
    # A result labelled with a link must have travelled over it: never let the kernel choose.
    bind_to = link.interface if config else interface
    started_at = datetime.now(UTC)
    outcome = await measure_link(
        target_url, bind_to, runner=runner, budget_bytes=budget_bytes, options=options,
        progress=progress,
    )  # fmt: skip
    finished_at = datetime.now(UTC)
    seq = next_seq(Path(config.state_dir)) if config else 0
    gap = None
    if config is not None and outcome.speed_attempt:
        profile = profile_for(link.technology)
        min_gap_s = profile.min_gap_s if profile else 0.0
        gap = sample_gap(Path(config.state_dir), link.interface, finished_at, min_gap_s)
    return build_result(
        probe_id=config.probe_id if config else probe_id_from_hostname(),
        seq=seq,
        started_at=started_at,
        finished_at=finished_at,
        location=config.location if config else None,
        link=link,
        target=target_for(target_url, config),
        outcome=outcome,
        clock=clock_status(),
        gap_s=gap,
    )


class LinkLabels(msgspec.Struct, frozen=True, kw_only=True):
    """What a technician says the link is (qos-agent check --technology / --operator / --plan)."""

    technology: Technology | None = None
    operator: str | None = None
    plan: Plan | None = None
    setting: Setting | None = None

    def applied_to(self, link: Link) -> Link:
        changes: dict[str, object] = {}
        if self.technology is not None:
            mobile = self.technology in MOBILE_TECHNOLOGIES
            changes |= {"technology": self.technology, "access": "mobile" if mobile else "fixed"}
        if self.operator is not None:
            changes["operator"] = self.operator
        if self.plan is not None:
            changes["plan"] = self.plan
        if self.setting is not None:
            changes["setting"] = self.setting
        return msgspec.structs.replace(link, **changes)


async def measure_link(
    target_url: str,
    interface: str | None,
    *,
    runner: RunnerName,
    budget_bytes: int | None,
    options: CheckOptions,
    progress: Progress,
) -> CheckOutcome:
    """Every test of a check, in order; each failure stays in the outcome as an error."""
    try:
        binding = resolve_binding(interface)
    except BindError as exc:
        error = MeasurementError(stage="bind", code="interface-missing", message=str(exc))
        return CheckOutcome(runner=runner, errors=(error,))
    tests = options.tests
    settings = options.speed
    directions = [test for test in tests if test in {"download", "upload"}]
    if budget_bytes is not None and directions:
        per_direction = max(1, budget_bytes // len(directions))
        settings = msgspec.structs.replace(settings, budget_bytes=per_direction)
    link = _Link(
        target_url,
        binding,
        measure_speed=speed_runner(runner, options),
        settings=settings,
        options=options,
        progress=progress,
    )
    idle = await link.latency("latency-idle") if "latency" in tests else None
    download, loaded = (
        await link.download(under_load="latency" in tests) if "download" in tests else (None, None)
    )
    upload = await link.speed("upload") if "upload" in tests else None
    v6 = await link.ipv6() if "ipv6" in tests else None
    return CheckOutcome(
        runner=runner,
        download=download,
        upload=upload,
        latency_idle=idle,
        latency_loaded=loaded,
        ipv6=v6,
    )


class _Link:
    """The tests of one check, sharing its target, binding and settings."""

    def __init__(
        self,
        target_url: str,
        binding: Binding,
        *,
        measure_speed: SpeedRunner,
        settings: SpeedSettings,
        options: CheckOptions,
        progress: Progress,
    ) -> None:
        self.target_url = target_url
        self.binding = binding
        self.measure_speed = measure_speed
        self.settings = settings
        self.options = options
        self.progress = progress

    async def speed(self, direction: Direction) -> SpeedOutcome:
        outcome = await self.measure_speed(
            direction, self.target_url, self.binding, self.settings, self.progress
        )
        return checked_speed(direction, outcome)

    async def latency(self, stage: str, stop: asyncio.Event | None = None) -> LatencyOutcome:
        if stop is None:
            self.progress("latency: idle", None)
        return await latency.measure(
            self.target_url,
            self.binding,
            stage=stage,
            method=self.options.latency_method,
            count=LOADED_MAX_PROBES if stop else self.options.latency_probes,
            stop=stop,
        )

    async def download(self, *, under_load: bool) -> tuple[SpeedOutcome, LatencyOutcome | None]:
        """The download, with latency probes beside it when asked (until it ends)."""
        if not under_load:
            return await self.speed("download"), None
        stop = asyncio.Event()

        async def probes() -> LatencyOutcome | None:
            await asyncio.sleep(LOADED_DELAY_S)
            if stop.is_set():
                return None  # the transfer was over before its queues filled: nothing to say
            return await self.latency("latency-loaded", stop)

        loaded = asyncio.create_task(probes(), name="latency-under-load")
        try:
            speed = await self.speed("download")
        finally:
            stop.set()
        return speed, await loaded

    async def ipv6(self) -> ipv6.Ipv6Outcome:
        self.progress("ipv6: checking", None)
        return await ipv6.measure(
            self.target_url,
            self.binding,
            v6_target_url=self.options.ipv6_target_url,
            dns_name=self.options.dns_name,
        )
