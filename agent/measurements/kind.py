"""What a measurement kind is: one protocol, one outcome shape, one registry of entry points.

A kind is an object behind the entry point group `qosfleet.measurements` (pyproject.toml); a site
adds one from its own package without touching this one:

    [project.entry-points."qosfleet.measurements"]
    my_kind = "my_package.my_kind:KIND"

The engine (agent/engine.py) runs the kinds a test asks for in their `order`, a kind with `during`
beside the kind it measures under load, and each gives back a `Reading`; timed by the engine, a
reading becomes an `Outcome`, the same shape for every kind. The result builder (agent/envelope.py)
places each outcome's block at the kind's `slot` in the result's measurements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from agent.measurements.base import Binding, Progress, SpeedSettings, no_progress
from agent.measurements.iperf3 import DEFAULT_PORT as IPERF3_PORT
from contract.errors import ConfigError
from contract.quantities import ENTRY_POINT_GROUP, REINSTALL_HINT, Quantity, check_quantity
from contract.result import MeasurementError, StopReason

if TYPE_CHECKING:
    from agent.budget import TestKind
    from agent.measurements.latency import Method


@dataclass(frozen=True, kw_only=True)
class MeasureOptions:
    """The finer knobs of a test; the defaults suit a technician's one-off check.

    `kinds`: the kinds to run (None: every kind of the scheduled test). `runner`: the tool of the
    speed kinds (http, iperf3, speedtest).
    """

    kinds: tuple[str, ...] | None = None
    runner: str = "http"
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    latency_method: Method = "auto"
    latency_probes: int = 10
    iperf3_port: int = IPERF3_PORT
    # The IPv6 checks' target when the main one is an IPv4 address (e.g. http://[fd00::2]:8080).
    ipv6_target_url: str | None = None
    # A name to look up AAAA for (default: the target's host when it is a name).
    dns_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class LinkUnderTest:
    """What a kind measures: a target over a bound link, within its share of the byte budget.

    `stop` is set when the kind this one runs beside (`during`) has finished.
    """

    target_url: str
    binding: Binding
    options: MeasureOptions = field(default_factory=MeasureOptions)
    progress: Progress = no_progress
    budget_bytes: int | None = None
    stop: asyncio.Event | None = None


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    """How a bulk transfer went: the result's provenance describes its first one (download)."""

    flows: int = 0
    warmup_s: float = 0.0
    stop_reason: StopReason = "duration"
    confidence: float | None = None


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """What a kind measured. `block`: the fields of its block in the result, as the contract's
    types declare them (None: nothing measured); `attempt`: the result is a QCVN speed attempt."""

    block: dict[str, Any] | None = None
    bytes_used: int = 0
    errors: tuple[MeasurementError, ...] = ()
    attempt: bool = False
    transfer: Transfer | None = None
    tool_version: str | None = None
    cpu_peak_percent: float | None = None
    probe_limited: bool = False


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """One kind's reading with its own start and end (UTC): the shape every kind shares."""

    kind: str
    slot: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    reading: Reading


class LinkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one test measured on one link: what the measurement child hands the daemon."""

    runner: str
    started_at: datetime
    finished_at: datetime
    outcomes: tuple[Outcome, ...] = ()
    # Failures before any kind could run (e.g. the interface does not exist).
    errors: tuple[MeasurementError, ...] = ()

    @property
    def bytes_used(self) -> int:
        return sum(outcome.reading.bytes_used for outcome in self.outcomes)

    @property
    def all_errors(self) -> tuple[MeasurementError, ...]:
        return self.errors + tuple(e for o in self.outcomes for e in o.reading.errors)

    @property
    def speed_attempt(self) -> bool:
        """A QCVN sample: a kind says so (the download, measured or failed on the link)."""
        return any(outcome.reading.attempt for outcome in self.outcomes)


@runtime_checkable
class Measurement(Protocol):
    """A measurement kind. `name`: its stage in errors and its key; `slot`: where its block goes
    in the result's measurements (("kinds", name) for a kind added as a plugin); `jobs`: the
    scheduled tests that run it; `order`: its place in a test; `during`: the kind it runs beside,
    under its load (delayed by `delay_s`; None: alone); `bulk`: it shares the test's byte budget
    with the other bulk kinds; `quantities`: what a profile may judge of it."""

    name: str
    slot: tuple[str, ...]
    jobs: frozenset[TestKind]
    order: int
    during: str | None
    delay_s: float
    bulk: bool
    quantities: tuple[Quantity, ...]

    async def run(self, link: LinkUnderTest) -> Reading | None:
        """Measure; every failure is an error in the reading. None: nothing to say."""
        ...


class Registry(NamedTuple):
    """The usable kinds by name, in the order a test runs them, and an error for each entry
    point that is not usable: a site's broken kind is reported in every result (failure is
    data) and never stops the bundled measurements."""

    kinds: Mapping[str, Measurement]
    unusable: tuple[MeasurementError, ...] = ()


def load_kind(entry: EntryPoint) -> Measurement:
    """The kind behind one entry point; ConfigError names the entry point and what is wrong."""
    where = f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP})"
    try:
        kind = entry.load()
    except Exception as exc:
        raise ConfigError(where, f"cannot be loaded: {exc!r}", REINSTALL_HINT) from exc
    if not isinstance(kind, Measurement):
        raise ConfigError(
            where,
            "is not a measurement kind (agent.measurements.kind.Measurement)",
            "point the entry point at an object with name, slot, jobs, order, during, "
            "delay_s, bulk, quantities and run",
        )
    if kind.name != entry.name:
        raise ConfigError(where, f"names its kind {kind.name!r}", "register it under its name")
    for quantity in kind.quantities:
        check_quantity(quantity, where)
    return kind


def load_kinds(found: Iterable[EntryPoint]) -> Registry:
    """The kinds behind these entry points; ConfigError when none is usable (a stale install)."""
    kinds: dict[str, Measurement] = {}
    unusable: list[MeasurementError] = []
    for entry in found:
        if entry.name in kinds:
            continue  # the first distribution on the path wins, as for any entry point
        try:
            kinds[entry.name] = load_kind(entry)
        except ConfigError as exc:
            message = str(exc)[:2000]
            unusable.append(
                MeasurementError(stage=entry.name, code="kind-unusable", message=message)
            )
    if not kinds:
        reasons = "; ".join(error.message for error in unusable) or "none is registered"
        raise ConfigError(
            ENTRY_POINT_GROUP, f"no usable measurement kind: {reasons}", REINSTALL_HINT
        )
    ordered = dict(sorted(kinds.items(), key=lambda item: (item[1].order, item[0])))
    return Registry(ordered, tuple(unusable))


@cache
def registered_kinds() -> Registry:
    """Every installed kind, in the order a test runs them."""
    return load_kinds(entry_points(group=ENTRY_POINT_GROUP))
