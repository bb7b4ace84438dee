"""What every runner gives back: result blocks, how they were obtained, and what went wrong."""

from __future__ import annotations

import msgspec

from contract.result import MeasurementError, StopReason, Throughput


class SpeedOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One direction of a speed test as a runner saw it; `throughput` is None when it failed."""

    throughput: Throughput | None
    runner: str
    tool_version: str | None = None
    bytes_used: int = 0
    stop_reason: StopReason = "duration"
    confidence: float | None = None
    errors: tuple[MeasurementError, ...] = ()
