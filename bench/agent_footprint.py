"""The agent daemon's footprint: RSS and CPU while idle, and at their peak during tests.

    .venv/bin/python bench/agent_footprint.py [--idle-s 60] [--tests 3] [--workdir DIR]

Starts mosquitto, VictoriaMetrics, an enforcing qos-collector and qos-target on loopback, enrolls
a probe in a temporary directory and runs the real `qos-agent run`:
1. idle: connected to the broker, no test due; RSS and CPU of the daemon over --idle-s;
2. tests: speed tests (the full check: latency, download, upload, IPv6) against qos-target on
   the loopback interface, each in its measurement child; the daemon and the child are sampled
   every 0.1 s. Loopback has no link limit, so a test is CPU-bound: its CPU is an upper bound.
Goals (issue 6): idle RSS <= 40 MB, idle CPU <= 1 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.commands.enroll import render_toml
from agent.keys import create_key
from agent.spool import spool_report
from agent.state import open_state_db
from contract.errors import ConfigError
from lab.services import (
    mosquitto,
    qos_collector,
    qos_target,
    venv_script,
    victoria_metrics,
)

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024
SAMPLE_S = 0.1
# CPU is read over windows this long: one tick is 10 ms, so shorter windows are too coarse.
CPU_WINDOW_S = 0.5


def rss_mib(pid: int) -> float | None:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * PAGE_KIB / 1024


def private_mib(pid: int) -> float:
    """Memory only this process holds (USS): RSS less the pages of shared libraries."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    fields = {line.split(":")[0]: line.split()[1] for line in rollup[1:]}
    return (int(fields["Private_Clean"]) + int(fields["Private_Dirty"])) / 1024


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


@dataclass
class Samples:
    daemon_rss: list[float] = field(default_factory=list)
    child_rss: list[float] = field(default_factory=list)
    total_rss: list[float] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)

    def extend(self, more: Samples) -> None:
        self.daemon_rss += more.daemon_rss
        self.child_rss += more.child_rss
        self.total_rss += more.total_rss
        self.cpu_percent += more.cpu_percent


def sample(pid: int, seconds: float) -> Samples:
    """RSS every SAMPLE_S; CPU (daemon + children, % of one core) per CPU_WINDOW_S."""
    samples = Samples()
    ticks_seen: dict[int, int] = {}
    window_start, window_ticks = time.monotonic(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = [pid, *children(pid)]
        daemon = rss_mib(pid) or 0.0
        child = sum(rss_mib(p) or 0.0 for p in pids[1:])
        samples.daemon_rss.append(daemon)
        samples.total_rss.append(daemon + child)
        if child:
            samples.child_rss.append(child)
        for process in pids:
            ticks = cpu_ticks(process)
            if ticks is None:
                continue
            window_ticks += ticks - ticks_seen.get(process, ticks)
            ticks_seen[process] = ticks
        now = time.monotonic()
        if now - window_start >= CPU_WINDOW_S:
            samples.cpu_percent.append(100 * window_ticks / TICKS_PER_S / (now - window_start))
            window_start, window_ticks = now, 0
        time.sleep(SAMPLE_S)
    return samples


def agent_table(root: Path, broker_url: str, target_url: str, **tables: Any) -> dict[str, Any]:
    return {
        "probe_id": "vn-11-ban-bench",
        "state_dir": str(root / "state"),
        "location": {
            "province_code": "11",
            "commune_code": "03211",
            "village": "Bản Bench",
            "lat": 21.39,
            "lon": 103.02,
        },
        "links": [{"interface": "lo", "access": "fixed", "technology": "ftth", "operator": "VNPT"}],
        "targets": [{"id": "bench", "url": target_url}],
        "broker": {"url": broker_url},
    } | tables


def run_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [venv_script("qos-agent"), "run", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def delivered(state_dir: Path) -> int:
    try:
        db = open_state_db(state_dir, read_only=True)
    except ConfigError:
        return 0  # the daemon has not made its database yet
    try:
        return spool_report(db).delivered
    except sqlite3.OperationalError:
        return 0  # ... nor its tables
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--tests", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep configs and logs here")
    args = parser.parse_args()
    with ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        broker = stack.enter_context(mosquitto(root / "mosquitto"))
        store = stack.enter_context(victoria_metrics(root / "victoria-metrics"))
        target = stack.enter_context(qos_target(root / "target"))
        stack.enter_context(
            qos_collector(root, broker_url=broker.url, store_url=store.url, extra_args=())
        )
        create_key(root / "state" / "probe.key")
        config = root / "agent.toml"

        idle = {"speed_mean_s": 1e6, "light_mean_s": 1e6}
        config.write_text(render_toml(agent_table(root, broker.url, target.url, schedule=idle)))
        daemon = run_agent(config, root / "agent-idle.log")
        try:
            time.sleep(5)  # connected, enrolled, settled
            idle_samples = sample(daemon.pid, args.idle_s)
            idle_private = private_mib(daemon.pid)
        finally:
            stop(daemon)

        tests = {"speed_mean_s": 3.0, "speed_floor_s": 2.0, "light_mean_s": 1e6}
        config.write_text(render_toml(agent_table(root, broker.url, target.url, schedule=tests)))
        before = delivered(root / "state")
        daemon = run_agent(config, root / "agent-tests.log")
        busy = Samples()
        try:
            started = time.monotonic()
            while delivered(root / "state") < before + args.tests:
                if time.monotonic() - started > 60 * args.tests:
                    raise SystemExit("the tests did not complete: see agent-tests.log")
                busy.extend(sample(daemon.pid, 1.0))
            after = sample(daemon.pid, 3.0)
        finally:
            stop(daemon)
    report(args, idle_samples, idle_private, busy, after)


def report(
    args: argparse.Namespace, idle: Samples, idle_private: float, busy: Samples, after: Samples
) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    print(f"{'phase':<36}{'RSS MiB':>10}{'CPU %':>10}")
    print(f"{f'idle, median over {args.idle_s:g} s':<36}"
          f"{statistics.median(idle.daemon_rss):>10.1f}"
          f"{statistics.fmean(idle.cpu_percent):>10.2f}")  # fmt: skip
    print(f"{'idle, max':<36}{max(idle.daemon_rss):>10.1f}{max(idle.cpu_percent):>10.1f}")
    print(f"{'idle, private to the daemon (USS)':<36}{idle_private:>10.1f}")
    print(f"{f'{args.tests} tests: daemon peak':<36}{max(busy.daemon_rss):>10.1f}")
    print(f"{'tests: measurement child peak':<36}{max(busy.child_rss, default=0):>10.1f}")
    print(f"{'tests: daemon + child peak':<36}{max(busy.total_rss):>10.1f}"
          f"{max(busy.cpu_percent):>10.1f}")  # fmt: skip
    print(f"{'idle after the tests':<36}{statistics.median(after.daemon_rss):>10.1f}")


if __name__ == "__main__":
    main()
