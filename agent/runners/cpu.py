"""The probe's own CPU during a test, from /proc (psutil is not a dependency).

`probe_limited` rule: a test is probe-limited when, in any 0.5 s window of it, the measuring
process used >= 90 % of one core (its event loop runs on one core, so it was saturated) or the
whole machine was >= 95 % busy across all its cores (nothing left for the transfer). Then the
probe, not the link, may have set the rate; QCVN.md says such samples are excluded from the mean
and counted separately.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import msgspec

PROCESS_LIMIT_PERCENT: Final = 90.0
MACHINE_LIMIT_PERCENT: Final = 95.0
WINDOW_S: Final = 0.5
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


class CpuTimes(msgspec.Struct, frozen=True, kw_only=True):
    """CPU time in clock ticks: of some processes, and of the machine (busy and in total)."""

    process: int
    machine_busy: int
    machine_total: int


class CpuPeak(msgspec.Struct, frozen=True, kw_only=True):
    process_percent: float  # of one core
    machine_percent: float  # of all cores

    @property
    def peak_percent(self) -> float:
        return min(100.0, max(self.process_percent, self.machine_percent))

    @property
    def probe_limited(self) -> bool:
        return (
            self.process_percent >= PROCESS_LIMIT_PERCENT
            or self.machine_percent >= MACHINE_LIMIT_PERCENT
        )


def parse_process_ticks(stat: str) -> int:
    """utime + stime from /proc/<pid>/stat (children are counted by their own pid)."""
    # Fields after the parenthesised name (which may hold spaces): state is field 3,
    # utime and stime are fields 14 and 15.
    rest = stat.rpartition(")")[2].split()
    return int(rest[11]) + int(rest[12])


def parse_machine_ticks(stat: str) -> tuple[int, int]:
    """(busy, total) ticks from the aggregate `cpu` line of /proc/stat; idle and iowait are idle."""
    first = stat.splitlines()[0].split()
    values = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def share_percent(before: CpuTimes, after: CpuTimes, elapsed_s: float) -> CpuPeak:
    """CPU use between two readings: process as % of one core, machine as % of all cores."""
    process = (after.process - before.process) / CLOCK_TICKS / elapsed_s * 100 if elapsed_s else 0.0
    total = after.machine_total - before.machine_total
    machine = (after.machine_busy - before.machine_busy) / total * 100 if total > 0 else 0.0
    return CpuPeak(process_percent=process, machine_percent=machine)


def read_times() -> CpuTimes:
    """This process and the whole machine, now."""
    process = parse_process_ticks(Path("/proc/self/stat").read_text())
    busy, total = parse_machine_ticks(Path("/proc/stat").read_text())
    return CpuTimes(process=process, machine_busy=busy, machine_total=total)


class CpuMonitor:
    """`async with CpuMonitor() as cpu:` samples every WINDOW_S; `cpu.peak` after the block."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._task: asyncio.Task[None] | None = None
        self._peak = CpuPeak(process_percent=0.0, machine_percent=0.0)

    @property
    def peak(self) -> CpuPeak:
        return self._peak

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._sample(), name="cpu-monitor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        before, at = read_times(), loop.time()
        while True:
            await asyncio.sleep(self._window_s)
            after, now = read_times(), loop.time()
            window = share_percent(before, after, now - at)
            self._peak = CpuPeak(
                process_percent=max(self._peak.process_percent, window.process_percent),
                machine_percent=max(self._peak.machine_percent, window.machine_percent),
            )
            before, at = after, now
