"""Probes of a lab shared by the lab tests: ping, and iperf3's received rate."""

from __future__ import annotations

import msgspec

from lab.netns import Lab


class _Sum(msgspec.Struct):
    bits_per_second: float


class _End(msgspec.Struct):
    sum_received: _Sum


class _IperfReport(msgspec.Struct):
    end: _End


def iperf_mbps(lab: Lab, probe: str, client: list[str], seconds: int = 4) -> float:
    """Run `client` (iperf3 -c ... and its options) in probe; the Mb/s its receiver counted."""
    done = lab.run(probe, [*client, "-J", "-t", str(seconds)], timeout=30 + seconds)
    report = msgspec.json.decode(done.stdout, type=_IperfReport)
    return report.end.sum_received.bits_per_second / 1e6


def ping_passes(lab: Lab, node: str, address: str, *options: str) -> bool:
    """Does one ping from node to address (with ping's options) get its answer within 1 s?"""
    version = "-6" if ":" in address else "-4"
    done = lab.run(node, ["ping", version, "-c", "1", "-W", "1", *options, address], check=False)
    return done.returncode == 0
