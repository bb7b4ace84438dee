"""Every result reaches the store exactly once: broker down at start, broker killed mid-drain,
agent killed mid-write. Real mosquitto, qos-collector (signatures and enrollment required) and
VictoriaMetrics; the agent is a real process.

"Exactly once" is counted three ways: the agent's own durable count of results it spooled, the
samples of `qos_seq` in the store (one per stored result, its value the result's seq), and the
collector's accepted counter. Copies sent twice (a receipt lost with a broker) are harmless: the
collector recognises them, and the store would keep one sample per series and timestamp anyway.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lab.services import Endpoint, VictoriaMetrics, free_port, mosquitto, venv_script
from tests.integration.agent.conftest import (
    Agent,
    broker_and_collector,
    collector_counter,
    enforcing_collector,
    make_agent,
    retained,
    stop,
    stored_seqs,
    wait_until,
)
from tests.unit.agent.builders import FIXED, PROBE_ID, config_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STATUS_TOPIC = f"qos/v1/{PROBE_ID}/status"


def assert_each_result_stored_once(
    agent: Agent, store: VictoriaMetrics, collector: Endpoint
) -> int:
    report = agent.drain()
    # The store answers a write before the rows are searchable: give the last ones a moment.
    wait_until(
        lambda: len(stored_seqs(store)) >= report.spooled, timeout_s=10, what="the last rows"
    )
    seqs = stored_seqs(store)
    assert (report.depth, report.lost, report.rejected) == (0, 0, 0)
    assert report.delivered == report.spooled
    assert len(seqs) == len(set(seqs)) == report.spooled, "a result is missing or stored twice"
    assert collector_counter(collector, "qos_collector_results_accepted_total") == report.spooled
    return report.spooled


def test_broker_down_at_start(tmp_path: Path, store: VictoriaMetrics, target: Endpoint) -> None:
    """The real `qos-agent run` measures against qos-target while no broker exists yet."""
    port = free_port()
    loopback = FIXED | {"interface": "lo"}  # a test bound to its interface stays on loopback
    table = config_table(
        tmp_path / "state",
        broker_url=f"mqtt://127.0.0.1:{port}",
        target_url=target.url,
        links=(loopback,),
        schedule={
            "speed_mean_s": 0.6,
            "speed_floor_s": 0.3,
            "light_mean_s": 0.3,
            "light_floor_s": 0.1,
            "speed_duration_s": 0.3,
        },
    )
    agent = make_agent(tmp_path / "agent", table, synthetic=False)
    with agent.running() as process:
        wait_until(lambda: agent.spooled() >= 3, timeout_s=30, what="results spooled offline")
        daemon = agent.daemon()
        assert daemon is not None
        assert not daemon.broker_connected
        assert daemon.broker_error
        assert agent.spool().delivered == 0
        with (
            mosquitto(tmp_path / "mosquitto", port=port),
            enforcing_collector(tmp_path, f"mqtt://127.0.0.1:{port}", store.url) as collector,
        ):
            wait_until(lambda: agent.spool().delivered >= 3, timeout_s=30, what="the backlog sent")
            assert json.loads(retained(port, STATUS_TOPIC))["state"] == "online"
            assert json.loads(retained(port, f"qos/v1/{PROBE_ID}/meta"))["public_key"]
            status = _status(agent)
            assert status["daemon_running"]
            assert status["daemon"]["broker_connected"]
            recent = status["recent"]
            # Speed tests (the full check) and light ones (latency + IPv6, no download) both ran.
            assert any(r["download_mbps"] for r in recent)
            assert any(r["download_mbps"] is None and not r["errors"] for r in recent)
            stop(process)
            # A clean stop says "offline" itself (a clean disconnect fires no last will).
            assert json.loads(retained(port, STATUS_TOPIC))["state"] == "offline"
            assert assert_each_result_stored_once(agent, store, collector) >= 3


def _status(agent: Agent) -> dict[str, Any]:
    """`qos-agent status --json`, as a technician's script would read it."""
    answer = subprocess.run(
        [venv_script("qos-agent"), "status", "--config", str(agent.config_path), "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    status: dict[str, Any] = json.loads(answer.stdout)
    return status


def test_broker_killed_mid_drain_and_restarted(tmp_path: Path, store: VictoriaMetrics) -> None:
    """A backlog spooled offline starts to drain; the broker dies (SIGKILL) and comes back."""
    port = free_port()
    broker_url = f"mqtt://127.0.0.1:{port}"
    agent = make_agent(
        tmp_path / "agent", config_table(tmp_path / "state", broker_url=broker_url), synthetic=True
    )
    with agent.running() as process:
        wait_until(lambda: agent.spooled() >= 300, timeout_s=30, what="a backlog spooled offline")
        with broker_and_collector(tmp_path, port, store) as (broker, collector):
            wait_until(
                lambda: agent.spool().delivered >= 60, timeout_s=30, what="the drain under way"
            )
            broker.service.kill()
            in_the_middle = agent.spool()
            assert in_the_middle.depth > 100, "the drain ended before the broker died"
            with mosquitto(tmp_path / "mosquitto", port=port):
                wait_until(
                    lambda: agent.spool().delivered > in_the_middle.delivered + 100,
                    timeout_s=30,
                    what="the drain to resume",
                )
                stop(process)
                count = assert_each_result_stored_once(agent, store, collector)
    assert count > 300


def test_agent_killed_mid_spool_write_and_restarted(tmp_path: Path, store: VictoriaMetrics) -> None:
    """SIGKILL lands while the daemon spools ~100 results a second and drains them; restart."""
    port = free_port()
    table = config_table(tmp_path / "state", broker_url=f"mqtt://127.0.0.1:{port}")
    agent = make_agent(tmp_path / "agent", table, synthetic=True)
    rng = random.Random(11)
    with broker_and_collector(tmp_path, port, store) as (_, collector):
        for round_number in range(5):
            with agent.running(f"agent-{round_number}") as process:
                before = agent.spooled()
                wait_until(lambda: agent.spooled() > before + 5, timeout_s=20, what="results")  # noqa: B023
                time.sleep(rng.uniform(0.05, 0.4))
                process.kill()
                process.wait()
            # The broker saw the connection die: its last will says "offline".
            assert json.loads(retained(port, STATUS_TOPIC))["state"] == "offline"
        db = sqlite3.connect(agent.state_dir / "state.db")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        assert assert_each_result_stored_once(agent, store, collector) > 25
