"""What every runner shares: how a test is bounded, where its sockets start, what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

from contract.result import MAX_MBPS, MeasurementError, StopReason, Throughput

Direction = Literal["download", "upload"]
# The least a measured phase must carry to make a rate: ten full-size TCP segments' payload
# (an initial congestion window). Less is a budget or a link that moved next to nothing.
MIN_SAMPLE_BYTES = 10 * 1448
# A runner reports its live state: the stage it is in and, once known, the current rate.
Progress = Callable[[str, float | None], None]


def no_progress(_stage: str, _mbps: float | None) -> None:
    """The default Progress: nobody is watching."""


class Binding(msgspec.Struct, frozen=True, kw_only=True):
    """Where a test's sockets start: a named interface and its source addresses.

    A test bound to wwan0 never leaves through eth0: its sockets carry SO_BINDTODEVICE and the
    interface's own source address (see agent.net.netif).
    """

    interface: str | None = None
    source_v4: str | None = None
    source_v6: str | None = None

    def source_for(self, version: int) -> str | None:
        return self.source_v6 if version == 6 else self.source_v4  # noqa: PLR2004


class SpeedSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How one direction of a speed test is bounded; every runner honours what it can."""

    # A long path's http test still climbing here runs on, to twice this (agent.net.sampling).
    max_duration_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # Bytes this direction may spend (None: no cap). Mobile data costs money in villages.
    budget_bytes: Annotated[int, msgspec.Meta(gt=0)] | None = None
    initial_flows: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    max_flows: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    sample_interval_s: Annotated[float, msgspec.Meta(ge=0.05, le=1.0)] = 0.1
    # Stop once the 95 % interval of the rate is within +/- this share of it.
    confidence_target: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.02
    # The shortest measured phase that may stop as "stable".
    min_measure_s: Annotated[float, msgspec.Meta(gt=0)] = 1.5
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    # A transfer that delivers nothing for this long has failed.
    stall_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0


class SpeedOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One direction of a speed test as a runner saw it; `throughput` is None when it failed."""

    throughput: Throughput | None
    runner: str
    tool_version: str | None = None
    bytes_used: int = 0
    stop_reason: StopReason = "duration"
    confidence: float | None = None
    cpu_peak_percent: float | None = None
    probe_limited: bool = False
    # False: the test ended while the rate was still climbing (agent.net.sampling).
    converged: bool = True
    errors: tuple[MeasurementError, ...] = ()


def failed_speed(
    direction: Direction,
    runner: str,
    code: str,
    message: str,
    *,
    bytes_used: int = 0,
    tool_version: str | None = None,
) -> SpeedOutcome:
    """A speed test that produced no rate: the failure is the result."""
    return SpeedOutcome(
        throughput=None,
        runner=runner,
        tool_version=tool_version,
        bytes_used=bytes_used,
        stop_reason="error",
        errors=(MeasurementError(stage=direction, code=code, message=message[:2000]),),
    )


def checked_speed(direction: Direction, outcome: SpeedOutcome) -> SpeedOutcome:
    """A runner's outcome as it may enter a result: a rate only from bytes that moved.

    Whatever the runner, a direction that moved nothing (or too little to make a rate) is an error,
    never a 0.0 sample, and so is a rate no link gives; the rate is exactly bytes x 8 / duration,
    the QCVN per-sample rate a collector checks it against. The error's stage says whose it is:
    the direction's when the link moved (next to) nothing, an access failure; "probe" when the
    probe's own byte budget ended the test too soon, or its measurement is impossible: no attempt
    on the link, so no failure charged to it.
    """
    measured = outcome.throughput
    if measured is None:
        return outcome
    rate = measured.bytes * 8 / measured.duration_s / 1e6 if measured.duration_s > 0 else 0.0
    stage: str = direction
    if measured.bytes < MIN_SAMPLE_BYTES or rate <= 0:
        code = "no-data" if measured.bytes == 0 else "too-little-data"
        message = (
            f"{direction}: the measured phase moved {measured.bytes} bytes in "
            f"{measured.duration_s:.3g} s; a rate needs at least {MIN_SAMPLE_BYTES}"
        )
        if measured.bytes > 0 and outcome.stop_reason == "budget":
            stage, message = "probe", f"{message}: the test's byte budget is too small"
    elif rate > MAX_MBPS:
        stage, code = "probe", "implausible"
        message = (
            f"{direction}: {rate:,.0f} Mb/s is beyond any link ({MAX_MBPS:,.0f} Mb/s at most): "
            "a fault of the probe's measurement, not a rate"
        )
    else:
        return msgspec.structs.replace(
            outcome, throughput=msgspec.structs.replace(measured, mbps=rate)
        )
    error = MeasurementError(stage=stage, code=code, message=message)
    return msgspec.structs.replace(
        outcome,
        throughput=None,
        stop_reason="error",
        confidence=None,
        errors=(*outcome.errors, error),
    )
