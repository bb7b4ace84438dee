"""IPv6 readiness of one link, classified with its evidence.

Checks: a global-scope address on the interface (ULA, fd00::/8, counts as global here: the kernel
gives it global scope and the lab has nothing else), an IPv6 default route, an AAAA lookup of a
name (evidence "no-dns" when the target is given only by address), TCP and a small HTTP request to
a v6 target, a larger HTTP transfer whose full-size packets must pass the path (MTU above 1280:
a PMTUD blackhole lets the small request through and stalls the large one), and which family
wins Happy Eyeballs (RFC 8305, 250 ms head start for IPv6) on a dual-stack name or both literals.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import time
from typing import Final, Literal

import aiohappyeyeballs
import msgspec

from agent.budget import TestKind
from agent.measurements.base import Binding
from agent.measurements.kind import LinkUnderTest, Reading
from agent.net.netif import (
    IF_INET6,
    IPV6_ROUTE,
    BindError,
    bound_socket,
    global_v6_addresses,
    parse_v6_default_routes,
    read_proc,
)
from agent.net.rawhttp import (
    HTTP_OK,
    Endpoint,
    SmallClient,
    TargetError,
    is_literal,
    resolve,
    split_target,
)
from contract.i18n import _
from contract.quantities import Quantity
from contract.result import Ipv6, Ipv6Status

STAGE: Final = "ipv6"
# Larger than a few segments of any MTU, small enough to cost nothing.
LARGE_TRANSFER_BYTES: Final = 64 * 1024
HAPPY_EYEBALLS_DELAY_S: Final = 0.25
ULA: Final = ipaddress.IPv6Network("fc00::/7")

Evidence = dict[str, str | int | float | bool]
Check = Literal["ok", "failed", "not-tested"]


class Ipv6Outcome(msgspec.Struct, frozen=True, kw_only=True):
    ipv6: Ipv6
    bytes_used: int = 0


def classify(
    *,
    has_address: bool,
    has_route: bool,
    aaaa: Check,
    connect: Check,
    large_transfer: Check,
) -> Ipv6Status:
    """The verdict from the checks (pure).

    no-v6: no usable address and names give no IPv6 either. dns-only: names resolve to IPv6 but
    the link has no IPv6 address to reach them from. broken-route: an address, but no default
    route or no connection to the v6 target. pmtud-blackhole: connections work, full-size packets
    vanish. works: everything that could be tested passed.
    """
    if not has_address:
        return "dns-only" if aaaa == "ok" else "no-v6"
    if not has_route or connect == "failed":
        return "broken-route"
    if large_transfer == "failed":
        return "pmtud-blackhole"
    return "works"


async def measure(
    target_url: str,
    binding: Binding,
    *,
    v6_target_url: str | None = None,
    dns_name: str | None = None,
    timeout_s: float = 3.0,
) -> Ipv6Outcome:
    """Run every check on binding's interface (or the whole host when it names none)."""
    evidence: Evidence = {}
    interface = binding.interface
    addresses = global_v6_addresses(read_proc(IF_INET6), interface)
    evidence["global_address"] = addresses[0] if addresses else "none"
    if addresses:
        evidence["ula"] = ipaddress.IPv6Address(addresses[0]) in ULA
    routes = parse_v6_default_routes(read_proc(IPV6_ROUTE))
    has_route = interface in routes if interface else bool(routes)
    evidence["default_route"] = has_route
    host, _port = split_target(target_url)
    name = dns_name or (None if is_literal(host) else host)
    aaaa = await _aaaa(name, evidence)
    v6_binding = Binding(interface=interface, source_v6=addresses[0] if addresses else None)
    checks = _Checks(v6_binding, timeout_s, evidence)
    endpoint = await _v6_endpoint(v6_target_url or target_url, evidence)
    connect: Check = "not-tested"
    large: Check = "not-tested"
    if endpoint is not None and addresses:
        connect, large = await checks.connect_and_transfer(endpoint)
    await checks.happy_eyeballs(target_url, v6_target_url, name, binding)
    status = classify(
        has_address=bool(addresses),
        has_route=has_route,
        aaaa=aaaa,
        connect=connect,
        large_transfer=large,
    )
    return Ipv6Outcome(ipv6=Ipv6(status=status, evidence=evidence), bytes_used=checks.bytes_used)


async def _aaaa(name: str | None, evidence: Evidence) -> Check:
    if name is None:
        evidence["aaaa"] = "no-dns"
        return "not-tested"
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(name, None, family=socket.AF_INET6, type=socket.SOCK_STREAM)
    except OSError as exc:
        evidence["aaaa"] = f"failed: {exc}"
        return "failed"
    evidence["aaaa"] = str(infos[0][4][0])
    return "ok"


