"""`qos-agent status` reports a broker connection only for a daemon that is running."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from agent.budget import Budget
from agent.commands.status import gather, show
from agent.config import AgentConfig
from agent.spool import Spool
from agent.state import DaemonState, open_state_db, record_daemon_state
from tests.unit.agent.builders import config_table, write_config

BROKER = "mqtts://mqtt.example.vn:8883"


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    return write_config(tmp_path / "agent.toml", config_table(tmp_path / "state"))


def a_dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def record(config: AgentConfig, pid: int, now: datetime) -> None:
    db = open_state_db(Path(config.state_dir))
    try:
        # The tables the daemon makes at its start.
        Spool(db, max_results=10, max_bytes=1_000_000)
        Budget(db, caps={}, first_estimates={})
        record_daemon_state(
            db,
            DaemonState(
                pid=pid,
                started_at=now - timedelta(minutes=10),
                updated_at=now,
                broker_url=BROKER,
                broker_connected=True,
                broker_since=now - timedelta(seconds=95),
            ),
        )
    finally:
        db.close()


def screen(config: AgentConfig, now: datetime) -> str:
    console = Console(record=True, width=200)
    show(console, gather(config, now))
    return console.export_text()


def test_a_stopped_daemons_last_connection_is_not_reported_as_live(config: AgentConfig) -> None:
    now = datetime.now(UTC)
    record(config, a_dead_pid(), now)
    report = gather(config, now)
    assert not report.daemon_running
    assert not report.broker_connected
    text = screen(config, now)
    assert "not running" in text
    assert f"not connected to {BROKER}: the daemon is not running" in text
    assert "since 95 seconds ago" not in text


def test_a_running_daemons_connection_is_reported(config: AgentConfig) -> None:
    now = datetime.now(UTC)
    record(config, os.getpid(), now)
    report = gather(config, now)
    assert report.daemon_running
    assert report.broker_connected
    assert f"connected to {BROKER} since 95 seconds ago" in screen(config, now)
