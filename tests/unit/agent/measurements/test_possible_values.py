"""Values a result may carry: a rate only from bytes that moved, and a busy probe always seen."""

from __future__ import annotations

import asyncio
import sys

import pytest

from agent.measurements.base import MIN_SAMPLE_BYTES, SpeedOutcome, checked_speed
from agent.net import cpu
from agent.net.cpu import CLOCK_TICKS, MIN_TAIL_S, CpuMonitor, CpuTimes
from contract.result import MAX_MBPS, StopReason, Throughput


def _outcome(
    bytes_: int, duration_s: float, mbps: float, stop_reason: StopReason = "duration"
) -> SpeedOutcome:
    return SpeedOutcome(
        throughput=Throughput(mbps=mbps, bytes=bytes_, duration_s=duration_s, flows=4),
        runner="iperf3",
        tool_version="iperf 3.12",
        bytes_used=bytes_ + 1000,
        stop_reason=stop_reason,
        cpu_peak_percent=97.0,
        probe_limited=True,
    )


@pytest.mark.parametrize(
    ("bytes_", "duration_s", "mbps", "stop_reason", "error"),
    [
        # The link moved (next to) nothing: an access failure, charged to the link.
        (0, 9.0, 0.0, "duration", ("download", "no-data")),
        (0, 0.0, 0.0, "budget", ("download", "no-data")),
        (2, 0.1, 0.00016, "duration", ("download", "too-little-data")),
        (MIN_SAMPLE_BYTES - 1, 1.0, 0.1, "stable", ("download", "too-little-data")),
        # The probe's own budget or measurement: no attempt on the link.
        (2, 0.1, 0.00016, "budget", ("probe", "too-little-data")),
        (10**12, 0.01, 8e8, "duration", ("probe", "implausible")),
    ],
)
def test_a_test_that_moved_nothing_or_the_impossible_is_an_error(
    bytes_: int, duration_s: float, mbps: float, stop_reason: StopReason, error: tuple[str, str]
) -> None:
    checked = checked_speed("download", _outcome(bytes_, duration_s, mbps, stop_reason))
    assert checked.throughput is None
    assert [(e.stage, e.code) for e in checked.errors] == [error]
    assert checked.errors[0].message.startswith("download: ")
    assert checked.stop_reason == "error"
    # What it spent and what the CPU did stay known.
    assert (checked.bytes_used, checked.probe_limited) == (bytes_ + 1000, True)


def test_the_rate_is_bytes_over_duration_whatever_the_runner_said() -> None:
    checked = checked_speed("upload", _outcome(125_000_000, 10.0, 99_999.0))
    assert checked.throughput is not None
    assert checked.throughput.mbps == 125_000_000 * 8 / 10.0 / 1e6 == 100.0
    assert checked.errors == ()


def test_a_failed_outcome_passes_unchanged() -> None:
    failed = SpeedOutcome(throughput=None, runner="http", stop_reason="error")
    assert checked_speed("download", failed) is failed


def test_the_largest_possible_rate_is_a_sample() -> None:
    seconds = 1.0
    checked = checked_speed("download", _outcome(int(MAX_MBPS * 1e6 / 8), seconds, 1.0))
    assert checked.throughput is not None
    assert checked.throughput.mbps == MAX_MBPS


def _fake_proc(monkeypatch: pytest.MonkeyPatch, *, busy_from_s: float, share: float) -> None:
    """/proc as a fake: the process idle until busy_from_s, then using `share` of one core.

    Real readings on a shared machine depend on its other load; the rules are tested on these.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()

    def read_times(pids: tuple[int, ...] = ()) -> CpuTimes:
        elapsed = loop.time() - start
        ticks = round(max(0.0, elapsed - busy_from_s) * share * CLOCK_TICKS)
        total = round(elapsed * 2 * CLOCK_TICKS)  # two cores
        return CpuTimes(processes=(ticks,), machine_busy=ticks, machine_total=max(total, 1))

    monkeypatch.setattr(cpu, "read_times", read_times)


async def test_a_busy_test_shorter_than_one_window_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast link spends a small budget in a tenth of a second, CPU-bound: still one window."""
    _fake_proc(monkeypatch, busy_from_s=0.0, share=1.0)
    async with CpuMonitor(window_s=0.5) as monitor:
        await asyncio.sleep(0.2)
    assert monitor.peak().probe_limited


async def test_the_window_open_at_the_end_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_proc(monkeypatch, busy_from_s=0.5, share=1.0)
    async with CpuMonitor(window_s=0.5) as monitor:
        await asyncio.sleep(0.95)  # one quiet window, then busy until the end
        during = monitor.peak()
    assert during.probe_limited, "the open window counts while the test runs"
    assert monitor.peak().probe_limited


async def test_a_sliver_of_a_window_at_the_end_does_not_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A few ticks are too coarse to judge: one tick more or less swings them by 10 % or more."""
    _fake_proc(monkeypatch, busy_from_s=0.5 + MIN_TAIL_S / 2, share=1.0)
    async with CpuMonitor(window_s=0.5) as monitor:
        await asyncio.sleep(0.5 + MIN_TAIL_S * 0.8)
    assert not monitor.peak().probe_limited


async def test_an_idle_test_is_not_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_proc(monkeypatch, busy_from_s=0.0, share=0.3)
    async with CpuMonitor(window_s=0.2) as monitor:
        await asyncio.sleep(0.5)
    assert monitor.peak().process_percent == pytest.approx(30, abs=10)
    assert not monitor.peak().probe_limited


async def test_a_busy_tool_the_runner_started_is_watched() -> None:
    """iperf3 (or any tool) burning a core while the runner only waits for it (real /proc)."""
    spinner = "import time\nend = time.process_time() + 1.2\nwhile time.process_time() < end: pass"
    tool = await asyncio.create_subprocess_exec(sys.executable, "-c", spinner)
    async with CpuMonitor(window_s=0.25, pids=(tool.pid,)) as monitor:
        await tool.wait()
    # The waiting runner itself uses next to nothing: this is the tool's share (other load on
    # a shared machine may take part of its core, hence not 90 %).
    assert monitor.peak().process_percent > 40
