"""What the kernel knows of a TCP connection (Linux TCP_INFO): round-trip times and losses.

Only the fields a speed test uses are read. They sit at fixed offsets of `struct tcp_info`
(include/uapi/linux/tcp.h); fields the running kernel is too old to fill come back as None, so a
probe on an old kernel measures as before, without the evidence they give.
"""

from __future__ import annotations

import socket
import struct
from typing import Final, NamedTuple, Protocol

# (offset, format) of each field in struct tcp_info; a u32 unless said.
_SACKED: Final = (28, "I")  # sent segments the peer holds out of order (SACKed), now
_RTT: Final = (68, "I")  # smoothed RTT of the data this end sends, microseconds
_RCV_RTT: Final = (92, "I")  # the receiver's estimate of the RTT, microseconds (0: none yet)
_TOTAL_RETRANS: Final = (100, "I")
_MIN_RTT: Final = (148, "I")  # the least RTT seen (Linux >= 4.6), microseconds
_RCV_OOOPACK: Final = (224, "I")  # out-of-order packets received (Linux >= 5.4)
_SIZE: Final = 232
_NO_SAMPLE: Final = 0xFFFFFFFF  # min_rtt before any sample


class TcpInfo(NamedTuple):
    """One reading of a connection's state; times in seconds."""

    rtt_s: float | None  # of data sent (upload), from ACKs
    rcv_rtt_s: float | None  # of data received (download), from timestamps
    min_rtt_s: float | None
    total_retrans: int | None  # segments this end sent again
    sacked: int | None  # segments sent that the peer holds out of order, waiting for a hole
    rcv_ooopack: int | None  # segments that arrived out of order: a loss upstream of this end


class Socket(Protocol):
    """A TCP socket, or asyncio's wrapper of one (transport.get_extra_info("socket"))."""

    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...


def read(sock: Socket) -> TcpInfo | None:
    """The connection's TCP_INFO, or None where the platform has none (not Linux, closed)."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _SIZE)
    except OSError:
        return None
    return parse(raw)


def parse(raw: bytes) -> TcpInfo:
    """The fields of a struct tcp_info as the kernel returned it (shorter on older kernels)."""

    def field(spec: tuple[int, str]) -> int | None:
        offset, fmt = spec
        if len(raw) < offset + struct.calcsize(fmt):
            return None
        value: int = struct.unpack_from(f"={fmt}", raw, offset)[0]
        return value

    def seconds(spec: tuple[int, str]) -> float | None:
        value = field(spec)
        return None if value is None or value in {0, _NO_SAMPLE} else value / 1e6

    return TcpInfo(
        rtt_s=seconds(_RTT),
        rcv_rtt_s=seconds(_RCV_RTT),
        min_rtt_s=seconds(_MIN_RTT),
        total_retrans=field(_TOTAL_RETRANS),
        sacked=field(_SACKED),
        rcv_ooopack=field(_RCV_OOOPACK),
    )
