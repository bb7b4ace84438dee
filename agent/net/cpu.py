"""The probe's own CPU during a test, from /proc (psutil is not a dependency).

`probe_limited` rule: a test is probe-limited when, in any 0.5 s window of it, a measuring
process (the runner's own, or the tool it runs, e.g. iperf3) used >= 90 % of one core (its event
loop runs on one core, so it was saturated) or the whole machine was >= 95 % busy across all its
cores (nothing left for the transfer). Then the probe, not the link, may have set the rate;
QCVN.md says such samples are excluded from the mean and counted separately. The window still
open when the test ends counts too, and a test shorter than one window is one window: a fast
link spends a small byte budget in a tenth of a second, CPU-bound, before any full window ends.
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
# The open window at a test's end counts from this length (ten clock ticks): shorter, one tick
# more or less would swing it by more than the rule's margin.
MIN_TAIL_S: Final = 0.1
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


class CpuTimes(msgspec.Struct, frozen=True, kw_only=True):
    """CPU time in clock ticks: of each measuring process (None: gone), and of the machine."""

    processes: tuple[int | None, ...]
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
    """CPU use between two readings: the busiest process as % of one core, machine of all cores."""
    used = [
        b - a
        for a, b in zip(before.processes, after.processes, strict=True)
        if a is not None and b is not None
    ]
    process = max(used, default=0) / CLOCK_TICKS / elapsed_s * 100 if elapsed_s > 0 else 0.0
    total = after.machine_total - before.machine_total
    machine = (after.machine_busy - before.machine_busy) / total * 100 if total > 0 else 0.0
    return CpuPeak(process_percent=process, machine_percent=machine)


def read_times(pids: tuple[int, ...] = ()) -> CpuTimes:
    """This process, the processes `pids` (a tool it runs) and the whole machine, now."""
    processes: list[int | None] = [parse_process_ticks(Path("/proc/self/stat").read_text())]
    for pid in pids:
        try:
            processes.append(parse_process_ticks(Path(f"/proc/{pid}/stat").read_text()))
        except (OSError, IndexError, ValueError):
            processes.append(None)  # it has exited (and was reaped)
    busy, total = parse_machine_ticks(Path("/proc/stat").read_text())
    return CpuTimes(processes=tuple(processes), machine_busy=busy, machine_total=total)


def _higher(first: CpuPeak, second: CpuPeak) -> CpuPeak:
    return CpuPeak(
        process_percent=max(first.process_percent, second.process_percent),
        machine_percent=max(first.machine_percent, second.machine_percent),
    )


class CpuMonitor:
    """`async with CpuMonitor() as cpu:` samples every WINDOW_S; `cpu.peak()` during or after.

    pids: processes the runner started (iperf3), watched beside the runner's own.
    """

    def __init__(self, window_s: float = WINDOW_S, *, pids: tuple[int, ...] = ()) -> None:
        self._window_s = window_s
        self._pids = pids
        self._task: asyncio.Task[None] | None = None
        self._peak = CpuPeak(process_percent=0.0, machine_percent=0.0)
        self._windows = 0
        # The last reading and when, while the block runs.
        self._last: tuple[CpuTimes, float] | None = None

    def peak(self) -> CpuPeak:
        """The highest window so far, the open one included (see the module docstring)."""
        return self._peak if self._last is None else self._with_open_window()

    def _with_open_window(self) -> CpuPeak:
        assert self._last is not None
        before, at = self._last
        elapsed = asyncio.get_running_loop().time() - at
        if elapsed < MIN_TAIL_S and self._windows > 0:
            return self._peak
        return _higher(self._peak, share_percent(before, read_times(self._pids), elapsed))

    async def __aenter__(self) -> Self:
        self._last = (read_times(self._pids), asyncio.get_running_loop().time())
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
        if self._last is not None:
            self._peak, self._last = self._with_open_window(), None

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._window_s)
            assert self._last is not None
            before, at = self._last
            after, now = read_times(self._pids), loop.time()
            self._peak = _higher(self._peak, share_percent(before, after, now - at))
            self._windows += 1
            self._last = (after, now)
