"""A userspace delay line: holds every packet of a TUN device for a fixed time, then re-injects it.

The kernels here have no netem, so the lab (lab/netns.py) routes a delayed link's packets, both
ways, into a TUN device in the core namespace; this program reads them, holds each for the
one-way delay and writes it back, and the kernel routes it on. Run it inside the namespace that
holds the device::

    ip netns exec qf3a9c1e-core python -m lab.delayline --device d1 --one-way-ms 25

It prints ``ready`` once attached and its counters when stopped (SIGTERM or Ctrl-C).

One thread and one queue: a constant delay keeps arrival order, so the queue is a FIFO whose
head is always the next packet due. select() sleeps until a packet arrives or the head is due;
each wake-up reads the waiting packets and writes every due one. (Reader and writer threads would
need a wake-up per packet and GIL hand-offs, and most of the time is kernel time anyway.) The
queue holds at most QUEUE_LIMIT_BYTES; a packet beyond that is dropped and counted.

Cost and ceiling (2-core VM, kernel 6.18, measured through a lab with iperf3): the device offers
TSO and checksum offload (IFF_VNET_HDR), so TCP data crosses as GSO packets of up to 64 KiB with
their virtio-net header passed through untouched; 100 Mb/s to 1 Gb/s of TCP costs 25-35 % of one
core. Traffic the kernel cannot batch (UDP, 1400-byte datagrams) tops out near 60,000 packets/s
(about 650 Mb/s); beyond that the TUN's queue overflows. Two thirds of the cost is kernel time (a
write() runs the forwarding of the packet it re-injects), not Python.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time
from types import FrameType
from typing import Final, NoReturn

# <linux/if_tun.h>
TUNSETIFF: Final = 0x400454CA
TUNSETOFFLOAD: Final = 0x400454D0
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
IFF_VNET_HDR: Final = 0x4000
TUN_F_CSUM: Final = 0x01
TUN_F_TSO4: Final = 0x02
TUN_F_TSO6: Final = 0x04
TUN_F_TSO_ECN: Final = 0x08
MAX_ONE_WAY_MS: Final = 500.0
QUEUE_LIMIT_BYTES: Final = 64 * 1024 * 1024
# A virtio_net_hdr (10 bytes, opaque here) and a GSO packet of up to 64 KiB.
READ_SIZE: Final = 10 + 65_536
# Reads per wake-up before due packets get their turn, so a flood cannot starve the writer.
READ_BURST: Final = 64
READY: Final = "ready"


class _Stopped(Exception):  # noqa: N818 - a request to stop, not an error
    """SIGTERM or SIGINT arrived: it ends the loop and never reaches a user, so it is not a
    QosfleetError."""


class Counters:
    """What passed through the delay line, printed on exit; a GSO packet counts once."""

    def __init__(self) -> None:
        self.received_packets = 0
        self.received_bytes = 0
        self.sent_packets = 0
        self.sent_bytes = 0
        self.dropped_queue_full = 0
        self.write_errors = 0
        self.discarded_at_exit = 0
        self.peak_queue_bytes = 0

    def report(self) -> str:
        return " ".join(f"{name}={value}" for name, value in vars(self).items())


def attach(device: str) -> int:
    """Open the existing TUN device; it must exist, or TUNSETIFF would quietly create one."""
    try:
        socket.if_nametoindex(device)
    except OSError:
        raise SystemExit(
            f"delayline: no device {device!r} in this namespace; create it first "
            f"(ip tuntap add dev {device} mode tun)"
        ) from None
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), flags))
        # TCP segmentation and checksums stay with the kernel: a read is a whole GSO packet.
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
    except OSError as exc:
        os.close(fd)
        raise SystemExit(f"delayline: cannot attach to {device}: {exc}") from None
    return fd


def run(fd: int, one_way_ns: int, counters: Counters) -> None:
    """Hold every packet read from fd for one_way_ns, then write it back; until _Stopped."""
    queue: collections.deque[tuple[int, bytes]] = collections.deque()
    queued_bytes = 0
    watched = [fd]
    try:
        while True:
            now = time.monotonic_ns()
            while queue and queue[0][0] <= now:
                _, packet = queue.popleft()
                queued_bytes -= len(packet)
                try:
                    counters.sent_bytes += os.write(fd, packet)
                    counters.sent_packets += 1
                except OSError:
                    counters.write_errors += 1
            timeout = (queue[0][0] - now) / 1e9 if queue else None
            if not select.select(watched, [], [], timeout)[0]:
                continue
            due = time.monotonic_ns() + one_way_ns
            for _ in range(READ_BURST):
                try:
                    packet = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                counters.received_packets += 1
                counters.received_bytes += len(packet)
                if queued_bytes + len(packet) > QUEUE_LIMIT_BYTES:
                    counters.dropped_queue_full += 1
                    continue
                queue.append((due, packet))
                queued_bytes += len(packet)
            counters.peak_queue_bytes = max(counters.peak_queue_bytes, queued_bytes)
    finally:
        counters.discarded_at_exit = len(queue)


def _stop(signum: int, _frame: FrameType | None) -> NoReturn:
    raise _Stopped(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.delayline",
        description="Delay every packet through a TUN device by a fixed time (run as root).",
    )
    parser.add_argument("--device", required=True, help="an existing TUN device, e.g. d1")
    parser.add_argument(
        "--one-way-ms", type=float, required=True, help=f"0 to {MAX_ONE_WAY_MS:g} ms"
    )
    options = parser.parse_args(argv)
    if not 0 <= options.one_way_ms <= MAX_ONE_WAY_MS:
        parser.error(f"--one-way-ms {options.one_way_ms} is not from 0 to {MAX_ONE_WAY_MS:g}")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    fd = attach(options.device)
    counters = Counters()
    print(READY, flush=True)
    with contextlib.suppress(_Stopped):
        run(fd, round(options.one_way_ms * 1e6), counters)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)  # a second signal must not lose the counters
    os.close(fd)
    print(counters.report(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
