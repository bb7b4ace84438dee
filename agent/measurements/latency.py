"""Round-trip times: idle, and under load (while a speed test runs), as median/P95/jitter/loss.

Methods, best first: ICMP/ICMPv6 echo where raw sockets are permitted (root or CAP_NET_RAW, which
the qos-agent unit grants), TCP connect time to the target's port otherwise, or one HTTP /echo
request on a kept-alive connection. A fallback from ICMP is never silent: the result carries a
`latency-method` error saying why ICMP could not run, so a probe whose latency is measured another
way than the lab's shows it on the technician's check and in its stored results.
ICMP packets are built and parsed with scapy (imported only then: it is heavy), but sent and
received on a plain raw ICMP socket rather than scapy's sr(): that sniffs every packet of the
interface in Python, which under a 1 Gb/s download starves the very test it accompanies. The
kernel timestamps each reply (SO_TIMESTAMPNS), so a busy event loop does not inflate the RTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import math
import secrets
import socket
import statistics
import struct
import time
from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec

from agent.budget import TestKind
from agent.measurements.base import Binding
from agent.measurements.kind import LinkUnderTest, Reading
from agent.net.netif import BindError, bound_socket
from agent.net.rawhttp import (
    HTTP_OK,
    Endpoint,
    SmallClient,
    TargetError,
    connect_socket,
    resolve,
)
from contract.i18n import _
from contract.quantities import Quantity
from contract.result import LatencyMethod, LatencyStats, MeasurementError

Method = Literal["auto", "icmp", "tcp-connect", "http-echo"]
SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value
ICMP_PAYLOAD: Final = b"qosfleet" * 7  # 56 bytes, as ping sends
# Bytes on the wire per probe, for the data budget: headers and payload both ways, roughly.
PROBE_BYTES: Final = {"icmp": 2 * 100, "tcp-connect": 4 * 80, "http-echo": 2 * 200}
# Latency under load skips the first half second of a transfer: queues are still filling.
LOADED_DELAY_S: Final = 0.5
LOADED_MAX_PROBES: Final = 600


class LatencyOutcome(msgspec.Struct, frozen=True, kw_only=True):
    stats: LatencyStats | None
    bytes_used: int = 0
    errors: tuple[MeasurementError, ...] = ()


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of non-empty values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarize(rtts_ms: Sequence[float | None], method: LatencyMethod) -> LatencyStats | None:
    """RTTs in send order (None: lost) -> stats; jitter = mean |difference| of neighbours."""
    answered = [rtt for rtt in rtts_ms if rtt is not None]
    if not answered:
        return None
    steps = [abs(b - a) for a, b in itertools.pairwise(answered)]
    return LatencyStats(
        median_ms=statistics.median(answered),
        p95_ms=percentile(answered, 0.95),
        jitter_ms=statistics.fmean(steps) if steps else 0.0,
        loss=1 - len(answered) / len(rtts_ms),
        count=len(rtts_ms),
        method=method,
    )


def icmp_unavailable(family: socket.AddressFamily) -> str | None:
    """Why ICMP echo cannot run here (no raw sockets, or a broken install), or None: it can."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        socket.socket(family, socket.SOCK_RAW, proto).close()
    except PermissionError:
        return (
            "raw ICMP sockets are not permitted (the qos-agent unit grants CAP_NET_RAW; "
            "run a check as root: sudo qos-agent check)"
        )
    # scapy is a dependency of the agent extra, never an optional one: without it the install
    # is broken, and the result says so rather than measuring another way than the lab does.
    try:
        importlib.import_module("scapy.layers.inet6")
    except ImportError as exc:
        return f"scapy cannot be imported ({exc}): reinstall the qosfleet-agent package"
    return None


