"""The native HTTP runner: parallel flows against qos-target, warm-up excluded.

Rate = bytes received in the measured phase / length of that phase (the QCVN per-sample rate).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from agent.runners.base import SpeedOutcome
from contract.result import MeasurementError, Throughput

RUNNER = "http"
READ_CHUNK = 1 << 16
# Each flow asks for more than it can fetch in the test's time; the client closes it early.
REQUEST_BYTES = 10 * 1000**3


class _Counter:
    """Bytes received by all flows, read by the clock at phase boundaries."""

    def __init__(self) -> None:
        self.total = 0


async def _flow(session: aiohttp.ClientSession, url: str, counter: _Counter) -> None:
    async with session.get(url, params={"bytes": str(REQUEST_BYTES)}) as response:
        response.raise_for_status()
        while chunk := await response.content.read(READ_CHUNK):
            counter.total += len(chunk)


async def measure_download(
    target_url: str,
    *,
    duration_s: float = 5.0,
    warmup_s: float = 1.0,
    flows: int = 4,
    local_address: str | None = None,
    connect_timeout_s: float = 5.0,
) -> SpeedOutcome:
    """Download over `flows` connections for warm-up + `duration_s`; failures become errors."""
    counter = _Counter()
    connector = aiohttp.TCPConnector(
        limit=flows, local_addr=(local_address, 0) if local_address else None
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
    url = target_url.rstrip("/") + "/download"
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(_flow(session, url, counter)) for _ in range(flows)]
        try:
            failure = await _run_phases(tasks, warmup_s, duration_s, counter)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if isinstance(failure, MeasurementError):
        return SpeedOutcome(
            throughput=None,
            runner=RUNNER,
            bytes_used=counter.total,
            stop_reason="error",
            errors=(failure,),
        )
    measured_bytes, measured_s = failure
    throughput = Throughput(
        mbps=measured_bytes * 8 / measured_s / 1e6,
        bytes=measured_bytes,
        duration_s=measured_s,
        flows=flows,
        warmup_s=warmup_s,
    )
    return SpeedOutcome(throughput=throughput, runner=RUNNER, bytes_used=counter.total)


async def _run_phases(
    tasks: list[asyncio.Task[None]], warmup_s: float, duration_s: float, counter: _Counter
) -> tuple[int, float] | MeasurementError:
    """Wait out the warm-up, then measure; a flow that dies early fails the test."""
    done, _ = await asyncio.wait(tasks, timeout=warmup_s, return_when=asyncio.FIRST_EXCEPTION)
    if done:
        return _flow_error(done)
    start_bytes, start = counter.total, time.perf_counter()
    done, _ = await asyncio.wait(tasks, timeout=duration_s, return_when=asyncio.FIRST_EXCEPTION)
    end_bytes, end = counter.total, time.perf_counter()
    if done:
        return _flow_error(done)
    return end_bytes - start_bytes, end - start


def _flow_error(done: set[asyncio.Task[None]]) -> MeasurementError:
    task = next(iter(done))
    exc = task.exception()
    if exc is None:
        return MeasurementError(
            stage="download", code="short-stream", message="the target closed a flow early"
        )
    code = "connect-failed" if isinstance(exc, aiohttp.ClientConnectorError) else "transfer-failed"
    return MeasurementError(stage="download", code=code, message=f"{type(exc).__name__}: {exc}")
