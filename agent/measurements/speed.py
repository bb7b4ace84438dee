"""Download and upload: the speed kinds, each one direction of a bulk transfer.

The transfer itself is a tool's (MeasureOptions.runner): `http` (agent/measurements/http.py, the
default), `iperf3` or `speedtest`, interchangeable behind one signature. Whatever the tool, a
direction that moved too little, or claims a rate no link gives, is an error (`checked_speed`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from agent.budget import TestKind
from agent.measurements.base import (
    Binding,
    Direction,
    Progress,
    SpeedOutcome,
    SpeedSettings,
    checked_speed,
)
from agent.measurements.kind import LinkUnderTest, MeasureOptions, Reading, Transfer
from contract.quantities import Quantity

SpeedTool = Callable[[Direction, str, Binding, SpeedSettings, Progress], Awaitable[SpeedOutcome]]
RUNNERS: Final = ("http", "iperf3", "speedtest")


def speed_tool(options: MeasureOptions) -> SpeedTool:
    """The tool options.runner names; imported only when used (each is heavy in its own way)."""
    if options.runner == "iperf3":
        from agent.measurements import iperf3  # noqa: PLC0415

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
    if options.runner == "speedtest":
        from agent.measurements import speedtest_cli  # noqa: PLC0415

        return speedtest_cli.measure
    from agent.measurements import http  # noqa: PLC0415

    return http.measure


def reading_of(direction: Direction, outcome: SpeedOutcome) -> Reading:
    """A tool's outcome as the result takes it: the throughput with its stop reason and interval."""
    measured = outcome.throughput
    confidence = None if outcome.confidence is None else min(1.0, outcome.confidence)
    block = None
    if measured is not None:
        block = msgspec.to_builtins(
            msgspec.structs.replace(
                measured,
                stop_reason=outcome.stop_reason,
                confidence=confidence,
                converged=outcome.converged,
            )
        )
    return Reading(
        block=block,
        bytes_used=outcome.bytes_used,
        errors=outcome.errors,
        # A QCVN sample is a download measured, or attempted and failed on the link.
        attempt=direction == "download"
        and (measured is not None or any(e.stage == direction for e in outcome.errors)),
        transfer=Transfer(
            flows=measured.flows if measured else 0,
            warmup_s=measured.warmup_s if measured else 0.0,
            stop_reason=outcome.stop_reason,
            confidence=confidence,
        ),
        tool_version=outcome.tool_version,
        cpu_peak_percent=outcome.cpu_peak_percent,
        probe_limited=outcome.probe_limited,
    )


class Speed:
    """One direction of the speed test."""

    jobs: frozenset[TestKind] = frozenset({"speed"})
    during: str | None = None
    delay_s = 0.0
    bulk = True
    quantities: tuple[Quantity, ...] = ()

    def __init__(self, direction: Direction, order: int) -> None:
        self.direction: Direction = direction
        self.name: str = direction
        self.slot: tuple[str, ...] = (direction,)
        self.order = order

    async def run(self, link: LinkUnderTest) -> Reading:
        settings = link.options.speed
        if link.budget_bytes is not None:
            settings = msgspec.structs.replace(settings, budget_bytes=max(1, link.budget_bytes))
        measure = speed_tool(link.options)
        outcome = await measure(
            self.direction, link.target_url, link.binding, settings, link.progress
        )
        return reading_of(self.direction, checked_speed(self.direction, outcome))


DOWNLOAD = Speed("download", order=20)
UPLOAD = Speed("upload", order=30)