async def measure(
    target_url: str,
    binding: Binding,
    *,
    stage: str,
    method: Method = "auto",
    count: int = 10,
    interval_s: float = 0.1,
    timeout_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> LatencyOutcome:
    """Up to `count` probes `interval_s` apart (fewer once `stop` is set); errors are fields."""
    try:
        endpoint = await resolve(target_url)
    except TargetError as exc:
        return _failed(stage, "resolve-failed", str(exc))
    unavailable = icmp_unavailable(endpoint.family) if method == "auto" else None
    chosen: LatencyMethod = (
        ("tcp-connect" if unavailable else "icmp") if method == "auto" else method
    )
    probes = _Probes(
        endpoint,
        binding,
        count=count,
        interval_s=interval_s,
        timeout_s=timeout_s,
        stop=stop or asyncio.Event(),
    )
    try:
        if chosen == "icmp":
            rtts, failure = await probes.icmp(), None
        elif chosen == "tcp-connect":
            rtts, failure = await probes.tcp_connect()
        else:
            rtts, failure = await probes.http_echo()
    except BindError as exc:
        return _failed(stage, "bind-failed", exc.message)
    used = len(rtts) * PROBE_BYTES[chosen]
    stats = summarize(rtts, chosen)
    if stats is None:
        reason = failure or f"none of {len(rtts)} {chosen} probes was answered"
        return _failed(stage, "no-answer", reason, used)
    fallback = (
        MeasurementError(
            stage=stage,
            code="latency-method",
            message=f"measured by TCP connect instead of ICMP: {unavailable}",
        )
        if unavailable
        else None
    )
    return LatencyOutcome(stats=stats, bytes_used=used, errors=(fallback,) if fallback else ())


def _failed(stage: str, code: str, message: str, used: int = 0) -> LatencyOutcome:
    error = MeasurementError(stage=stage, code=code, message=message[:2000])
    return LatencyOutcome(stats=None, bytes_used=used, errors=(error,))


class _Probes:
    def __init__(
        self,
        endpoint: Endpoint,
        binding: Binding,
        *,
        count: int,
        interval_s: float,
        timeout_s: float,
        stop: asyncio.Event,
    ) -> None:
        self.endpoint = endpoint
        self.binding = binding
        self.count = count
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.stop = stop

    async def _pace(self, probe: int) -> bool:
        """Wait for the next probe's slot; False once it is time to stop."""
        if probe and not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.interval_s)
        return probe < self.count and not self.stop.is_set()

    async def tcp_connect(self) -> tuple[list[float | None], str | None]:
        rtts: list[float | None] = []
        failure = None
        while await self._pace(len(rtts)):
            started = time.perf_counter()
            try:
                sock = await connect_socket(self.endpoint, self.binding, self.timeout_s)
            except (OSError, TimeoutError) as exc:
                failure = f"TCP connect to port {self.endpoint.port} failed: {exc}"
                rtts.append(None)
                continue
            rtts.append((time.perf_counter() - started) * 1000)
            sock.close()
        return rtts, failure

    async def http_echo(self) -> tuple[list[float | None], str | None]:
        rtts: list[float | None] = []
        try:
            client = await SmallClient.open(self.endpoint, self.binding, self.timeout_s)
        except (OSError, TimeoutError) as exc:
            return [None], f"cannot connect for /echo: {exc}"
        try:
            while await self._pace(len(rtts)):
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(self.timeout_s):
                        status, _body = await client.get("/echo")
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    return [*rtts, None], f"/echo failed: {exc}"
                rtt = (time.perf_counter() - started) * 1000
                rtts.append(rtt if status == HTTP_OK else None)
        finally:
            await client.close()
        return rtts, None

    async def icmp(self) -> list[float | None]:
        v6 = self.endpoint.family == socket.AF_INET6
        scapy = _Scapy(v6=v6)
        proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
        sock = bound_socket(self.endpoint.family, self.binding, socket.SOCK_RAW, proto)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        ident = secrets.randbits(16)
        sent: dict[int, int] = {}
        received: dict[int, int] = {}
        all_in = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sock, self._read_replies, sock, scapy, ident, (sent, received, all_in))
        try:
            while await self._pace(len(sent)):
                seq = len(sent)
                packet = scapy.echo_request(ident, seq)
                sent[seq] = time.time_ns()  # the kernel's receive stamps are wall-clock too
                with contextlib.suppress(OSError):  # e.g. no route: the probe is lost
                    sock.sendto(packet, self.endpoint.sockaddr)
            if len(received) < len(sent):
                all_in.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_in.wait(), self.timeout_s)
        finally:
            loop.remove_reader(sock)
            sock.close()
        return [
            (received[seq] - stamp) / 1e6 if seq in received else None
            for seq, stamp in sent.items()
        ]

    @staticmethod
    def _read_replies(
        sock: socket.socket,
        scapy: _Scapy,
        ident: int,
        state: tuple[dict[int, int], dict[int, int], asyncio.Event],
    ) -> None:
        sent, received, all_in = state
        while True:
            try:
                data, ancillary, _flags, _address = sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except (BlockingIOError, InterruptedError):
                return
            seq = scapy.echo_reply_seq(data, ident)
            if seq is None:
                continue
            stamp = time.time_ns()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanos = struct.unpack("qq", value[:16])
                    stamp = seconds * 1_000_000_000 + nanos
            received.setdefault(seq, stamp)
            if len(received) >= len(sent):
                all_in.set()


