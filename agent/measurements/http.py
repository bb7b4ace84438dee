"""The native HTTP runner: growing multi-flow download and upload against qos-target.

Flows start at `initial_flows` and double while throughput still grows and the path holds no
standing queue (the flows' RTT from TCP_INFO), up to `max_flows`; the aggregate is sampled every
`sample_interval_s`; warm-up is excluded and the test stops early once the rate is stable, or at
the byte budget or the duration cap (agent.net.sampling decides).
Rate = bytes of the measured phase / its length (the QCVN per-sample rate).
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Callable
from typing import Final

from agent.measurements.base import (
    Binding,
    Direction,
    Progress,
    SpeedOutcome,
    SpeedSettings,
    failed_speed,
    no_progress,
)
from agent.net import tcpinfo
from agent.net.cpu import CpuMonitor
from agent.net.netif import BindError
from agent.net.rawhttp import (
    READ_BUFFER_BYTES,
    DownloadFlow,
    Endpoint,
    Flow,
    TargetError,
    UploadFlow,
    abort,
    connect_socket,
    host_header,
    resolve,
)
from agent.net.sampling import PathRtt, RateController
from contract.i18n import _, ngettext
from contract.result import Throughput

RUNNER: Final = "http"
# qos-target refuses one request beyond 10 GB; a test never gets near it.
MAX_REQUEST_BYTES: Final = 10 * 1000**3
PAYLOAD_BYTES: Final = 1 << 20


async def measure(
    direction: Direction,
    target_url: str,
    binding: Binding,
    settings: SpeedSettings,
    progress: Progress = no_progress,
) -> SpeedOutcome:
    """One direction of a speed test; every failure comes back as an error in the outcome."""
    try:
        endpoint = await resolve(target_url)
    except TargetError as exc:
        return failed_speed(direction, RUNNER, "resolve-failed", str(exc))
    return await _Test(direction, endpoint, binding, settings).run(progress)


class _Test:
    def __init__(
        self, direction: Direction, endpoint: Endpoint, binding: Binding, settings: SpeedSettings
    ) -> None:
        self.direction = direction
        self.endpoint = endpoint
        self.binding = binding
        self.settings = settings
        self.flows: list[Flow] = []
        self.connecting: set[asyncio.Task[None]] = set()
        self.connect_failure: str | None = None
        self.out_of_order: dict[int, int] = {}  # id(flow) -> its rcv_ooopack at the last tick
        request_bytes = min(settings.budget_bytes or MAX_REQUEST_BYTES, MAX_REQUEST_BYTES)
        host = host_header(endpoint)
        self.new_flow: Callable[[], Flow]
        if direction == "download":
            request = f"GET /download?bytes={request_bytes} HTTP/1.1\r\nHost: {host}\r\n\r\n"
            buffer = bytearray(READ_BUFFER_BYTES)  # shared: flows only count what lands in it
            self.new_flow = lambda: DownloadFlow(request.encode(), buffer)
        else:
            head = (
                f"POST /upload HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {request_bytes}\r\n\r\n"
            )
            # Random bytes, so a compressing middlebox cannot flatter the rate.
            payload = memoryview(os.urandom(PAYLOAD_BYTES))
            self.new_flow = lambda: UploadFlow(head.encode(), request_bytes, payload)

    async def run(self, progress: Progress) -> SpeedOutcome:
        progress(_("{direction}: connecting").format(direction=_(self.direction)), None)
        async with CpuMonitor() as cpu:
            try:
                return await self._measure(progress, cpu)
            finally:
                for task in self.connecting:
                    task.cancel()
                await asyncio.gather(*self.connecting, return_exceptions=True)
                for flow in self.flows:
                    if flow.transport is not None:
                        abort(flow.transport)

    async def _measure(self, progress: Progress, cpu: CpuMonitor) -> SpeedOutcome:
        loop = asyncio.get_running_loop()
        self._grow(self.settings.initial_flows)
        await asyncio.gather(*self.connecting, return_exceptions=True)
        if self.connect_failure is not None:
            return self._failed("connect-failed", self.connect_failure)
        start = loop.time()
        controller = RateController(self.settings, start=start)
        next_at, last_change, last_total = start, start, 0
        while True:
            next_at += self.settings.sample_interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now, total = loop.time(), self._total()
            failure = self.connect_failure or next(
                (flow.failure for flow in self.flows if flow.failure), None
            )
            if failure is not None:
                code = "connect-failed" if self.connect_failure else "transfer-failed"
                return self._failed(code, failure, total)
            if total > last_total:
                last_change, last_total = now, total
            elif now - last_change >= self.settings.stall_timeout_s:
                return self._failed(
                    "timeout", f"no data moved for {self.settings.stall_timeout_s:g} s", total
                )
            path, caught_up = self._path()
            action = controller.tick(now, total, path, caught_up=caught_up)
            stage = (
                _("{direction}: measuring, {flows}")
                if controller.measuring
                else _("{direction}: warm-up, {flows}")
            )
            rate = controller.mbps if controller.measuring else controller.recent_mbps
            flows = ngettext("{count} flow", "{count} flows", controller.flows)
            shown = stage.format(
                direction=_(self.direction), flows=flows.format(count=controller.flows)
            )
            progress(shown, rate)
            if action == "add-flows":
                self._grow(controller.flows - len(self.flows) - len(self.connecting))
            elif action == "stop":
                break
        peak = cpu.peak()
        throughput = Throughput(
            mbps=controller.mbps,
            bytes=controller.measured_bytes,
            duration_s=controller.measured_s,
            flows=len(self.flows),
            warmup_s=controller.warmup_s,
        )
        return SpeedOutcome(
            throughput=throughput,
            runner=RUNNER,
            bytes_used=controller.total_bytes,
            stop_reason=controller.stop_reason or "duration",
            confidence=_ratio(controller.confidence),
            cpu_peak_percent=peak.peak_percent,
            probe_limited=peak.probe_limited,
            converged=controller.converged,
        )

    def _total(self) -> int:
        return sum(flow.counted() for flow in self.flows)

    def _path(self) -> tuple[PathRtt | None, bool]:
        """The flows' RTT as the kernel sees it, and whether the reader has caught up.

        RTT of the data received (download) or sent (upload). Caught up: no flow holds data
        back for a retransmission. Receiving, a flow that does gets segments out of order
        (rcv_ooopack grows); sending, the peer SACKs what it holds. Unknown counts as caught up.
        """
        rtts, least, caught_up = [], [], True
        for flow in self.flows:
            sock = None if flow.transport is None else flow.transport.get_extra_info("socket")
            info = None if sock is None else tcpinfo.read(sock)
            if info is None:
                continue
            if self.direction == "download":
                rtt = info.rcv_rtt_s
                if info.rcv_ooopack is not None:
                    before = self.out_of_order.get(id(flow), 0)
                    self.out_of_order[id(flow)] = info.rcv_ooopack
                    caught_up = caught_up and info.rcv_ooopack == before
            else:
                rtt = info.rtt_s
                caught_up = caught_up and not info.sacked
            if rtt is not None:
                rtts.append(rtt)
            if info.min_rtt_s is not None:
                least.append(info.min_rtt_s)
        if not least:
            return None, caught_up
        # Before any data the handshake's RTT is all there is: the empty path's, no queue yet.
        rtt = statistics.median(rtts) if rtts else min(least)
        return PathRtt(rtt_s=rtt, min_rtt_s=min(least)), caught_up

    def _grow(self, count: int) -> None:
        for _flow in range(count):
            task = asyncio.create_task(self._connect(), name=f"{self.direction}-flow")
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            sock = await connect_socket(
                self.endpoint, self.binding, self.settings.connect_timeout_s
            )
            _transport, flow = await loop.create_connection(self.new_flow, sock=sock)
        except BindError as exc:
            self.connect_failure = exc.message
        except TimeoutError:
            self.connect_failure = (
                f"no connection to {host_header(self.endpoint)} "
                f"within {self.settings.connect_timeout_s:g} s"
            )
        except OSError as exc:
            self.connect_failure = f"cannot connect to {host_header(self.endpoint)}: {exc.strerror}"
        else:
            self.flows.append(flow)

    def _failed(self, code: str, message: str, bytes_used: int = 0) -> SpeedOutcome:
        return failed_speed(self.direction, RUNNER, code, message, bytes_used=bytes_used)


def _ratio(value: float | None) -> float | None:
    return None if value is None else min(1.0, value)
