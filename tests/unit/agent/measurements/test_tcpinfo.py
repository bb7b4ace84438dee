"""Reading TCP_INFO: fixed offsets of struct tcp_info, shorter structs of older kernels."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from agent.net import tcpinfo

# A struct tcp_info as Linux 6.x returns it, with the fields tcpinfo reads set.
FULL = 232


def raw(size: int = FULL, **fields: int) -> bytes:
    offsets = {
        "sacked": 28,
        "rtt": 68,
        "rcv_rtt": 92,
        "total_retrans": 100,
        "min_rtt": 148,
        "ooo": 224,
    }
    buffer = bytearray(size)
    for name, value in fields.items():
        if offsets[name] + 4 <= size:
            struct.pack_into("=I", buffer, offsets[name], value)
    return bytes(buffer)


def test_fields_come_from_their_offsets_in_seconds() -> None:
    fields = {"rtt": 42_000, "rcv_rtt": 51_500, "total_retrans": 7, "min_rtt": 40_250}
    info = tcpinfo.parse(raw(**fields, ooo=13, sacked=3))
    assert info == tcpinfo.TcpInfo(
        rtt_s=0.042,
        rcv_rtt_s=0.0515,
        min_rtt_s=0.04025,
        total_retrans=7,
        sacked=3,
        rcv_ooopack=13,
    )


def test_no_sample_yet_is_none_not_zero() -> None:
    info = tcpinfo.parse(raw(min_rtt=0xFFFFFFFF))
    assert (info.rtt_s, info.rcv_rtt_s, info.min_rtt_s) == (None, None, None)
    assert info.total_retrans == 0


def test_an_older_kernels_shorter_struct_leaves_newer_fields_none() -> None:
    # Linux 4.6-5.3: min_rtt is there, rcv_ooopack is not.
    info = tcpinfo.parse(raw(size=160, rtt=1000, min_rtt=900, ooo=5))
    assert info.min_rtt_s == pytest.approx(0.0009)
    assert info.rcv_ooopack is None
    assert tcpinfo.parse(raw(size=104, rtt=1000)).min_rtt_s is None


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")
def test_a_real_loopback_connection_reports_its_rtt() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            for _ in range(20):
                client.sendall(b"x" * 1000)
                peer.recv(65536)
            info = tcpinfo.read(client)
            assert info is not None
            assert info.rtt_s is not None
            assert 0 < info.rtt_s < 0.1
            assert info.min_rtt_s is not None
            assert info.min_rtt_s <= info.rtt_s
    assert tcpinfo.read(client) is None  # closed: no reading, no exception
