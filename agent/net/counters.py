"""The live rate of a link, from its interface's byte counters, for the technician's screen.

Every runner (http, iperf3, speedtest-cli, a plugin's tool) moves its bytes through the
interface, so the kernel's counters (/sys/class/net/IF/statistics) show each one's rate alike,
without a word from the runner: sampled every LIVE_INTERVAL_S while the check measures. It is what
the link carries, the probe's other traffic included: a live view, never the measured figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final, NamedTuple

from agent.net.netif import IF_INET6, ipv4_address, parse_if_inet6, read_proc

SYS_NET: Final = Path("/sys/class/net")
LIVE_INTERVAL_S: Final = 0.5
# A counter is a decimal u64, at most 20 digits and a newline: more is not a counter.
_MAX_COUNTER_TEXT: Final = 21


class Counters(NamedTuple):
    rx_bytes: int
    tx_bytes: int


class LiveRate(NamedTuple):
    """Mb/s received (download) and sent (upload) over the last interval."""

    down_mbps: float
    up_mbps: float


def read_counters(interface: str, root: Path = SYS_NET) -> Counters | None:
    """The interface's byte counters; None when it has none (gone, unplugged, not a name)."""
    if not interface or "/" in interface or interface.startswith("."):
        return None
    statistics = root / interface / "statistics"
    try:
        rx, tx = (_counter(statistics / name) for name in ("rx_bytes", "tx_bytes"))
    except (OSError, ValueError):
        return None
    return Counters(rx, tx)


def _counter(path: Path) -> int:
    with path.open("rb") as file:
        text = file.read(_MAX_COUNTER_TEXT + 1)
    if len(text) > _MAX_COUNTER_TEXT:
        raise ValueError(path)
    return int(text)


def rate_between(before: Counters, after: Counters, seconds: float) -> LiveRate | None:
    """The rate between two readings; None when the counters went back (a reset, a new device)."""
    received, sent = after.rx_bytes - before.rx_bytes, after.tx_bytes - before.tx_bytes
    if seconds <= 0 or received < 0 or sent < 0:
        return None
    return LiveRate(received * 8 / seconds / 1e6, sent * 8 / seconds / 1e6)


def interface_towards(host: str, root: Path = SYS_NET) -> str | None:
    """The interface the kernel routes `host` through (a test bound to no interface)."""
    try:
        family, _type, _proto, _name, address = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)[
            0
        ]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)  # UDP: no packet leaves, the kernel only picks the route
            local = ipaddress.ip_address(probe.getsockname()[0])
    except (OSError, ValueError, IndexError):
        return None
    if local.version == 6:  # noqa: PLR2004
        found = parse_if_inet6(read_proc(IF_INET6))
        return next((entry.interface for entry in found if entry.address == str(local)), None)
    names = sorted(path.name for path in root.iterdir()) if root.is_dir() else []
    return next((name for name in names if ipv4_address(name) == str(local)), None)


@contextlib.asynccontextmanager
async def live_rates(
    interface: str | None,
    show: Callable[[LiveRate], None],
    *,
    interval_s: float = LIVE_INTERVAL_S,
    root: Path = SYS_NET,
) -> AsyncIterator[None]:
    """Call `show` with the interface's rate every interval while the block runs."""
    if interface is None or read_counters(interface, root) is None:
        yield
        return
    task = asyncio.create_task(_sample(interface, show, interval_s, root), name="live-rate")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sample(
    interface: str, show: Callable[[LiveRate], None], interval_s: float, root: Path
) -> None:
    before, at = read_counters(interface, root), time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        after, now = read_counters(interface, root), time.monotonic()
        if before is not None and after is not None:
            rate = rate_between(before, after, now - at)
            if rate is not None:
                show(rate)
        before, at = after, now