class _Scapy:
    """The two packet shapes ICMP latency needs, built and parsed with scapy."""

    def __init__(self, *, v6: bool) -> None:
        self.v6 = v6
        self.inet: Any = importlib.import_module("scapy.layers.inet")
        self.inet6: Any = importlib.import_module("scapy.layers.inet6")

    def echo_request(self, ident: int, seq: int) -> bytes:
        if self.v6:
            # The kernel fills in an ICMPv6 checksum on raw sockets (it needs the pseudo-header).
            return bytes(
                self.inet6.ICMPv6EchoRequest(id=ident, seq=seq, data=ICMP_PAYLOAD, cksum=0)
            )
        return bytes(self.inet.ICMP(type=8, id=ident, seq=seq) / ICMP_PAYLOAD)

    def echo_reply_seq(self, data: bytes, ident: int) -> int | None:
        """The sequence number of an echo reply to us (IPv4 raw sockets include the IP header)."""
        if self.v6:
            if not data or data[0] != 129:  # noqa: PLR2004 - ICMPv6 Echo Reply
                return None
            reply = self.inet6.ICMPv6EchoReply(data)
        else:
            packet = self.inet.IP(data)
            if not packet.haslayer(self.inet.ICMP) or packet[self.inet.ICMP].type != 0:
                return None
            reply = packet[self.inet.ICMP]
        return int(reply.seq) if int(reply.id) == ident else None


def reading_of(outcome: LatencyOutcome) -> Reading:
    block = None if outcome.stats is None else msgspec.to_builtins(outcome.stats)
    return Reading(block=block, bytes_used=outcome.bytes_used, errors=outcome.errors)


class IdleLatency:
    """Round-trip times on a quiet link, before any transfer."""

    name = "latency"
    slot: tuple[str, ...] = ("latency", "idle")
    jobs: frozenset[TestKind] = frozenset({"speed", "light"})
    order = 10
    during: str | None = None
    delay_s = 0.0
    bulk = False
    quantities: tuple[Quantity, ...] = ()

    async def run(self, link: LinkUnderTest) -> Reading:
        link.progress(_("latency: idle"), None)
        options = link.options
        outcome = await measure(
            link.target_url,
            link.binding,
            stage="latency-idle",
            method=options.latency_method,
            count=options.latency_probes,
        )
        return reading_of(outcome)


class LoadedLatency:
    """Round-trip times while the download runs, until it ends (its first half second skipped:
    queues are still filling)."""

    name = "latency_loaded"
    slot: tuple[str, ...] = ("latency", "loaded")
    jobs: frozenset[TestKind] = frozenset({"speed"})
    order = 21
    during: str | None = "download"
    delay_s = LOADED_DELAY_S
    bulk = False
    quantities: tuple[Quantity, ...] = ()

    async def run(self, link: LinkUnderTest) -> Reading:
        outcome = await measure(
            link.target_url,
            link.binding,
            stage="latency-loaded",
            method=link.options.latency_method,
            count=LOADED_MAX_PROBES,
            stop=link.stop,
        )
        return reading_of(outcome)


IDLE = IdleLatency()
LOADED = LoadedLatency()
