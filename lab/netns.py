"""Villages built from network namespaces: a target, a core router and shaped links to probes.

Topology (one lab; every name starts with the lab's id, e.g. ``qf3a9c1e``)::

    target ─ core ─┬─ probe village-a (eth0)                 one shaped veth per link
             │     ├─ probe village-c (eth0, wwan0)           a probe may hold several links
             │     ├─ hop2 ═ hop1 ─ probe village-f (eth0)    pmtud_blackhole: path MTU 1400 in
             │     │                                          the middle, Packet Too Big dropped
             │     └─ probe village-b (eth0)                  rtt_ms > 0: the link's packets,
             │                                                both ways, detour through
           TUN d<k> ⇄ python -m lab.delayline                 a delay line in the core

Every veth is created directly inside lab namespaces, so the root namespace never gains an
interface, address or route; deleting the namespaces removes everything. Download is shaped with
``tc tbf`` on the core's end of a link (egress toward the probe), upload on the probe's end.

Delay (these kernels have no netem): for link k with rtt_ms > 0, policy routing in the core sends
packets arriving from the link, and packets toward the link's subnets from anywhere else, to
table 200+k, whose default route is TUN device d<k>. The delay line (lab/delayline.py, started by
open() and stopped by close()) holds each packet for rtt_ms / 2 and writes it back; arriving from
d<k>, it follows the main table on. Each detour costs one more hop of TTL.

Addresses: IPv4 from 198.18.0.0/15 (198.18.<k>.0/24 per link k, 198.18.0.0/24 for the target,
198.19.<k>.0/30 and .4/30 inside a blackhole path); IPv6 ULA under fd00:7166::/48 ("qf" in ASCII:
fd00:7166:0:<k>::/64 per link, fd00:7166:1:<k>:: and fd00:7166:2:<k>:: inside a blackhole path).
The router side of a segment is host 1, the far side host 2. Labs never share a namespace, so
parallel labs reuse the same plan without clashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Literal, NamedTuple, Self

import msgspec

from contract.errors import ConfigError, QosfleetError, ServiceError
from lab.delayline import MAX_ONE_WAY_MS, READY

IpVersion = Literal[4, 6]

NEEDS_ROOT: Final = (
    "the network-namespace lab needs root: it creates namespaces, veth links and tc shaping"
)
ROOT_HINT: Final = (
    "run it with sudo (e.g. sudo .venv/bin/pytest -m e2e); without root, run the unit and "
    "integration tests instead: .venv/bin/pytest -m 'not e2e'"
)
DEFAULT_PREFIX: Final = "qf"
# Where a lab records its owner's PID, so cleanup_stale() leaves labs of live processes alone.
OWNER_DIR: Final = Path("/run/qosfleet-lab")
# The lowered MTU in the middle of a pmtud_blackhole path; both ends keep the link's own MTU.
BLACKHOLE_PATH_MTU: Final = 1400
IFNAMSIZ: Final = 15
MAX_LINKS: Final = 255  # link k gets 198.18.<k>.0/24
MAX_MBPS: Final = 100_000.0
MAX_MTU: Final = 9000  # jumbo frames
MAX_RTT_MS: Final = 2 * MAX_ONE_WAY_MS
QUEUE_MS: Final = 50.0  # tbf's queue on a link without added RTT
# TCP congestion control of the lab's routes, so results do not depend on the host's default: a
# namespace inherits it, and a host set to BBR (as these machines are) made two flows through a
# tbf queue lose packets every half second at 100 ms of RTT, where cubic, the Linux default,
# loses only in its first slow start. A route's congctl also works where a namespace may not
# choose its default (only the host's allowed algorithms).
CONGESTION_CONTROL: Final = "cubic"

_PROBE_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_INTERFACE_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_PREFIX_RE: Final = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_RESERVED_NODES: Final = frozenset({"target", "core"})
# Routes through the first link are preferred; a test picks another link by binding to it.
_METRIC_STEP: Final = 100
# Policy-routing tables for multi-homed probes: one per link, so a source address picks its link.
_TABLE_BASE: Final = 100
_RULE_PRIORITY_BASE: Final = 1000
_STOP_GRACE_S: Final = 2.0
# Delay lines: core's policy-routing table for link k is _DELAY_TABLE_BASE + k. Rule bands (+ k,
# k <= 255) run in this order: from the link into its TUN; back out of the TUN toward the link
# by the main table; anything else toward the link into its TUN.
_DELAY_TABLE_BASE: Final = 200
_DELAY_FROM_LINK_PRIORITY: Final = 1000
_DELAY_DELIVER_PRIORITY: Final = 1300
_DELAY_TO_LINK_PRIORITY: Final = 1600
# A Python start plus one ioctl; generous, for a loaded CI machine.
_DELAY_LINE_START_S: Final = 10.0


class LinkSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One access link of a probe, as the probe sees it.

    rtt_ms is the round-trip time the link adds, half in each direction, held by a userspace
    delay line in the core (lab/delayline.py; these kernels have no netem). It applies to all
    traffic of the link, the target's and other probes' alike (two delayed probes see the sum).
    The delay line carries 1 Gb/s of TCP (GSO offload) but only about 60,000 packets/s of traffic
    the kernel cannot batch, e.g. ~650 Mb/s of 1400-byte UDP. tbf's queue grows with rtt_ms (it
    holds at least one bandwidth-delay product), so TCP goodput stays near 0.956 x rate.
    """

    interface: str = "eth0"
    down_mbps: float
    up_mbps: float
    ipv6: bool = True
    mtu: int = 1500
    pmtud_blackhole: bool = False
    rtt_ms: float = 0.0

    def __post_init__(self) -> None:
        key = f"link {self.interface}"
        if not _INTERFACE_RE.match(self.interface) or self.interface == "lo":
            raise ConfigError(
                f"{key}.interface",
                f"{self.interface!r} is not an interface name",
                f"use up to {IFNAMSIZ} letters, digits, '.', '_' or '-', e.g. eth0 or wwan0",
            )
        for field, mbps in (("down_mbps", self.down_mbps), ("up_mbps", self.up_mbps)):
            if not 0 < mbps <= MAX_MBPS:
                raise ConfigError(f"{key}.{field}", f"{mbps} is not a rate from 0 to {MAX_MBPS}")
        lowest = 1280 if self.ipv6 else 576  # the least each IP version must carry
        if not lowest <= self.mtu <= MAX_MTU:
            raise ConfigError(f"{key}.mtu", f"{self.mtu} is not from {lowest} to {MAX_MTU}")
        if self.pmtud_blackhole and self.mtu <= BLACKHOLE_PATH_MTU:
            raise ConfigError(
                f"{key}.mtu",
                f"a pmtud_blackhole link needs an MTU above {BLACKHOLE_PATH_MTU}, got {self.mtu}",
            )
        if not 0 <= self.rtt_ms <= MAX_RTT_MS:
            raise ConfigError(
                f"{key}.rtt_ms",
                f"{self.rtt_ms} is not a round-trip time from 0 to {MAX_RTT_MS:g} ms",
                "set the delay the link adds, e.g. rtt_ms = 40 for 4G, or 0 for none",
            )


class ProbeSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One probe namespace and its links (e.g. eth0 fixed and wwan0 mobile)."""

    name: str
    links: tuple[LinkSpec, ...]

    def __post_init__(self) -> None:
        if not _PROBE_NAME_RE.match(self.name) or self.name in _RESERVED_NODES:
            raise ConfigError(
                f"probe {self.name!r}.name",
                "is not a probe name",
                "use up to 32 lowercase letters, digits and '-', not 'target' or 'core'",
            )
        if not self.links:
            raise ConfigError(f"probe {self.name}.links", "a probe needs at least one link")
        interfaces = [link.interface for link in self.links]
        if len(set(interfaces)) != len(interfaces):
            raise ConfigError(f"probe {self.name}.links", f"interfaces repeat: {interfaces}")


class InterfaceCounters(msgspec.Struct, frozen=True, kw_only=True):
    """Byte and packet counters of one interface, as the kernel keeps them."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


class _Direction(msgspec.Struct, frozen=True):
    bytes: int
    packets: int


class _Stats64(msgspec.Struct, frozen=True):
    rx: _Direction
    tx: _Direction


class _LinkJson(msgspec.Struct, frozen=True):
    stats64: _Stats64


class _Subnets(NamedTuple):
    """One segment's subnets; v6 is None on an IPv4-only link."""

    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network | None

    def present(self) -> list[tuple[IpVersion, str]]:
        versions: list[tuple[IpVersion, str]] = [(4, str(self.v4))]
        return versions if self.v6 is None else [*versions, (6, str(self.v6))]


