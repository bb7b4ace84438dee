"""The namespace lab: shaping, IPv6 on and off, a PMTUD blackhole, a two-link probe, teardown."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import msgspec
import pytest

from contract.errors import QosfleetError
from lab.netns import (
    CONGESTION_CONTROL,
    NEEDS_ROOT,
    IpVersion,
    Lab,
    LinkSpec,
    ProbeSpec,
    cleanup_stale,
    list_netns,
    process_running,
)
from tests.e2e.labtools import iperf_mbps, ping_passes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT),
]

# TCP goodput through tbf is 0.956 x the shaped rate on these machines (DESIGN.md, measured).
GOODPUT = 0.956
TOLERANCE = 0.05
IPERF_PORT = 5201

VILLAGES = (
    ProbeSpec(name="village-a", links=(LinkSpec(down_mbps=200, up_mbps=40),)),
    ProbeSpec(name="village-e", links=(LinkSpec(down_mbps=100, up_mbps=100, ipv6=False),)),
    ProbeSpec(
        name="village-f", links=(LinkSpec(down_mbps=100, up_mbps=100, pmtud_blackhole=True),)
    ),
    ProbeSpec(
        name="village-c",
        links=(
            LinkSpec(interface="eth0", down_mbps=200, up_mbps=200),
            LinkSpec(interface="wwan0", down_mbps=40, up_mbps=20),
        ),
    ),
)
ONE_VILLAGE = (ProbeSpec(name="village-a", links=(LinkSpec(down_mbps=10, up_mbps=10),)),)


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed: apt-get install {package}")


@pytest.fixture(scope="module")
def villages() -> Iterator[Lab]:
    _require("iperf3", "iperf3")
    _require("ping", "iputils-ping")
    with Lab(VILLAGES) as lab:
        lab.popen("target", ["iperf3", "-s", "-p", str(IPERF_PORT)])
        lab.wait_listening("target", IPERF_PORT)
        yield lab


def _iperf_mbps(lab: Lab, probe: str, version: IpVersion, *options: str) -> float:
    client = ["iperf3", "-c", lab.target_address(version), "-p", str(IPERF_PORT)]
    # No --omit: iperf3 3.12 can credit an upload receiver with bytes from the omitted second
    # (seen once: +12 % at 20 Mb/s); slow start is negligible at sub-millisecond RTT.
    return iperf_mbps(lab, probe, [*client, *options])


@pytest.mark.parametrize(
    ("options", "shaped_mbps"),
    [pytest.param((), 40, id="upload-40"), pytest.param(("-R",), 200, id="download-200")],
)
def test_shaping_holds_per_direction(
    villages: Lab, options: tuple[str, ...], shaped_mbps: float
) -> None:
    # Up to three tries: a shared VM's stall can cost one 10 s run 7 % (seen once in CI); a link
    # shaped wrong reads wrong every time.
    measured: list[float] = []
    for _ in range(3):
        measured.append(_iperf_mbps(villages, "village-a", 4, *options))
        if measured[-1] == pytest.approx(GOODPUT * shaped_mbps, rel=TOLERANCE):
            return
    pytest.fail(f"{shaped_mbps} Mb/s shaped, measured {measured} (goodput {GOODPUT})")


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_in_the_lab_uses_the_labs_congestion_control(villages: Lab, version: IpVersion) -> None:
    # Whatever the host's default (BBR on these machines): both ends of a connection to the
    # target, the probe's and the one the target accepts, use the lab's algorithm.
    client = ["iperf3", "-c", villages.target_address(version), "-p", str(IPERF_PORT)]
    running = villages.popen("village-a", [*client, "-t", "3"])
    port = f":{IPERF_PORT}"
    try:
        deadline = time.monotonic() + 5
        probe_side = target_side = ""
        while time.monotonic() < deadline and not (probe_side and target_side):
            time.sleep(0.3)
            probe_side = villages.run("village-a", ["ss", "-Htin", "dport", "=", port]).stdout
            target_side = villages.run("target", ["ss", "-Htin", "sport", "=", port]).stdout
        assert f" {CONGESTION_CONTROL} " in f" {probe_side} "
        assert f" {CONGESTION_CONTROL} " in f" {target_side} "
        assert " bbr " not in f" {probe_side} {target_side} "
    finally:
        running.wait(timeout=10)


def test_ipv6_works_on_a_dual_stack_link(villages: Lab) -> None:
    assert ping_passes(villages, "village-a", villages.target_address(6))


def test_ipv4_only_link_has_no_ipv6(villages: Lab) -> None:
    ula = villages.run(
        "village-e", ["ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global"]
    )
    assert msgspec.json.decode(ula.stdout) == []
    assert not villages.run("village-e", ["ip", "-6", "route", "show", "default"]).stdout.strip()
    assert "::1" in villages.run("village-e", ["ip", "-6", "addr", "show", "dev", "lo"]).stdout
    assert not ping_passes(villages, "village-e", villages.target_address(6))
    assert ping_passes(villages, "village-e", villages.target_address(4))


@pytest.mark.parametrize(("probe", "large_passes"), [("village-a", True), ("village-f", False)])
def test_pmtud_blackhole_swallows_only_large_packets(
    villages: Lab, probe: str, large_passes: bool
) -> None:
    target_v6, target_v4 = villages.target_address(6), villages.target_address(4)
    probe_v6 = villages.address(probe, "eth0", 6)
    # 1000 bytes fit the 1400-byte middle; 1452 + 48 and 1472 + 28 make 1500-byte packets.
    assert ping_passes(villages, probe, target_v6, "-s", "1000", "-M", "do")
    assert ping_passes(villages, probe, target_v6, "-s", "1452", "-M", "do") is large_passes
    assert ping_passes(villages, probe, target_v4, "-s", "1472", "-M", "do") is large_passes
    assert ping_passes(villages, "target", probe_v6, "-s", "1452", "-M", "do") is large_passes


@pytest.mark.parametrize(
    ("version", "bind", "options", "shaped_mbps"),
    [
        pytest.param(6, "address", (), 20, id="upload-bound-to-wwan0-address-v6"),
        pytest.param(4, "device", ("-R",), 40, id="download-bound-to-wwan0-device-v4"),
    ],
)
def test_traffic_bound_to_wwan0_never_uses_eth0(
    villages: Lab, version: IpVersion, bind: str, options: tuple[str, ...], shaped_mbps: float
) -> None:
    if bind == "address":
        binding = ("-B", villages.address("village-c", "wwan0", version))
    else:
        binding = ("--bind-dev", "wwan0")
    eth0_before = villages.counters("village-c", "eth0")
    wwan0_before = villages.counters("village-c", "wwan0")
    measured = _iperf_mbps(villages, "village-c", version, *binding, *options)
    eth0_after = villages.counters("village-c", "eth0")
    wwan0_after = villages.counters("village-c", "wwan0")

    assert measured == pytest.approx(GOODPUT * shaped_mbps, rel=TOLERANCE)
    eth0_bytes = (eth0_after.rx_bytes - eth0_before.rx_bytes) + (
        eth0_after.tx_bytes - eth0_before.tx_bytes
    )
    wwan0_bytes = (wwan0_after.rx_bytes - wwan0_before.rx_bytes) + (
        wwan0_after.tx_bytes - wwan0_before.tx_bytes
    )
    assert eth0_bytes < 10_000  # neighbour discovery at most
    assert wwan0_bytes > 3 * shaped_mbps * 1e6 / 8  # at least the 3 measured seconds


def _start_and_maybe_raise(lab: Lab, raised: type[BaseException] | None, seen: list[int]) -> None:
    with lab:
        lab.popen("target", ["sleep", "600"])
        # A child in the same process group, and one that leaves it with setsid.
        lab.popen("village-a", ["sh", "-c", "sleep 600 & setsid sleep 600 & wait"])
        deadline = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
            seen[:] = [
                int(pid)
                for node in ("target", "village-a")
                for pid in subprocess.run(
                    ["ip", "netns", "pids", lab.netns(node)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
            ]
        if raised is not None:
            raise raised


@pytest.mark.parametrize("raised", [None, RuntimeError, KeyboardInterrupt])
def test_teardown_leaves_no_namespace_and_no_process(raised: type[BaseException] | None) -> None:
    lab = Lab(ONE_VILLAGE)
    seen: list[int] = []
    if raised is None:
        _start_and_maybe_raise(lab, raised, seen)
    else:
        with pytest.raises(raised):
            _start_and_maybe_raise(lab, raised, seen)

    assert len(seen) == 4  # sleep in target; sh, sleep and the setsid sleep in village-a
    assert not [pid for pid in seen if process_running(pid)]
    assert not [name for name in list_netns() if name.startswith(lab.lab_id)]
    with pytest.raises(QosfleetError, match="not open"):
        lab.run("target", ["true"])


def test_cleanup_stale_removes_leftovers_and_spares_live_labs() -> None:
    # A prefix of its own, so this test never touches another run's labs.
    stale = f"qft{secrets.token_hex(3)}-village-x"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    sleeper = subprocess.Popen(
        ["ip", "netns", "exec", stale, "sleep", "600"], start_new_session=True
    )
    try:
        with Lab(ONE_VILLAGE, prefix="qft") as live:
            time.sleep(0.1)  # let sleeper enter the namespace
            assert cleanup_stale(prefix="qft") == [stale]
            assert set(live.namespaces.values()) <= set(list_netns())
        assert sleeper.wait(timeout=5) != 0
    finally:
        sleeper.kill()
        subprocess.run(["ip", "netns", "delete", stale], capture_output=True, check=False)
    assert stale not in list_netns()


def test_without_root_the_lab_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(QosfleetError, match="needs root") as caught:
        Lab(ONE_VILLAGE).open()
    assert "sudo" in str(caught.value)
    assert "not e2e" in str(caught.value)