async def _v6_endpoint(url: str, evidence: Evidence) -> Endpoint | None:
    try:
        endpoint = await resolve(url, version=6)
    except TargetError:
        evidence["v6_target"] = "none"
        return None
    evidence["v6_target"] = str(endpoint.sockaddr[0])
    return endpoint


class _Checks:
    def __init__(self, binding: Binding, timeout_s: float, evidence: Evidence) -> None:
        self.binding = binding
        self.timeout_s = timeout_s
        self.evidence = evidence
        self.bytes_used = 0

    async def connect_and_transfer(self, endpoint: Endpoint) -> tuple[Check, Check]:
        started = time.perf_counter()
        try:
            client = await SmallClient.open(endpoint, self.binding, self.timeout_s)
        except (OSError, TimeoutError, BindError) as exc:
            self.evidence["tcp"] = f"failed: {exc}"
            return "failed", "not-tested"
        self.evidence["tcp_connect_ms"] = round((time.perf_counter() - started) * 1000, 3)
        try:
            small = await self._get(client, "/echo", "http")
            if small == "failed":
                return "failed", "not-tested"
            large = await self._get(client, f"/download?bytes={LARGE_TRANSFER_BYTES}", "large")
        finally:
            await client.close()
        return "ok", large

    async def _get(self, client: SmallClient, path: str, key: str) -> Check:
        try:
            async with asyncio.timeout(self.timeout_s):
                status, length = await client.get(path)
        except TimeoutError:
            self.evidence[key] = f"stalled: no complete answer in {self.timeout_s:g} s"
            return "failed"
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.evidence[key] = f"failed: {exc}"
            return "failed"
        self.bytes_used += length
        self.evidence[key] = f"HTTP {status}, {length} bytes"
        return "ok" if status == HTTP_OK else "failed"

    async def happy_eyeballs(
        self, target_url: str, v6_target_url: str | None, name: str | None, binding: Binding
    ) -> None:
        """Which family a dual-stack connection picks: a name's addresses, or both literals."""
        _host, port = split_target(target_url)
        loop = asyncio.get_running_loop()
        infos: list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]]
        if name is not None:
            try:
                resolved = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except OSError:
                self.evidence["happy_eyeballs"] = "not-tested: no addresses"
                return
            infos = [(f, k, p, c, (str(a[0]), int(a[1]))) for f, k, p, c, a in resolved]
        else:
            literals = {split_target(url)[0] for url in (target_url, v6_target_url) if url}
            families = {ipaddress.ip_address(h).version for h in literals if is_literal(h)}
            if families != {4, 6}:
                self.evidence["happy_eyeballs"] = "not-tested: no dual-stack target"
                return
            infos = [
                (_family(h), socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (h, port))
                for h in sorted(literals, key=lambda h: -ipaddress.ip_address(h).version)
            ]

        def factory(
            info: tuple[
                int | socket.AddressFamily, int | socket.SocketKind, int, str, tuple[object, ...]
            ],
        ) -> socket.socket:
            try:
                sock = bound_socket(socket.AddressFamily(info[0]), binding)
            except BindError as exc:
                raise OSError(errno.EADDRNOTAVAIL, exc.message) from exc
            sock.setblocking(True)  # noqa: FBT003 - aiohappyeyeballs sets its own mode
            return sock

        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                sock = await aiohappyeyeballs.start_connection(
                    infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, socket_factory=factory
                )
        except (OSError, TimeoutError) as exc:
            self.evidence["happy_eyeballs"] = f"failed: {exc}"
            return
        winner = "ipv6" if sock.family == socket.AF_INET6 else "ipv4"
        sock.close()
        self.evidence["happy_eyeballs"] = winner
        self.evidence["happy_eyeballs_ms"] = round((time.perf_counter() - started) * 1000, 3)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET  # noqa: PLR2004


class Ipv6Readiness:
    """The IPv6 checks of a link, classified (module docstring)."""

    name = "ipv6"
    slot: tuple[str, ...] = ("ipv6",)
    jobs: frozenset[TestKind] = frozenset({"speed", "light"})
    order = 40
    during: str | None = None
    delay_s = 0.0
    bulk = False
    quantities: tuple[Quantity, ...] = ()

    async def run(self, link: LinkUnderTest) -> Reading:
        link.progress(_("IPv6: checking"), None)
        outcome = await measure(
            link.target_url,
            link.binding,
            v6_target_url=link.options.ipv6_target_url,
            dns_name=link.options.dns_name,
        )
        return Reading(block=msgspec.to_builtins(outcome.ipv6), bytes_used=outcome.bytes_used)


KIND = Ipv6Readiness()
