"""Shared by the fault suite: real agent daemons against real services, and the final count.

Every fault test ends with the same count (`count_exactly_once`): each probe's spool drained to
empty, then
- made: results the probe made (its persisted sequence counter: seqs 0..made-1);
- stored: distinct (probe, seq) among the `qos_seq` samples in VictoriaMetrics (/api/v1/export);
- duplicates: (probe, seq) stored as more than one sample (another series or timestamp: the
  store's dedup cannot merge those, so this is the "doubled" that matters);
- lost / rejected: what the probes counted as dropped unsent, or refused for good by a collector.
Nothing is lost uncounted when made == stored + lost + rejected, stored == delivered and every
stored seq is one the probe made.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.spool import SpoolReport
from collector.state import DATABASE_NAME
from contract.errors import ConfigError
from lab.services import Endpoint, VictoriaMetrics, qos_collector, venv_script
from tests.integration.agent.conftest import (
    Agent,
    collector_counter,
    make_agent,
    stop,
    wait_until,
)
from tests.unit.agent.builders import FAST_PUBLISH, config_table

# Two links, each tested ~15 times a second: enough traffic to catch a fault mid-flight while
# several daemons, two collectors and the store share two cores.
FAULT_SCHEDULE = {
    "speed_mean_s": 0.2,
    "speed_floor_s": 0.05,
    "light_mean_s": 0.1,
    "light_floor_s": 0.02,
    "speed_duration_s": 0.5,
}
STEPPED_AGENT = Path(__file__).with_name("stepped_agent.py")


class SteppedAgent(Agent):
    """An agent whose daemon reads its wall clock's offset (seconds) from `clock_offset_path`."""

    @property
    def clock_offset_path(self) -> Path:
        return self.workdir / "clock-offset"

    def step_clock(self, offset_s: float) -> None:
        """Step the daemon's wall clock to real time + `offset_s` (replaced atomically)."""
        temporary = self.clock_offset_path.with_suffix(".tmp")
        temporary.write_text(repr(offset_s), encoding="ascii")
        temporary.replace(self.clock_offset_path)

    @contextmanager
    def running(self, name: str = "agent") -> Iterator[subprocess.Popen[bytes]]:
        argv = [sys.executable, str(STEPPED_AGENT), str(self.config_path)]
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)


def fault_agent(
    workdir: Path,
    probe_id: str,
    broker_url: str,
    *,
    state_dir: Path | None = None,
    stepped: bool = False,
) -> Agent:
    """A daemon with an instant synthetic measurement on the fault schedule, not yet running."""
    table = config_table(
        state_dir or workdir / probe_id / "state",
        broker_url=broker_url,
        probe_id=probe_id,
        schedule=FAULT_SCHEDULE,
        publish=FAST_PUBLISH,
    )
    agent = make_agent(workdir / probe_id, table, synthetic=True)
    if stepped:
        return SteppedAgent(agent.workdir, agent.table, agent.synthetic)
    return agent


def probe_of(agent: Agent) -> str:
    return str(agent.table["probe_id"])


def results_made(agent: Agent) -> int:
    """How many results the probe has made: its sequence counter (seqs start at 0)."""
    try:
        return int((agent.state_dir / "seq").read_text(encoding="ascii")) + 1
    except FileNotFoundError:
        return 0


def spool_now(agent: Agent) -> SpoolReport | None:
    """The spool's counters now (None while the daemon has not made its database yet)."""
    try:
        return agent.spool()
    except (ConfigError, sqlite3.OperationalError):
        return None


def delivered(agent: Agent) -> int:
    report = spool_now(agent)
    return report.delivered if report else 0


def wait_for_more_delivered(
    agents: Sequence[Agent], since: Sequence[int], *, at_least: int, what: str
) -> None:
    """Until every probe has delivered `at_least` more results than it had at `since`."""
    wait_until(
        lambda: all(
            delivered(agent) >= before + at_least
            for agent, before in zip(agents, since, strict=True)
        ),
        timeout_s=30,
        what=what,
    )


