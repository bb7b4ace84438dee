"""The agent as a real process against real mosquitto, collector and VictoriaMetrics."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.commands.enroll import render_toml
from agent.keys import create_key
from agent.spool import SpoolReport, spool_report
from agent.state import DaemonState, open_state_db, read_daemon_state
from contract.errors import ConfigError
from lab.services import (
    Endpoint,
    Mosquitto,
    VictoriaMetrics,
    mosquitto,
    qos_collector,
    venv_script,
)
from tests.unit.agent.builders import PROBE_ID

FAST_AGENT = Path(__file__).with_name("fast_agent.py")


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop: the daemon says "offline"), SIGKILL if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Agent:
    """An agent's config and state on disk; `running()` starts its daemon as a process."""

    workdir: Path
    table: dict[str, Any]
    synthetic: bool

    @property
    def config_path(self) -> Path:
        return self.workdir / "agent.toml"

    @property
    def state_dir(self) -> Path:
        return Path(self.table["state_dir"])

    def write(self, **tables: Any) -> None:
        """Write the config, with `tables` changed from now on."""
        self.table = self.table | tables
        self.config_path.write_text(render_toml(self.table), encoding="utf-8")

    @contextmanager
    def running(self, name: str = "agent") -> Iterator[subprocess.Popen[bytes]]:
        if self.synthetic:
            argv = [sys.executable, str(FAST_AGENT), str(self.config_path)]
        else:
            argv = [venv_script("qos-agent"), "run", "--config", str(self.config_path)]
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)

    def spool(self) -> SpoolReport:
        db = open_state_db(self.state_dir, read_only=True)
        try:
            return spool_report(db)
        finally:
            db.close()

    def daemon(self) -> DaemonState | None:
        db = open_state_db(self.state_dir, read_only=True)
        try:
            return read_daemon_state(db)
        finally:
            db.close()

    def spooled(self) -> int:
        """Results spooled so far (0 while the daemon has not made its database yet)."""
        try:
            return self.spool().spooled
        except (ConfigError, sqlite3.OperationalError):
            return 0

    def drain(self, timeout_s: float = 30.0) -> SpoolReport:
        """Run the daemon with no tests due until its spool is empty: every result is out."""
        idle = self.table | {"schedule": {"speed_mean_s": 1e6, "light_mean_s": 1e6}}
        self.config_path.write_text(render_toml(idle), encoding="utf-8")
        with self.running("drain"):
            wait_until(lambda: self.spool().depth == 0, timeout_s=timeout_s, what="an empty spool")
        self.write()
        return self.spool()


def make_agent(workdir: Path, table: dict[str, Any], *, synthetic: bool) -> Agent:
    workdir.mkdir(parents=True, exist_ok=True)
    agent = Agent(workdir, table, synthetic)
    create_key(agent.state_dir / "probe.key")
    agent.write()
    return agent


@contextmanager
def enforcing_collector(workdir: Path, broker_url: str, store_url: str) -> Iterator[Endpoint]:
    """A collector with the production defaults: signed results of enrolled probes only."""
    with qos_collector(workdir, broker_url=broker_url, store_url=store_url, extra_args=()) as c:
        yield c


@contextmanager
def broker_and_collector(
    workdir: Path, port: int, store: VictoriaMetrics
) -> Iterator[tuple[Mosquitto, Endpoint]]:
    """mosquitto on `port` (persistence in workdir/mosquitto) and an enforcing collector."""
    with (
        mosquitto(workdir / "mosquitto", port=port) as broker,
        enforcing_collector(workdir, broker.url, store.url) as collector,
    ):
        yield broker, collector


def stored_seqs(store: VictoriaMetrics, probe_id: str = PROBE_ID) -> list[int]:
    """Every stored sample of qos_seq for the probe (one per stored result; seq is the value)."""
    store.flush()
    seqs: list[int] = []
    for series in store.export(f'qos_seq{{probe="{probe_id}"}}'):
        seqs += [int(value) for value in series["values"]]
    return seqs


def collector_counter(collector: Endpoint, name: str, **labels: str) -> float:
    """A counter from the collector's /metrics (0 when absent)."""
    with urllib.request.urlopen(collector.url, timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? (\S+)$"
        if wanted
        else (rf"^{re.escape(name)} (\S+)$")
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def retained(broker_port: int, topic: str) -> str:
    """The retained message on `topic`, read with mosquitto_sub."""
    answer = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker_port), "-t", topic, "-C", "1",
         "-W", "5", "--retained-only"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    return answer.stdout.strip()
