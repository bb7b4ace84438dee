"""Interfaces, their addresses and routes, and sockets bound to one of them.

Reading /proc (pure parsers over its text) keeps the probe free of psutil and of `ip` output
formats. Binding uses SO_BINDTODEVICE plus the interface's own source address: the device option
alone lets the kernel pick a source address from another link, the address alone lets a
multi-homed probe route by its main table.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path
from typing import Final

import msgspec

from agent.measurements.base import Binding
from contract.errors import QosfleetError

SO_BINDTODEVICE: Final = getattr(socket, "SO_BINDTODEVICE", 25)  # Linux's value
SIOCGIFADDR: Final = 0x8915
IF_INET6: Final = Path("/proc/net/if_inet6")
IPV6_ROUTE: Final = Path("/proc/net/ipv6_route")
# /proc/net/if_inet6 scope field: 0x00 is global. ULA (fd00::/8) is global-scope to the kernel
# too, which is what the lab relies on: its "global" IPv6 addresses are ULA.
SCOPE_GLOBAL: Final = 0x00
# Address flags that make an address unfit as a source: tentative (DAD running), deprecated, failed.
UNUSABLE_FLAGS: Final = 0x40 | 0x20 | 0x08
RTF_REJECT: Final = 0x0200


class InterfaceAddress(msgspec.Struct, frozen=True, kw_only=True):
    interface: str
    address: str
    prefix_len: int
    scope: int
    flags: int


class BindError(QosfleetError):
    """The interface a test must use does not exist, has no address, or cannot be bound."""


def parse_if_inet6(text: str) -> list[InterfaceAddress]:
    """/proc/net/if_inet6: address, ifindex, prefix length, scope, flags, name (hex fields)."""
    addresses = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6:  # noqa: PLR2004 - the file's fixed layout
            continue
        raw, _index, prefix, scope, flags, name = fields
        addresses.append(
            InterfaceAddress(
                interface=name,
                address=str(ipaddress.IPv6Address(bytes.fromhex(raw))),
                prefix_len=int(prefix, 16),
                scope=int(scope, 16),
                flags=int(flags, 16),
            )
        )
    return addresses


def global_v6_addresses(text: str, interface: str | None) -> list[str]:
    """Usable global-scope (ULA included) IPv6 addresses, of one interface or of any but lo."""
    return [
        entry.address
        for entry in parse_if_inet6(text)
        if entry.scope == SCOPE_GLOBAL
        and not entry.flags & UNUSABLE_FLAGS
        and entry.interface != "lo"
        and (interface is None or entry.interface == interface)
    ]


def parse_v6_default_routes(text: str) -> list[str]:
    """Interfaces holding a usable IPv6 default route (::/0, not a reject route) in ipv6_route."""
    devices = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 10:  # noqa: PLR2004 - the file's fixed layout
            continue
        destination, prefix, flags, device = fields[0], fields[1], fields[8], fields[9]
        if (
            int(destination, 16) == 0
            and int(prefix, 16) == 0
            and not int(flags, 16) & RTF_REJECT
            and device != "lo"
        ):
            devices.append(device)
    return devices


def ipv4_address(interface: str) -> str | None:
    """The primary IPv4 address of interface (SIOCGIFADDR), None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", interface.encode()[:15])
        try:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])  # ifreq: 16-byte name, then sockaddr_in


def resolve_binding(interface: str | None) -> Binding:
    """The binding for a test on interface (None: the kernel's choice, nothing bound)."""
    if interface is None:
        return Binding()
    try:
        socket.if_nametoindex(interface)
    except OSError:
        known = ", ".join(name for _index, name in socket.if_nameindex())
        raise BindError(
            f"interface {interface!r} does not exist on this probe",
            f"interfaces here: {known}",
        ) from None
    v6 = global_v6_addresses(read_proc(IF_INET6), interface)
    return Binding(
        interface=interface, source_v4=ipv4_address(interface), source_v6=next(iter(v6), None)
    )


def bound_socket(
    family: socket.AddressFamily,
    binding: Binding,
    kind: socket.SocketKind = socket.SOCK_STREAM,
    proto: int = 0,
) -> socket.socket:
    """A non-blocking socket of family bound to binding's device and source address."""
    version = 6 if family == socket.AF_INET6 else 4
    source = binding.source_for(version)
    if binding.interface is not None and source is None:
        raise BindError(
            f"interface {binding.interface} has no IPv{version} address",
            "check the link is up and configured (ip addr show)",
        )
    sock = socket.socket(family, kind, proto)
    try:
        if binding.interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, binding.interface.encode())
        if source is not None:
            sock.bind((source, 0))
        sock.setblocking(False)  # noqa: FBT003 - socket API
    except OSError as exc:
        sock.close()
        raise BindError(
            f"cannot bind to {binding.interface} ({source}): {exc.strerror}",
            "binding to a device needs root or CAP_NET_RAW",
        ) from exc
    return sock


def read_proc(path: Path) -> str:
    """A /proc file's text; empty when the kernel lacks it (no IPv6: no addresses, no routes)."""
    try:
        return path.read_text()
    except OSError:
        return ""