@contextmanager
def daemons(agents: Sequence[Agent]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every agent's daemon running; all stopped (SIGTERM, then SIGKILL) when the block ends."""
    with ExitStack() as stack:
        yield [stack.enter_context(agent.running()) for agent in agents]


def stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        stop(process)


@contextmanager
def collector(workdir: Path, broker_url: str, store_url: str, name: str) -> Iterator[Endpoint]:
    """qos-collector with the production defaults (signed results of enrolled probes only).

    Its journal lives in `workdir/<name>-state`: the same name is the same instance restarted.
    """
    with qos_collector(
        workdir, broker_url=broker_url, store_url=store_url, name=name, extra_args=()
    ) as service:
        yield service


def metric(endpoint: Endpoint, name: str, **labels: str) -> float:
    """A sample from a collector's /metrics (0 when absent)."""
    return collector_counter(endpoint, name, **labels)


def accepted(endpoint: Endpoint) -> float:
    return metric(endpoint, "qos_collector_results_accepted_total")


Journal = dict[uuid.UUID, float | None]


def journal(workdir: Path, name: str) -> Journal:
    """A collector's journal (read from its state database, also after the process died): each
    result id it accepted, with when it wrote it to the store (None: still waiting)."""
    path = workdir / f"{name}-state" / DATABASE_NAME
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute("SELECT id, written_at FROM results").fetchall()
    finally:
        db.close()
    return {uuid.UUID(bytes=row[0]): row[1] for row in rows}


def written(rows: Journal) -> dict[uuid.UUID, float]:
    return {rid: at for rid, at in rows.items() if at is not None}


def unwritten(rows: Journal) -> set[uuid.UUID]:
    return {rid for rid, at in rows.items() if at is None}


def stored_samples(store: VictoriaMetrics, probe_ids: Sequence[str]) -> list[tuple[str, int, int]]:
    """Every stored `qos_seq` sample of these probes as (probe, seq, timestamp ms)."""
    store.flush()
    match = f"qos_seq{{probe=~{json.dumps('|'.join(probe_ids))}}}"
    samples: list[tuple[str, int, int]] = []
    for series in store.export(match):
        probe = series["metric"]["probe"]
        samples += [
            (probe, int(value), int(at))
            for value, at in zip(series["values"], series["timestamps"], strict=True)
        ]
    return samples


@dataclass(frozen=True)
class Tally:
    """The final count of one fault test (see the module's docstring)."""

    made: int
    delivered: int
    stored: int
    duplicates: int
    lost: int
    rejected: int
    samples: list[tuple[str, int, int]]
    reports: dict[str, SpoolReport]

    def summary(self, fault: str) -> str:
        """One line for bench/RESULTS.md (pytest -rP shows it)."""
        return (
            f"FAULT {fault}: made {self.made}, stored {self.stored}, duplicates "
            f"{self.duplicates}, lost (counted) {self.lost}, rejected (counted) {self.rejected}"
        )


def count_exactly_once(
    agents: Sequence[Agent], store: VictoriaMetrics, *, drain_timeout_s: float = 30.0
) -> Tally:
    """Drain every probe's spool, then count; asserts what holds after any fault.

    The daemons must be stopped: a drain runs each one again with no tests due until its spool
    is empty, so `made` is final.
    """
    reports = {probe_of(agent): agent.drain(timeout_s=drain_timeout_s) for agent in agents}
    made = {probe_of(agent): results_made(agent) for agent in agents}
    delivered = sum(report.delivered for report in reports.values())
    ids = sorted(reports)
    # The store answers a write before its rows are searchable: give the last ones a moment.
    wait_until(
        lambda: len({s[:2] for s in stored_samples(store, ids)}) >= delivered,
        timeout_s=15,
        what="the last results to be searchable",
    )
    samples = stored_samples(store, ids)
    per_result = Counter((probe, seq) for probe, seq, _ in samples)
    for probe, report in reports.items():
        assert report.depth == 0
        # Every result made is stored, or was counted lost or rejected: none vanished.
        assert made[probe] == report.delivered + report.lost + report.rejected, probe
        seqs = {seq for p, seq in per_result if p == probe}
        assert len(seqs) == report.delivered, f"{probe}: a result is missing or was never sent"
        assert seqs <= set(range(made[probe])), f"{probe}: a seq the probe never made"
    return Tally(
        made=sum(made.values()),
        delivered=delivered,
        stored=len(per_result),
        duplicates=sum(n - 1 for n in per_result.values()),
        lost=sum(report.lost for report in reports.values()),
        rejected=sum(report.rejected for report in reports.values()),
        samples=samples,
        reports=reports,
    )


def status_json(agent: Agent) -> dict[str, Any]:
    """`qos-agent status --json`, as a technician's script would read it."""
    answer = subprocess.run(
        [venv_script("qos-agent"), "status", "--config", str(agent.config_path), "--json"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert answer.stdout, answer.stderr
    status: dict[str, Any] = json.loads(answer.stdout)
    return status
