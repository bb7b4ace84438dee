"""Pure parsers and rules of the runners, fed with outputs captured on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.measurements import iperf3, ipv6, latency
from agent.measurements.base import Binding
from agent.net import cpu, netif

FIXTURES = Path(__file__).parents[3] / "fixtures"
IPERF3 = FIXTURES / "iperf3"
PROC = FIXTURES / "proc"


def test_if_inet6_global_addresses_include_ula_and_skip_tentative_and_link_local() -> None:
    text = (PROC / "if_inet6.two-links").read_text()
    assert netif.global_v6_addresses(text, "wwan0") == ["fd00:7166:0:2::2"]
    assert netif.global_v6_addresses(text, None) == ["fd00:7166:0:1::2", "fd00:7166:0:2::2"]
    assert netif.global_v6_addresses(text, "eth9") == []


def test_default_routes_skip_reject_routes() -> None:
    assert netif.parse_v6_default_routes((PROC / "ipv6_route.host").read_text()) == ["eth0"]
    assert netif.parse_v6_default_routes((PROC / "ipv6_route.v4-only").read_text()) == []


def test_cpu_parsers() -> None:
    assert cpu.parse_process_ticks("42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 31 7 7 20") == 281
    busy, total = cpu.parse_machine_ticks("cpu  100 5 50 800 20 1 4 3 0 0\ncpu0 1 2 3 4\n")
    assert (busy, total) == (163, 983)
    assert cpu.parse_process_ticks((PROC / "self_stat.host").read_text()) >= 0
    assert cpu.parse_machine_ticks((PROC / "stat.host").read_text())[1] > 0


@pytest.mark.parametrize(
    ("process", "machine", "limited"),
    [(95.0, 10.0, True), (40.0, 96.0, True), (89.0, 94.0, False)],
)
def test_probe_limited_rule(process: float, machine: float, limited: bool) -> None:
    peak = cpu.CpuPeak(process_percent=process, machine_percent=machine)
    assert peak.probe_limited is limited
    assert peak.peak_percent == max(process, machine)


def test_iperf3_download_report() -> None:
    outcome = iperf3.parse_report((IPERF3 / "download-4-streams.json").read_bytes(), "download")
    assert outcome.errors == ()
    assert outcome.throughput is not None
    assert outcome.throughput.flows == 4
    assert outcome.throughput.warmup_s == 1
    assert outcome.throughput.duration_s == pytest.approx(2.0, abs=0.01)
    assert outcome.throughput.mbps == pytest.approx(
        outcome.throughput.bytes * 8 / outcome.throughput.duration_s / 1e6
    )
    assert outcome.tool_version == "iperf 3.12"
    assert outcome.bytes_used > outcome.throughput.bytes  # the omitted second is spent too


def test_iperf3_upload_report() -> None:
    outcome = iperf3.parse_report((IPERF3 / "upload-1-stream.json").read_bytes(), "upload")
    assert outcome.throughput is not None
    assert outcome.throughput.flows == 1


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("error-connection-refused.json", "connect-failed"),
        ("error-server-busy.json", "server-busy"),
    ],
)
def test_iperf3_errors_become_fields(fixture: str, code: str) -> None:
    outcome = iperf3.parse_report((IPERF3 / fixture).read_bytes(), "download")
    assert outcome.throughput is None
    assert outcome.stop_reason == "error"
    assert [error.code for error in outcome.errors] == [code]


def test_iperf3_garbage_is_a_tool_failure() -> None:
    outcome = iperf3.parse_report(b"iperf3: parameter error - bad -P", "upload")
    assert [error.code for error in outcome.errors] == ["tool-failed"]
    assert "parameter error" in outcome.errors[0].message


def test_iperf3_command_line_binds_device_and_source() -> None:
    binding = Binding(interface="wwan0", source_v4="198.18.2.2", source_v6="fd00::2")
    argv = iperf3.iperf3_argv(
        "iperf3", "198.18.0.2", 5201, "download", streams=4, seconds=4, binding=binding, version=4
    )
    assert argv[-5:] == ["-R", "--bind-dev", "wwan0", "-B", "198.18.2.2"]
    assert "-J" in argv
    assert argv[argv.index("--omit") + 1] == "1"


def test_latency_summary() -> None:
    stats = latency.summarize([10.0, None, 12.0, 11.0, 30.0], "tcp-connect")
    assert stats is not None
    assert stats.median_ms == 11.5
    assert stats.p95_ms == 30.0
    assert stats.loss == pytest.approx(0.2)
    assert stats.jitter_ms == pytest.approx((2 + 1 + 19) / 3)
    assert stats.count == 5
    assert latency.summarize([None, None], "icmp") is None


@pytest.mark.parametrize(
    ("checks", "status"),
    [
        ({"has_address": True, "has_route": True, "connect": "ok", "large": "ok"}, "works"),
        ({"has_address": False, "has_route": False, "connect": "not-tested"}, "no-v6"),
        ({"has_address": False, "has_route": False, "aaaa": "ok"}, "dns-only"),
        ({"has_address": True, "has_route": False, "connect": "failed"}, "broken-route"),
        ({"has_address": True, "has_route": True, "connect": "failed"}, "broken-route"),
        (
            {"has_address": True, "has_route": True, "connect": "ok", "large": "failed"},
            "pmtud-blackhole",
        ),
    ],
)
def test_ipv6_classification(checks: dict[str, object], status: str) -> None:
    assert (
        ipv6.classify(
            has_address=bool(checks["has_address"]),
            has_route=bool(checks["has_route"]),
            aaaa=checks.get("aaaa", "no-dns"),  # type: ignore[arg-type]
            connect=checks.get("connect", "not-tested"),  # type: ignore[arg-type]
            large_transfer=checks.get("large", "not-tested"),  # type: ignore[arg-type]
        )
        == status
    )
