"""`qos-lab stack` as a real process: every service answers, and a signal stops them all.

The stack runs as `python -m lab.stack` (what `qos-lab stack` calls) with a 1 s scrape, so the
collector's own metrics reach the store through vmagent within the test. After SIGINT or SIGTERM
the launcher must exit 0 and leave none of the processes it started behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lab.services import http_ok, tcp_answers
from lab.stack import STATE_FILE

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SCRAPE_TIMEOUT_S = 15.0
SCRAPED = {"qos-collector", "victoria-metrics", "vmagent", "vmalert", "alertmanager"}
EXPECTED_SERVICES = {
    "mosquitto",
    "victoria-metrics",
    "alertmanager",
    "qos-collector",
    "vmagent",
    "vmalert",
}


def wait_for_state(workdir: Path, launcher: subprocess.Popen[str]) -> dict[str, Any]:
    """The launcher writes its state file once every service is ready."""
    deadline = time.monotonic() + START_TIMEOUT_S
    state_file = workdir / STATE_FILE
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            output = launcher.stdout.read() if launcher.stdout else ""
            pytest.fail(f"the stack exited at start ({launcher.returncode}): {output}")
        if state_file.exists():
            state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
            return state
        time.sleep(0.2)
    pytest.fail(f"the stack was not up within {START_TIMEOUT_S:g} s")


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # own loopback URL
        text: str = response.read().decode()
    return text


def scraped_into_store(store_url: str) -> bool:
    """vmagent has scraped every service with metrics (deploy/vmagent.yml's jobs but Grafana,
    which is not packaged here) and written them to VictoriaMetrics, the collector's too."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    collector = urllib.parse.urlencode({"query": "qos_collector_broker_connected"})
    up = urllib.parse.urlencode({"query": "up == 1"})
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{store_url}/internal/force_flush", timeout=5):
            pass
        answer = json.loads(get_text(f"{store_url}/api/v1/query?{collector}"))
        jobs = json.loads(get_text(f"{store_url}/api/v1/query?{up}"))["data"]["result"]
        if answer["data"]["result"] and {series["metric"]["job"] for series in jobs} == SCRAPED:
            return True
        time.sleep(0.5)
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited, only its parent has not reaped it.
    try:
        status = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return False
    return status[0] != "Z"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stack_answers_and_stops_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    workdir = tmp_path / "stack"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "lab.stack", "--workdir", str(workdir), "--scrape-interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: dict[str, int] = {}
    try:
        state = wait_for_state(workdir, launcher)
        pids = state["pids"]
        urls = state["urls"]
        assert set(pids) == EXPECTED_SERVICES

        broker = urllib.parse.urlsplit(urls["broker"])
        assert broker.hostname == "127.0.0.1"
        assert broker.port is not None
        assert tcp_answers(broker.hostname, broker.port)
        assert http_ok(f"{urls['store']}/health")
        assert http_ok(f"{urls['vmagent']}/health")
        assert http_ok(f"{urls['vmalert']}/health")
        assert http_ok(f"{urls['alertmanager']}/-/ready")
        assert "qos_collector_broker_connected 1.0" in get_text(urls["collector_metrics"])
        assert http_ok(urls["collector_api"])
        # vmalert loaded the rule files the compose stack mounts.
        groups = json.loads(get_text(f"{urls['vmalert']}/api/v1/rules"))["data"]["groups"]
        assert {group["name"] for group in groups} >= {"qosfleet-compliance", "qosfleet-stack"}
        assert scraped_into_store(urls["store"]), "vmagent did not scrape every service"

        launcher.send_signal(signum)
        output, _ = launcher.communicate(timeout=STOP_TIMEOUT_S)
        assert launcher.returncode == 0, output
        assert "nothing left running" in output
        assert [name for name, pid in pids.items() if alive(pid)] == []
    finally:
        if launcher.poll() is None:
            launcher.terminate()
            launcher.wait(STOP_TIMEOUT_S)
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
