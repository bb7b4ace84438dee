"""The measurement engine: the kinds a test asks for, run in order on one link.

What a technician's `qos-agent check` runs on site, and what the daemon's measurement child
repeats on schedule. Every kind is bound to the link's interface and source address; a kind with
`during` runs beside the kind it measures under load (latency under the download). Bulk kinds
share the test's byte budget equally. What comes back is a LinkOutcome, one Outcome per kind;
the result is built from it by agent/envelope.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import msgspec

from agent.budget import TestKind
from agent.config import AgentConfig
from agent.measurements.base import Progress, SpeedSettings, no_progress
from agent.measurements.kind import (
    LinkOutcome,
    LinkUnderTest,
    Measurement,
    MeasureOptions,
    Outcome,
    Reading,
    Registry,
    registered_kinds,
)
from agent.net.netif import BindError, resolve_binding
from contract.errors import ConfigError
from contract.i18n import _
from contract.profiles import MOBILE_TECHNOLOGIES
from contract.result import Link, MeasurementError, Plan, Setting, Target, Technology

UNENROLLED_LINK = Link(interface="auto", access="fixed", technology="unknown", operator="unknown")


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


def link_for(
    config: AgentConfig | None, interface: str | None, labels: LinkLabels | None = None
) -> tuple[Link, str | None]:
    """What the measured link is, and the interface every kind binds to.

    interface: the link to measure (None: the config's first link; with no config, no binding
    and the kernel routes). labels: what the link is, for a test without a config (or to
    correct the config's), so that the sample is held against the right QCVN profile.
    """
    link = config.link(interface) if config else UNENROLLED_LINK
    if config is None and interface is not None:
        link = Link(interface=interface, access="fixed", technology="unknown", operator="unknown")
    if labels is not None:
        link = labels.applied_to(link)
    # A result labelled with a link must have travelled over it: never let the kernel choose.
    return link, link.interface if config else interface


def speed_settings(
    settings: SpeedSettings, *, duration_s: float | None = None, flows: int | None = None
) -> SpeedSettings:
    """Shorthands for the longest a speed direction may take and its most parallel flows."""
    return msgspec.structs.replace(
        settings,
        max_duration_s=duration_s or settings.max_duration_s,
        max_flows=flows or settings.max_flows,
        initial_flows=min(settings.initial_flows, flows or settings.max_flows),
    )


def kinds_of(
    job: TestKind, chosen: tuple[str, ...] | None, kinds: Mapping[str, Measurement]
) -> list[Measurement]:
    """The kinds a test runs: those named (each must exist), else every kind of the job."""
    if chosen is None:
        return [kind for kind in kinds.values() if job in kind.jobs]
    unknown = [name for name in chosen if name not in kinds]
    if unknown:
        raise ConfigError(
            "tests",
            _("{kinds}: no such measurement").format(kinds=", ".join(unknown)),
            _("choose from {kinds}").format(kinds=", ".join(kinds)),
        )
    return [kind for kind in kinds.values() if kind.name in chosen]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def timed(kind: Measurement, link: LinkUnderTest) -> Outcome | None:
    """The kind's reading with its own start and end; a fault of the kind is an error in it."""
    started_at = utc_now()
    try:
        reading = await kind.run(link)
    except Exception as exc:  # noqa: BLE001 - a kind's bug must not lose the other kinds' readings
        message = f"the {kind.name} measurement failed unexpectedly (a bug): {exc!r}"
        error = MeasurementError(stage=kind.name, code="internal", message=message[:2000])
        reading = Reading(errors=(error,))
    if reading is None:
        return None
    return Outcome(
        kind=kind.name,
        slot=kind.slot,
        started_at=started_at,
        finished_at=utc_now(),
        reading=reading,
    )


async def beside(kind: Measurement, link: LinkUnderTest) -> Outcome | None:
    """A kind under another's load: from `delay_s` into it until it ends (`link.stop`)."""
    await asyncio.sleep(kind.delay_s)
    if link.stop is not None and link.stop.is_set():
        return None  # the other was over before its load built up: nothing to say
    return await timed(kind, link)


async def measure_link(
    target_url: str,
    interface: str | None,
    *,
    job: TestKind = "speed",
    budget_bytes: int | None = None,
    options: MeasureOptions | None = None,
    progress: Progress = no_progress,
    registry: Registry | None = None,
) -> LinkOutcome:
    """Every kind of the test, in order; each failure stays in the outcome as an error.

    interface: the link to bind every kind to (None: no binding, the kernel routes).
    budget_bytes: what the whole test may spend (None: no cap).
    """
    options = options or MeasureOptions()
    registry = registry or registered_kinds()
    chosen = kinds_of(job, options.kinds, registry.kinds)
    started_at = utc_now()
    try:
        binding = resolve_binding(interface)
    except BindError as exc:
        error = MeasurementError(stage="bind", code="interface-missing", message=str(exc))
        return LinkOutcome(
            runner=options.runner,
            started_at=started_at,
            finished_at=utc_now(),
            errors=(error, *registry.unusable),
        )
    bulk = sum(kind.bulk for kind in chosen)
    share = None if budget_bytes is None or not bulk else max(1, budget_bytes // bulk)
    outcomes: list[Outcome] = []
    for kind in chosen:
        if kind.during is not None:
            continue  # run beside its kind, below (and not at all without it)
        link = LinkUnderTest(
            target_url=target_url,
            binding=binding,
            options=options,
            progress=progress,
            budget_bytes=share if kind.bulk else None,
        )
        stop = asyncio.Event()
        companions = [
            asyncio.create_task(
                beside(other, dataclasses.replace(link, budget_bytes=None, stop=stop)),
                name=other.name,
            )
            for other in chosen
            if other.during == kind.name
        ]
        try:
            outcome = await timed(kind, link)
        finally:
            stop.set()
        found = [outcome, *await asyncio.gather(*companions)]
        outcomes += [each for each in found if each is not None]
    return LinkOutcome(
        runner=options.runner,
        started_at=started_at,
        finished_at=utc_now(),
        outcomes=tuple(outcomes),
        errors=registry.unusable,
    )
