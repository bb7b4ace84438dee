"""The iperf3 runner: the `iperf3` binary with JSON output, parsed into the common result block.

`-P` parallel streams, `--omit` drops the warm-up seconds from iperf3's own totals, `-R` makes the
target send (download). iperf3 runs for a fixed time and cannot stop at a byte budget: a link with
a tight budget should use the http runner. Its server takes one test at a time ("server-busy").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
from typing import Final

import msgspec

from agent.measurements.base import (
    Binding,
    Direction,
    Progress,
    SpeedOutcome,
    SpeedSettings,
    failed_speed,
    no_progress,
)
from agent.net.cpu import CpuMonitor, CpuPeak
from agent.net.rawhttp import TargetError, resolve
from agent.net.sampling import still_climbing
from contract.i18n import _
from contract.result import Throughput

RUNNER: Final = "iperf3"
DEFAULT_PORT: Final = 5201
OMIT_S: Final = 1
# iperf3 gets this long beyond its test time to connect, exchange results and exit.
GRACE_S: Final = 10.0


class _Sum(msgspec.Struct):
    bytes: int
    seconds: float


class _IntervalSum(msgspec.Struct):
    bytes: int
    omitted: bool = False
    start: float = 0.0
    end: float = 0.0


class _Interval(msgspec.Struct):
    sum: _IntervalSum


class _Cpu(msgspec.Struct):
    host_total: float


class _End(msgspec.Struct):
    sum_received: _Sum | None = None
    cpu_utilization_percent: _Cpu | None = None


class _TestStart(msgspec.Struct):
    num_streams: int
    omit: float


class _Start(msgspec.Struct):
    version: str | None = None
    test_start: _TestStart | None = None


class _Report(msgspec.Struct):
    start: _Start
    end: _End
    intervals: list[_Interval] = []
    error: str | None = None


def iperf3_argv(
    binary: str,
    address: str,
    port: int,
    direction: Direction,
    *,
    streams: int,
    seconds: int,
    binding: Binding,
    version: int,
) -> list[str]:
    argv = [binary, "-c", address, "-p", str(port), "-J", "-P", str(streams)]
    argv += ["-t", str(seconds), "--omit", str(OMIT_S)]
    if direction == "download":
        argv.append("-R")
    if binding.interface is not None:
        argv += ["--bind-dev", binding.interface]
    source = binding.source_for(version)
    if source is not None:
        argv += ["-B", source]
    return argv


def parse_report(output: bytes | str, direction: Direction) -> SpeedOutcome:
    """iperf3 -J output -> the outcome of one direction (pure; failures become errors)."""
    try:
        report = msgspec.json.decode(output, type=_Report)
    except msgspec.DecodeError:
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        return failed_speed(direction, RUNNER, "tool-failed", f"iperf3 said: {text.strip()[:500]}")
    except msgspec.ValidationError as exc:
        return failed_speed(direction, RUNNER, "tool-failed", f"unexpected iperf3 JSON: {exc}")
    version = report.start.version
    used = sum(interval.sum.bytes for interval in report.intervals)
    if report.error is not None:
        return failed_speed(
            direction, RUNNER, _error_code(report.error), f"iperf3: {report.error}",
            bytes_used=used, tool_version=version,
        )  # fmt: skip
    measured, test = report.end.sum_received, report.start.test_start
    if measured is None or test is None or measured.seconds <= 0:
        return failed_speed(
            direction, RUNNER, "tool-failed", "iperf3 reported no totals", tool_version=version
        )
    cpu = report.end.cpu_utilization_percent
    cpu_percent = cpu.host_total if cpu is not None else None
    return SpeedOutcome(
        throughput=Throughput(
            mbps=measured.bytes * 8 / measured.seconds / 1e6,
            bytes=measured.bytes,
            duration_s=measured.seconds,
            flows=test.num_streams,
            warmup_s=test.omit,
        ),
        runner=RUNNER,
        tool_version=version,
        bytes_used=max(used, measured.bytes),
        stop_reason="duration",
        cpu_peak_percent=None if cpu_percent is None else min(100.0, cpu_percent),
        probe_limited=cpu_percent is not None
        and CpuPeak(process_percent=cpu_percent, machine_percent=0.0).probe_limited,
        converged=not _climbing(report.intervals),
    )


def _climbing(intervals: list[_Interval]) -> bool:
    """Were the measured (not omitted) intervals' rates still climbing at the end?"""
    measured = [i.sum for i in intervals if not i.sum.omitted and i.sum.end > i.sum.start]
    if not measured:
        return False
    middles = [(s.start + s.end) / 2 for s in measured]
    rates = [s.bytes / (s.end - s.start) for s in measured]
    span = measured[-1].end - measured[0].start
    whole = sum(s.bytes for s in measured) / span if span > 0 else 0.0
    return still_climbing(middles, rates, span=span, rate=whole)


def _error_code(message: str) -> str:
    if "busy" in message:
        return "server-busy"
    if "unable to connect" in message or "unable to send control message" in message:
        return "connect-failed"
    return "tool-failed"


async def measure(
    direction: Direction,
    target_url: str,
    binding: Binding,
    settings: SpeedSettings,
    progress: Progress = no_progress,
    *,
    port: int = DEFAULT_PORT,
    streams: int | None = None,
    binary: str = "iperf3",
) -> SpeedOutcome:
    """Run iperf3 against the target's host (its iperf3 server on `port`)."""
    path = shutil.which(binary)
    if path is None:
        return failed_speed(
            direction, RUNNER, "tool-missing", f"{binary} is not installed: apt-get install iperf3"
        )
    try:
        endpoint = await resolve(target_url)
    except TargetError as exc:
        return failed_speed(direction, RUNNER, "resolve-failed", str(exc))
    seconds = max(1, math.floor(settings.max_duration_s - OMIT_S))
    argv = iperf3_argv(
        path,
        str(endpoint.sockaddr[0]),
        port,
        direction,
        streams=streams or settings.max_flows,
        seconds=seconds,
        binding=binding,
        version=endpoint.version,
    )
    progress(
        _("{direction}: iperf3 for {seconds} s").format(
            direction=_(direction), seconds=OMIT_S + seconds
        ),
        None,
    )
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # iperf3 reports its CPU over the whole test; the monitor adds its peak window and how
        # busy the whole machine was.
        async with CpuMonitor(pids=(process.pid,)) as cpu:
            async with asyncio.timeout(OMIT_S + seconds + GRACE_S):
                stdout, stderr = await process.communicate()
    except TimeoutError:
        return failed_speed(
            direction,
            RUNNER,
            "timeout",
            f"iperf3 did not finish in {OMIT_S + seconds + GRACE_S:g} s",
        )
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    outcome = parse_report(stdout or stderr, direction)
    if outcome.throughput is None:
        return outcome
    peak = cpu.peak()
    return msgspec.structs.replace(
        outcome,
        cpu_peak_percent=max(outcome.cpu_peak_percent or 0.0, peak.peak_percent),
        probe_limited=outcome.probe_limited or peak.probe_limited,
    )