def _subnets(link: LinkSpec, v4: str, v6: str) -> _Subnets:
    return _Subnets(ipaddress.IPv4Network(v4), ipaddress.IPv6Network(v6) if link.ipv6 else None)


_TARGET: Final = _Subnets(
    ipaddress.IPv4Network("198.18.0.0/24"), ipaddress.IPv6Network("fd00:7166::/64")
)


class _Plan:
    """Every command that builds one lab, worked out before anything touches the kernel."""

    def __init__(self, lab_id: str) -> None:
        self.netns: dict[str, str] = {}  # node -> namespace, in creation order
        self.routers: set[str] = set()
        self.veths: list[list[str]] = []
        self.interfaces: list[list[str]] = []  # addresses, MTUs, links up
        self.routes: list[list[str]] = []  # after interfaces: a gateway must be reachable
        self.qdiscs: list[list[str]] = []
        self.addresses: dict[tuple[str, str, IpVersion], str] = {}
        self.delay_lines: list[tuple[str, float]] = []  # (TUN device in core, one-way ms)
        self._lab_id = lab_id

    def node(self, name: str, *, router: bool) -> None:
        netns = f"{self._lab_id}-{name}"
        if netns in self.netns.values():
            raise ConfigError(f"probe {name}", "two nodes of the lab would share a namespace")
        self.netns[name] = netns
        if router:
            self.routers.add(name)
        self.interfaces.append(["ip", "-n", netns, "link", "set", "dev", "lo", "up"])

    def connect(
        self,
        router: tuple[str, str],
        outer: tuple[str, str],
        subnets: _Subnets,
        *,
        mtu: int,
    ) -> None:
        """A veth from a router-side end (host 1) to an outer end (host 2), made in place."""
        (router_node, router_dev), (outer_node, outer_dev) = router, outer
        v4, v6 = subnets
        self.veths.append(
            [
                *("ip", "-n", self.netns[router_node], "link", "add", "name", router_dev),
                *("type", "veth", "peer", "name", outer_dev, "netns", self.netns[outer_node]),
            ]
        )
        for node, dev, host in ((router_node, router_dev, 1), (outer_node, outer_dev, 2)):
            netns = self.netns[node]
            self.interfaces.append(["ip", "-n", netns, "link", "set", "dev", dev, "mtu", str(mtu)])
            self.addresses[node, dev, 4] = str(v4[host])
            self.interfaces.append(
                ["ip", "-n", netns, "addr", "add", f"{v4[host]}/{v4.prefixlen}", "dev", dev]
            )
            if v6 is not None:
                self.addresses[node, dev, 6] = str(v6[host])
                # nodad: the address is usable at once instead of after a second of DAD.
                self.interfaces.append(
                    [
                        *("ip", "-n", netns, "addr", "add", f"{v6[host]}/{v6.prefixlen}"),
                        *("dev", dev, "nodad"),
                    ]
                )
            self.interfaces.append(["ip", "-n", netns, "link", "set", "dev", dev, "up"])

    def route(
        self,
        node: str,
        version: IpVersion,
        destination: str,
        via: tuple[str, str],
        dev: str,
        *extra: str,
    ) -> None:
        """A route in node toward destination through the far end of (gateway node, its dev).

        TCP over it uses CONGESTION_CONTROL (see there).
        """
        gateway = self.addresses[(*via, version)]
        self.routes.append(
            [
                *("ip", "-n", self.netns[node], f"-{version}", "route", "add", destination),
                *("via", gateway, "dev", dev, *extra, "congctl", CONGESTION_CONTROL),
            ]
        )

    def shape(self, node: str, dev: str, mbps: float, *, rtt_ms: float = 0.0) -> None:
        """tbf on dev's egress; goodput through it is 0.956 x rate (DESIGN.md, measured)."""
        rate_bps = round(mbps * 1e6)
        # A burst of >= 1 ms at rate keeps tbf's timer from capping fast links; 32 KB floor for
        # slow ones. The queue holds 50 ms, or the link's added RTT if longer: at least one
        # bandwidth-delay product, the classic buffer size, so TCP can keep the link full (with
        # 50 ms at 100 Mb/s and rtt_ms = 100 goodput fell to 0.93 x 0.956 x rate).
        burst = max(32_768, rate_bps // 8 // 1000)
        queue_ms = max(QUEUE_MS, rtt_ms)
        self.qdiscs.append(
            [
                *("tc", "-n", self.netns[node], "qdisc", "add", "dev", dev, "root", "handle", "1:"),
                *("tbf", "rate", f"{rate_bps}bit", "burst", str(burst)),
                *("latency", f"{queue_ms:g}ms"),
            ]
        )

    def delay(
        self, k: int, link_dev: str, access: _Subnets, one_way_ms: float, *, mtu: int
    ) -> None:
        """Send link k's packets, both ways, through TUN device d<k> held by a delay line in core.

        The TUN is as wide as the widest link, so the real links alone decide Packet Too Big.
        """
        core, tun, table = self.netns["core"], f"d{k}", str(_DELAY_TABLE_BASE + k)
        self.veths.append(["ip", "-n", core, "tuntap", "add", "dev", tun, "mode", "tun"])
        self.interfaces.append(["ip", "-n", core, "link", "set", "dev", tun, "mtu", str(mtu), "up"])
        for version, network in access.present():
            ip = ("ip", "-n", core, f"-{version}")
            self.routes += [
                [*ip, "route", "add", "default", "dev", tun, "table", table],
                [
                    *(*ip, "rule", "add", "iif", link_dev, "table", table),
                    *("priority", str(_DELAY_FROM_LINK_PRIORITY + k)),
                ],
                [
                    *(*ip, "rule", "add", "iif", tun, "to", network, "table", "main"),
                    *("priority", str(_DELAY_DELIVER_PRIORITY + k)),
                ],
                [
                    *(*ip, "rule", "add", "to", network, "table", table),
                    *("priority", str(_DELAY_TO_LINK_PRIORITY + k)),
                ],
            ]
        self.delay_lines.append((tun, one_way_ms))

    def drop_too_big(self, node: str, dev: str) -> None:
        """Drop ICMPv6 Packet Too Big and ICMP frag-needed leaving dev: the blackhole itself.

        No act_gact here, so u32 sends them to an HTB class whose pfifo holds nothing; unmatched
        packets skip HTB shaping through its direct queue (no default class).
        """
        tc = ("tc", "-n", self.netns[node])
        for command in (
            f"qdisc add dev {dev} root handle 1: htb",
            f"class add dev {dev} parent 1: classid 1:1 htb rate 8kbit quantum 1514",
            f"qdisc add dev {dev} parent 1:1 handle 10: pfifo limit 0",
            (
                f"filter add dev {dev} parent 1: protocol ipv6 prio 1 u32"
                " match ip6 protocol 58 0xff match u8 2 0xff at 40 flowid 1:1"
            ),
            # IHL 5 pins the ICMP header at byte 20; the kernel's ICMP errors carry no options.
            (
                f"filter add dev {dev} parent 1: protocol ip prio 2 u32 match u8 0x05 0x0f at 0"
                " match ip protocol 1 0xff match u8 3 0xff at 20 match u8 4 0xff at 21 flowid 1:1"
            ),
        ):
            self.qdiscs.append([*tc, *command.split()])  # interface names hold no spaces


def _plan(lab_id: str, probes: Sequence[ProbeSpec]) -> _Plan:
    plan = _Plan(lab_id)
    plan.node("target", router=False)
    plan.node("core", router=True)
    widest = max([1500, *(link.mtu for probe in probes for link in probe.links)])
    plan.connect(("core", "target"), ("target", "eth0"), _TARGET, mtu=widest)
    for version in (4, 6):
        plan.route("target", version, "default", ("core", "target"), "eth0")
    k = 0
    for probe in probes:
        plan.node(probe.name, router=False)
        for index, link in enumerate(probe.links):
            k += 1
            _plan_link(plan, probe, index, link, k, widest=widest)
    return plan


def _plan_link(
    plan: _Plan, probe: ProbeSpec, index: int, link: LinkSpec, k: int, *, widest: int
) -> None:
    access = _subnets(link, f"198.18.{k}.0/24", f"fd00:7166:0:{k:x}::/64")
    core_dev = f"p{k}-{link.interface}"[:IFNAMSIZ]  # "p<k>-" keeps truncated names unique
    if link.pmtud_blackhole:
        gateway = _plan_blackhole(plan, probe=probe, link=link, k=k, core_dev=core_dev)
    else:
        plan.connect(("core", core_dev), (probe.name, link.interface), access, mtu=link.mtu)
        gateway = ("core", core_dev)
    plan.shape("core", core_dev, link.down_mbps, rtt_ms=link.rtt_ms)
    plan.shape(probe.name, link.interface, link.up_mbps, rtt_ms=link.rtt_ms)
    if link.rtt_ms > 0:
        plan.delay(k, core_dev, access, link.rtt_ms / 2, mtu=widest)
    metric = str(_METRIC_STEP * (index + 1))
    for version, _ in access.present():
        plan.route(probe.name, version, "default", gateway, link.interface, "metric", metric)
        if len(probe.links) > 1:
            # A test bound to this link's source address must leave through this link.
            table = str(_TABLE_BASE + index)
            plan.route(probe.name, version, "default", gateway, link.interface, "table", table)
            source = plan.addresses[probe.name, link.interface, version]
            plan.routes.append(
                [
                    *("ip", "-n", plan.netns[probe.name], f"-{version}", "rule", "add"),
                    *("from", source, "table", table),
                    *("priority", str(_RULE_PRIORITY_BASE + index)),
                ]
            )


def _plan_blackhole(
    plan: _Plan, *, probe: ProbeSpec, link: LinkSpec, k: int, core_dev: str
) -> tuple[str, str]:
    """core ─ hop2 ═ hop1 ─ probe, the ═ segment at BLACKHOLE_PATH_MTU; returns the gateway."""
    hop1, hop2 = f"{probe.name}.{link.interface}.hop1", f"{probe.name}.{link.interface}.hop2"
    plan.node(hop2, router=True)
    plan.node(hop1, router=True)
    access = _subnets(link, f"198.18.{k}.0/24", f"fd00:7166:0:{k:x}::/64")
    outer = _subnets(link, f"198.19.{k}.4/30", f"fd00:7166:2:{k:x}::/64")
    inner = _subnets(link, f"198.19.{k}.0/30", f"fd00:7166:1:{k:x}::/64")
    plan.connect(("core", core_dev), (hop2, "up"), outer, mtu=link.mtu)
    plan.connect((hop2, "down"), (hop1, "up"), inner, mtu=BLACKHOLE_PATH_MTU)
    plan.connect((hop1, "down"), (probe.name, link.interface), access, mtu=link.mtu)
    for version, network in access.present():
        plan.route("core", version, network, (hop2, "up"), core_dev)
        plan.route(hop2, version, "default", ("core", core_dev), "up")
        plan.route(hop2, version, network, (hop1, "up"), "down")
        plan.route(hop1, version, "default", (hop2, "down"), "up")
    # Each hop's own Packet Too Big vanishes: hop1's toward the probe (upload), hop2's toward the
    # target (download).
    plan.drop_too_big(hop1, "down")
    plan.drop_too_big(hop2, "up")
    return (hop1, "down")


# Written inside each namespace before any veth exists, so new interfaces inherit the defaults:
# no DAD (addresses usable at once), no router advertisements taken, no reverse-path filter
# (a two-link probe answers on the link a reply arrives on, whatever its main route says).
_SYSCTLS: Final = (
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/all/accept_ra", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
)
_ROUTER_SYSCTLS: Final = (
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
    ("net/ipv6/conf/default/forwarding", "1"),
)
# The target's TCP buffers, as docs/measurement-method.md asks of a target serving long paths: a
# flow's window is capped by its sender's buffer (download) and its receiver's (upload). Linux's
# default 4 MB send buffer holds a flow to ~50 Mb/s at 600 ms; 64 MB reaches 1 Gb/s with 8 flows.
_TARGET_SYSCTLS: Final = (
    ("net/ipv4/tcp_wmem", "4096 16384 67108864"),
    ("net/ipv4/tcp_rmem", "4096 131072 67108864"),
)
# sh rather than sysctl(8): procps is not on every minimal machine; /proc/sys/net is per netns.
_SYSCTL_SCRIPT: Final = (
    'while [ "$#" -gt 0 ]; do printf "%s\\n" "$2" > "/proc/sys/$1" || exit 1; shift 2; done'
)


class Lab:
    """One lab: build on enter, tear down on exit (also on exceptions and Ctrl-C).

    Nodes are named "target", "core" and the probes' names; ``namespaces`` maps each to its
    namespace (blackhole hops appear as "<probe>.<interface>.hop1"/"hop2").
    """

    def __init__(self, probes: Sequence[ProbeSpec], *, prefix: str = DEFAULT_PREFIX) -> None:
        if not _PREFIX_RE.match(prefix):
            raise ConfigError("prefix", f"{prefix!r} is not 1-6 lowercase letters and digits")
        names = [probe.name for probe in probes]
        if len(set(names)) != len(names):
            raise ConfigError("probes", f"probe names repeat: {names}")
        links = [(probe.name, link) for probe in probes for link in probe.links]
        if len(links) > MAX_LINKS:
            raise ConfigError("probes", f"{len(links)} links; the address plan holds {MAX_LINKS}")
        self.probes: tuple[ProbeSpec, ...] = tuple(probes)
        self.lab_id = f"{prefix}{secrets.token_hex(3)}"
        self._plan = _plan(self.lab_id, self.probes)
        self._created: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._delay_lines: dict[str, subprocess.Popen[bytes]] = {}
        self.delay_line_reports: dict[str, str] = {}
        """After close: each delay line's TUN device -> its counters line (lab/delayline.py)."""
        self._state: Literal["new", "open", "closed"] = "new"

    @property
    def namespaces(self) -> Mapping[str, str]:
        """Node name -> namespace name, in creation order."""
        return dict(self._plan.netns)

    def netns(self, node: str) -> str:
        try:
            return self._plan.netns[node]
        except KeyError:
            raise QosfleetError(
                f"the lab has no node {node!r}", f"nodes: {', '.join(self._plan.netns)}"
            ) from None

    def argv(self, node: str, argv: Sequence[str]) -> list[str]:
        """The command line that runs argv inside node (for asyncio.create_subprocess_exec)."""
        return ["ip", "netns", "exec", self.netns(node), *argv]

    def address(self, node: str, interface: str, version: IpVersion) -> str:
        """The address of node's interface, e.g. address("village-c", "wwan0", 6)."""
        try:
            return self._plan.addresses[node, interface, version]
        except KeyError:
            known = sorted(
                f"{dev}/IPv{ver}" for (owner, dev, ver) in self._plan.addresses if owner == node
            )
            raise QosfleetError(
                f"node {node!r} has no IPv{version} address on {interface!r}",
                f"it has: {', '.join(known) or 'nothing (is the node name right?)'}",
            ) from None

    def target_address(self, version: IpVersion) -> str:
        return self.address("target", "eth0", version)

    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60.0,
        stdin_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in node to completion, capturing text output; check=True raises on failure."""
        self._require_open()
        command = self.argv(node, argv)
        try:
            done = subprocess.run(
                command,
                input=stdin_text,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise QosfleetError(
                f"{' '.join(argv)} in {node} did not finish within {timeout} s",
                "pass a larger timeout, or check that its peer is up",
            ) from exc
        if check and done.returncode != 0:
            raise QosfleetError(
                f"{' '.join(argv)} in {node} exited with {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}",
                "pass check=False to inspect the result instead",
            )
        return done

    def popen(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        stderr: int | IO[bytes] | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in node; the lab stops its process group on teardown."""
        self._require_open()
        process = subprocess.Popen(
            self.argv(node, argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own group: one signal reaches its children too
        )
        self._processes.append(process)
        return process

    def wait_listening(self, node: str, port: int, *, timeout: float = 5.0) -> None:
        """Return once something listens on TCP port in node (e.g. a server started by popen)."""
        deadline = time.monotonic() + timeout
        while not self.run(node, ["ss", "-Hltn", "sport", "=", f":{port}"]).stdout.strip():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"nothing listens on TCP port {port} in {node} after {timeout} s",
                    "check that the server started: pass stderr= to popen to see its errors",
                )
            time.sleep(0.05)

    def counters(self, node: str, interface: str) -> InterfaceCounters:
        """The kernel's byte and packet counters of node's interface."""
        self._require_open()
        shown = _command(
            ["ip", "-n", self.netns(node), "-j", "-s", "link", "show", "dev", interface],
            f"is {interface!r} an interface of {node}? lab.address() lists them",
        )
        stats = msgspec.json.decode(shown, type=list[_LinkJson])[0].stats64
        return InterfaceCounters(
            rx_bytes=stats.rx.bytes,
            tx_bytes=stats.tx.bytes,
            rx_packets=stats.rx.packets,
            tx_packets=stats.tx.packets,
        )

    def open(self) -> Self:
        """Build every namespace, link, address, route and qdisc; on any failure, tear down."""
        if self._state != "new":
            raise QosfleetError("this Lab was already opened", "make a new Lab for a new run")
        _require_root()
        self._state = "open"
        try:
            self._build()
        except BaseException as exc:
            try:
                self.close()
            except QosfleetError as teardown:
                exc.add_note(f"teardown after the failed build also failed: {teardown}")
            raise
        return self

    def close(self) -> None:
        """Stop the started processes, empty and delete the namespaces, check none remain."""
        if self._state == "closed":
            return
        self._state = "closed"
        with _sigint_deferred():
            for process in self._processes:
                _stop(process)
            for tun, process in self._delay_lines.items():
                # Stopped above; its last words are its counters.
                out, _ = process.communicate()
                self.delay_line_reports[tun] = out.decode(errors="replace").strip()
            for netns in reversed(self._created):
                _empty_and_delete(netns)
            (OWNER_DIR / self.lab_id).unlink(missing_ok=True)
        remaining = sorted(set(self._created) & set(list_netns()))
        if remaining:
            raise QosfleetError(
                f"namespaces remain after teardown: {', '.join(remaining)}",
                "remove them with lab.netns.cleanup_stale() or ip netns delete NAME",
            )

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        build = asyncio.ensure_future(asyncio.to_thread(self.open))
        try:
            return await asyncio.shield(build)
        except asyncio.CancelledError:
            # A thread cannot be stopped: let the build finish, then take it all down again.
            with contextlib.suppress(Exception):
                await build
            await asyncio.to_thread(self.close)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.shield(asyncio.to_thread(self.close))

    def _require_open(self) -> None:
        if self._state != "open":
            raise QosfleetError(
                f"the lab is {self._state}, not open", "use it inside `with Lab(...) as lab:`"
            )

    def _build(self) -> None:
        OWNER_DIR.mkdir(parents=True, exist_ok=True)
        (OWNER_DIR / self.lab_id).write_text(f"{os.getpid()}\n")
        for node, netns in self._plan.netns.items():
            self._created.append(netns)  # first, so an interrupt right after add still cleans
            _command(["ip", "netns", "add", netns])
            sysctls = _SYSCTLS + (_ROUTER_SYSCTLS if node in self._plan.routers else ())
            sysctls += _TARGET_SYSCTLS if node == "target" else ()
            pairs = [part for pair in sysctls for part in pair]
            _command(["ip", "netns", "exec", netns, "sh", "-c", _SYSCTL_SCRIPT, "sh", *pairs])
        plan = self._plan
        for argv in [*plan.veths, *plan.interfaces, *plan.routes, *plan.qdiscs]:
            _command(argv)
        for tun, one_way_ms in plan.delay_lines:
            delay_line = [sys.executable, "-m", "lab.delayline", "--device", tun]
            self._delay_lines[tun] = self.popen(
                "core",
                [*delay_line, "--one-way-ms", f"{one_way_ms:g}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        deadline = time.monotonic() + _DELAY_LINE_START_S
        for tun, process in self._delay_lines.items():
            _wait_ready(tun, process, deadline)


def cleanup_stale(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Delete namespaces left by labs whose owning process is gone; returns their names.

    Labs of live processes (parallel test runs, a running demo) are left alone.
    """
    _require_root()
    lab_name = re.compile(rf"^({re.escape(prefix)}[0-9a-f]{{6}})-")
    removed = []
    for netns in list_netns():
        match = lab_name.match(netns)
        if match and not _owner_alive(match.group(1)):
            _empty_and_delete(netns)
            removed.append(netns)
    if OWNER_DIR.is_dir():
        for owner in OWNER_DIR.iterdir():
            if lab_name.match(f"{owner.name}-") and not _owner_alive(owner.name):
                owner.unlink(missing_ok=True)
    return removed


def _require_root() -> None:
    if os.geteuid() != 0:
        raise QosfleetError(NEEDS_ROOT, ROOT_HINT)
    missing = [tool for tool in ("ip", "tc", "sh", "ss") if shutil.which(tool) is None]
    if missing:
        raise ServiceError(
            f"the lab needs {', '.join(missing)}", "install iproute2: apt-get install iproute2"
        )


def _command(
    argv: Sequence[str],
    hint: str = "the kernel needs veth, tbf, htb and u32 support; the lab was torn down",
) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise QosfleetError(f"lab command failed: {' '.join(argv)}: {done.stderr.strip()}", hint)
    return done.stdout


def list_netns() -> list[str]:
    """Every network namespace `ip netns` knows, by name."""
    # Lines look like "qf3a9c1e-core (id: 2)"; the name never holds a space.
    listed = _command(["ip", "netns", "list"], "is iproute2's ip working?").splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def _wait_ready(tun: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Return once the delay line on tun has printed its ready line; ServiceError otherwise."""
    assert process.stdout is not None  # started with stdout=PIPE
    said = b""
    while not said.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            raise ServiceError(
                f"the delay line on {tun} did not attach within {_DELAY_LINE_START_S:g} s",
                "is the machine overloaded? run python -m lab.delayline --help to check it starts",
            )
        chunk = os.read(process.stdout.fileno(), 256)
        if not chunk:
            break
        said += chunk
    if said.decode(errors="replace").strip() != READY:
        _stop(process)
        _, stderr = process.communicate()
        detail = (stderr or said).decode(errors="replace").strip() or "no output"
        raise ServiceError(
            f"the delay line on {tun} failed to start (exit code {process.returncode}): {detail}",
            "it needs /dev/net/tun (modprobe tun) and root; the lab was torn down",
        )


def _owner_alive(lab_id: str) -> bool:
    try:
        pid = int((OWNER_DIR / lab_id).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False  # no owner file, a garbled one, or its process is gone
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL the leader; stragglers die with the namespace.

    Only a leader not yet reaped is signalled, so its PID cannot belong to anyone else.
    """
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _empty_and_delete(netns: str) -> None:
    """Kill whatever still runs in netns (a namespace with processes outlives its deletion)."""
    done = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
    )
    pids = [int(pid) for pid in done.stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + _STOP_GRACE_S
    while any(process_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)


def process_running(pid: int) -> bool:
    """Is pid alive and not a zombie?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until teardown is done; a second Ctrl-C must not leave namespaces behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
