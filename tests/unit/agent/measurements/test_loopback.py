"""Runners against a real qos-target on loopback: results, and failures that become errors."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestServer

from agent.engine import UNENROLLED_LINK, measure_link, target_for
from agent.envelope import build_result
from agent.measurements import http, iperf3, latency, speedtest_cli
from agent.measurements.base import Binding, SpeedSettings
from agent.measurements.kind import MeasureOptions
from collector.ingest import rate_is_consistent
from lab.services import free_port, venv_script
from target.iperf3 import Iperf3Server
from target.server import build_app

# Real qos-target, iperf3 and speedtest-cli processes on loopback: not the fast unit set.
pytestmark = pytest.mark.integration

QUICK = SpeedSettings(max_duration_s=2.0, budget_bytes=40_000_000, min_measure_s=0.5)


@pytest.fixture
async def target() -> AsyncIterator[str]:
    async with TestServer(build_app(), host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts: connects succeed (backlog), nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("direction", ["download", "upload"])
async def test_http_runner_moves_data_and_stops_at_its_budget(target: str, direction: str) -> None:
    outcome = await http.measure(direction, target, Binding(), QUICK)  # type: ignore[arg-type]
    assert outcome.errors == ()
    assert outcome.throughput is not None
    assert outcome.throughput.mbps > 100
    assert outcome.throughput.flows >= 2
    assert outcome.stop_reason in {"budget", "stable", "duration"}
    assert outcome.bytes_used >= outcome.throughput.bytes > 0
    assert rate_is_consistent(outcome.throughput)  # what collectors check (issue 14)
    assert outcome.cpu_peak_percent is not None


async def test_target_down_is_an_error_not_a_crash(closed_port: int) -> None:
    outcome = await http.measure("download", f"http://127.0.0.1:{closed_port}", Binding(), QUICK)
    assert outcome.throughput is None
    assert outcome.stop_reason == "error"
    assert [error.code for error in outcome.errors] == ["connect-failed"]


async def test_a_target_that_never_answers_times_out(silent_port: int) -> None:
    settings = SpeedSettings(stall_timeout_s=0.5, connect_timeout_s=0.5)
    outcome = await http.measure("download", f"http://127.0.0.1:{silent_port}", Binding(), settings)
    assert [error.code for error in outcome.errors] == ["timeout"]


async def test_iperf3_missing_is_an_error(
    target: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = await iperf3.measure("download", target, Binding(), QUICK)
    assert [error.code for error in outcome.errors] == ["tool-missing"]


@pytest.fixture
async def iperf3_server() -> AsyncIterator[tuple[Iperf3Server, int]]:
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed: apt-get install iperf3")
    port = free_port()
    server = Iperf3Server(port, bind="127.0.0.1")
    await server.start()
    try:
        await _wait_listening(port)
        yield server, port
    finally:
        await server.stop()
    assert server.process is not None
    assert server.process.returncode is not None


async def _wait_listening(port: int) -> None:
    async with asyncio.timeout(5):
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def test_iperf3_runner_and_a_restarted_server(
    iperf3_server: tuple[Iperf3Server, int],
) -> None:
    server, port = iperf3_server
    settings = SpeedSettings(max_duration_s=2.0, max_flows=2)
    outcome = await iperf3.measure("download", "http://127.0.0.1:1", Binding(), settings, port=port)
    assert outcome.errors == ()
    assert outcome.throughput is not None
    assert outcome.throughput.flows == 2
    assert rate_is_consistent(outcome.throughput)
    assert outcome.tool_version is not None
    assert outcome.tool_version.startswith("iperf 3")
    assert server.process is not None
    server.process.kill()
    await asyncio.sleep(0.1)
    await _wait_listening(port)
    assert server.starts == 2


async def test_iperf3_server_down_is_an_error(closed_port: int) -> None:
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed: apt-get install iperf3")
    outcome = await iperf3.measure(
        "upload", "http://127.0.0.1:1", Binding(), QUICK, port=closed_port
    )
    assert [error.code for error in outcome.errors] == ["connect-failed"]


@pytest.mark.parametrize("direction", ["download", "upload"])
async def test_speedtest_cli_runs_offline_against_qos_target(target: str, direction: str) -> None:
    settings = SpeedSettings(max_duration_s=1.0)
    outcome = await speedtest_cli.measure(direction, target, Binding(), settings)  # type: ignore[arg-type]
    assert outcome.errors == ()
    assert outcome.throughput is not None
    assert outcome.throughput.mbps > 10
    assert rate_is_consistent(outcome.throughput)
    assert outcome.tool_version == "2.1.3"


async def test_speedtest_cli_target_down(closed_port: int) -> None:
    outcome = await speedtest_cli.measure(
        "download", f"http://127.0.0.1:{closed_port}", Binding(), SpeedSettings(max_duration_s=1)
    )
    assert [error.code for error in outcome.errors] == ["connect-failed"]


@pytest.mark.parametrize("method", ["tcp-connect", "http-echo"])
async def test_latency_without_raw_sockets(target: str, method: latency.Method) -> None:
    outcome = await latency.measure(target, Binding(), stage="latency-idle", method=method, count=5)
    assert outcome.errors == ()
    assert outcome.stats is not None
    assert outcome.stats.count == 5
    assert outcome.stats.loss == 0
    assert outcome.stats.method == method


async def test_latency_to_a_closed_port_is_an_error(closed_port: int) -> None:
    outcome = await latency.measure(
        f"http://127.0.0.1:{closed_port}", Binding(), stage="latency-idle", method="tcp-connect",
        count=3, interval_s=0.01,
    )  # fmt: skip
    assert outcome.stats is None
    assert [error.code for error in outcome.errors] == ["no-answer"]


async def test_a_whole_check_reports_every_block(target: str) -> None:
    options = MeasureOptions(speed=QUICK, latency_method="tcp-connect")
    outcome = await measure_link(target, None, budget_bytes=80_000_000, options=options)
    result = build_result(
        None, link=UNENROLLED_LINK, target=target_for(target, None), measured=outcome
    )
    assert result.errors == ()
    measured = result.measurements
    assert measured.download is not None
    assert measured.upload is not None
    assert measured.latency is not None
    assert measured.latency.idle is not None
    assert measured.ipv6 is not None
    assert measured.download.stop_reason is not None
    assert result.provenance.bytes_used >= measured.download.bytes + measured.upload.bytes
    assert result.provenance.runner == "http"


def test_cli_exits_1_with_errors_in_the_envelope_when_the_target_is_down(
    closed_port: int,
) -> None:
    done = subprocess.run(
        [
            venv_script("qos-agent"), "check", "--target", f"http://127.0.0.1:{closed_port}",
            "--json", "--latency-method", "tcp-connect", "--tests", "download,upload,latency",
        ],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    envelope = json.loads(done.stdout)
    codes = {(error["stage"], error["code"]) for error in envelope["errors"]}
    assert ("download", "connect-failed") in codes
    assert ("upload", "connect-failed") in codes
    assert envelope["provenance"]["stop_reason"] == "error"


def test_cli_names_a_missing_interface(closed_port: int) -> None:
    done = subprocess.run(
        [
            venv_script("qos-agent"), "check", "--target", f"http://127.0.0.1:{closed_port}",
            "--interface", "nosuch0", "--json",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    (error,) = json.loads(done.stdout)["errors"]
    assert error["code"] == "interface-missing"
    assert "nosuch0" in error["message"]


def _agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("qos-agent"), *argv],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_cli_labels_the_link_for_its_qcvn_profile(closed_port: int) -> None:
    # On a ladder before enrollment: no config, so the technician says what the link is.
    target = ("check", "--target", f"http://127.0.0.1:{closed_port}", "--tests", "download")
    # Any case or alias of the canonical names (contract/data/names.toml).
    mobile = (*target, "--technology", "LTE", "--operator", "viettel")
    link = json.loads(_agent(*mobile, "--json").stdout)["link"]
    assert (link["technology"], link["access"], link["operator"]) == ("4g", "mobile", "Viettel")
    shown = _agent(*mobile).stdout
    assert "counts as an access failure" in shown  # judged against the 4G profile
    assert "no QCVN profile" not in shown
    fixed = _agent(*target, "--technology", "ftth", "--plan", "300/100", "--json")
    plan = json.loads(fixed.stdout)["link"]["plan"]
    assert plan == {"download_mbps": 300, "upload_mbps": 100}
    bad = _agent(*mobile, "--plan", "fast")
    assert bad.returncode == 2
    assert "'fast' is not DOWN/UP in Mb/s" in bad.stderr
    typo = _agent(*target, "--operator", "Vietel")
    assert typo.returncode == 2
    assert "did you mean Viettel" in typo.stderr
