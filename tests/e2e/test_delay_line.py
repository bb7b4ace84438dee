"""The lab's delay line: added round-trip time on IPv4 and IPv6, TCP through it, teardown."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.errors import ConfigError, ServiceError
from lab.netns import (
    MAX_RTT_MS,
    NEEDS_ROOT,
    IpVersion,
    Lab,
    LinkSpec,
    ProbeSpec,
    list_netns,
    process_running,
)
from tests.e2e.labtools import iperf_mbps, ping_passes

pytestmark = [pytest.mark.e2e]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT)

# TCP goodput through tbf is 0.956 x the shaped rate on these machines (DESIGN.md, measured).
GOODPUT = 0.956
IPERF_PORT = 5201
DELAYED = ProbeSpec(name="village-d", links=(LinkSpec(down_mbps=20, up_mbps=20, rtt_ms=40),))
UNDELAYED = ProbeSpec(name="village-a", links=(LinkSpec(down_mbps=20, up_mbps=20),))
BLACKHOLED = ProbeSpec(
    name="village-f",
    links=(LinkSpec(down_mbps=20, up_mbps=20, rtt_ms=40, pmtud_blackhole=True),),
)
BULK = ProbeSpec(name="village-g", links=(LinkSpec(down_mbps=20, up_mbps=20, rtt_ms=50),))
_PING_TIME_RE = re.compile(r"time=([0-9.]+) ms")


@pytest.fixture(scope="module")
def delayed_lab() -> Iterator[Lab]:
    for tool, package in (("iperf3", "iperf3"), ("ping", "iputils-ping")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: apt-get install {package}")
    with Lab((DELAYED, UNDELAYED, BLACKHOLED, BULK)) as lab:
        lab.popen("target", ["iperf3", "-s", "-p", str(IPERF_PORT)])
        lab.wait_listening("target", IPERF_PORT)
        yield lab


def _median_rtt_ms(lab: Lab, node: str, address: str) -> float:
    version = "-6" if ":" in address else "-4"
    done = lab.run(node, ["ping", version, "-n", "-c", "8", "-i", "0.05", address])
    times = [float(found) for found in _PING_TIME_RE.findall(done.stdout)]
    assert len(times) == 8, done.stdout
    return statistics.median(times)


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize(
    ("probe", "low_ms", "high_ms"),
    [("village-d", 40, 46), ("village-f", 40, 46), ("village-a", 0, 5)],
)
def test_ping_sees_the_rtt_its_link_adds(
    delayed_lab: Lab, probe: str, version: IpVersion, low_ms: float, high_ms: float
) -> None:
    median = _median_rtt_ms(delayed_lab, probe, delayed_lab.target_address(version))
    assert low_ms <= median <= high_ms


@needs_root
@pytest.mark.slow
def test_between_two_delayed_probes_both_delays_add(delayed_lab: Lab) -> None:
    median = _median_rtt_ms(delayed_lab, "village-d", delayed_lab.address("village-f", "eth0", 6))
    assert 80 <= median <= 88


@needs_root
@pytest.mark.slow
def test_a_delayed_blackhole_still_swallows_large_packets(delayed_lab: Lab) -> None:
    target = delayed_lab.target_address(6)
    # 1000 bytes fit the 1400-byte middle of the path; 1452 + 48 make a 1500-byte packet.
    assert ping_passes(delayed_lab, "village-f", target, "-s", "1000", "-M", "do")
    assert not ping_passes(delayed_lab, "village-f", target, "-s", "1452", "-M", "do")


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize(
    "options", [pytest.param((), id="upload"), pytest.param(("-R",), id="download")]
)
def test_tcp_goodput_through_a_delayed_link(delayed_lab: Lab, options: tuple[str, ...]) -> None:
    client = ["iperf3", "-c", delayed_lab.target_address(4), "-p", str(IPERF_PORT)]
    measured_mbps = iperf_mbps(delayed_lab, "village-g", [*client, "-P", "2", *options])
    assert measured_mbps == pytest.approx(GOODPUT * 20, rel=0.10)


def _delay_line_pids(lab: Lab) -> list[int]:
    listed = subprocess.run(
        ["ip", "netns", "pids", lab.netns("core")], capture_output=True, text=True, check=True
    )
    return [
        int(pid)
        for pid in listed.stdout.split()
        if b"lab.delayline" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _open_and_maybe_raise(lab: Lab, raised: type[BaseException] | None, seen: list[int]) -> None:
    with lab:
        seen.extend(_delay_line_pids(lab))
        if raised is not None:
            raise raised


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("raised", [None, RuntimeError, KeyboardInterrupt])
def test_teardown_stops_the_delay_lines(raised: type[BaseException] | None) -> None:
    lab = Lab((DELAYED, BLACKHOLED))
    seen: list[int] = []
    if raised is None:
        _open_and_maybe_raise(lab, raised, seen)
    else:
        with pytest.raises(raised):
            _open_and_maybe_raise(lab, raised, seen)

    assert len(seen) == 2
    assert not [pid for pid in seen if process_running(pid)]
    assert not [name for name in list_netns() if name.startswith(lab.lab_id)]
    # Each stopped cleanly (SIGTERM) and said what passed through it.
    assert set(lab.delay_line_reports) == {"d1", "d2"}
    assert all("dropped_queue_full=0" in report for report in lab.delay_line_reports.values())


@needs_root
@pytest.mark.slow
def test_a_delay_line_that_cannot_start_fails_the_build_and_tears_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "false")  # "false -m lab.delayline ..." exits 1
    lab = Lab((DELAYED,))
    started = time.monotonic()
    with pytest.raises(ServiceError, match="delay line on d1 failed to start"):
        lab.open()
    assert time.monotonic() - started < 5
    assert not [name for name in list_netns() if name.startswith(lab.lab_id)]


@pytest.mark.parametrize("rtt_ms", [-1.0, MAX_RTT_MS + 1, float("nan")])
def test_an_rtt_out_of_range_names_the_key(rtt_ms: float) -> None:
    with pytest.raises(ConfigError, match=r"link wwan0\.rtt_ms") as caught:
        LinkSpec(interface="wwan0", down_mbps=30, up_mbps=10, rtt_ms=rtt_ms)
    assert "rtt_ms = 40" in caught.value.hint


def test_the_delay_line_refuses_a_device_that_does_not_exist() -> None:
    # Checked before /dev/net/tun is opened, so this needs neither root nor a lab.
    done = subprocess.run(
        [sys.executable, "-m", "lab.delayline", "--device", "qfnosuch0", "--one-way-ms", "5"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode != 0
    assert "no device 'qfnosuch0'" in done.stderr
    assert "ip tuntap add" in done.stderr
