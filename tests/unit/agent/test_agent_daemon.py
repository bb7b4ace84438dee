"""One scheduled test through the daemon (no broker): budget, radio, health, signature, spool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from agent import history
from agent.commands.status import gather
from agent.config import AgentConfig, TargetConfig
from agent.daemon import Daemon
from agent.keys import create_key
from agent.measurements.kind import LinkOutcome
from agent.schedule import Job
from agent.state import open_state_db, read_daemon_state
from contract.result import Radio, Result, decode_result
from contract.signing import parse_public_key, verify_result
from tests.unit.agent.builders import MOBILE, SyntheticMeasure, config_table, write_config
from tests.unit.agent.test_agent_radio import recorded


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    mobile = MOBILE | {"monthly_budget_bytes": 12_000_000}
    table = config_table(tmp_path / "state", links=(mobile, config_table(tmp_path)["links"][1]))
    table["budget"] = {"speed_test_estimate_bytes": 5_000_000}
    return write_config(tmp_path / "agent.toml", table)


@pytest.fixture
def measure() -> SyntheticMeasure:
    return SyntheticMeasure(bytes_used=5_000_000)


@pytest.fixture
def daemon(config: AgentConfig, measure: SyntheticMeasure) -> Iterator[Daemon]:
    mmcli, _ = recorded("4g")
    daemon = Daemon(config, create_key(config.key_path), measure=measure, mmcli=mmcli)
    yield daemon
    daemon.db.close()


def _spooled(daemon: Daemon) -> list[Result]:
    return [decode_result(row.payload) for row in daemon.spool.due(100, skip=set())]


async def test_a_result_is_signed_with_radio_and_health_then_spooled(
    daemon: Daemon, measure: SyntheticMeasure
) -> None:
    await daemon.run_test(Job("wwan0", "speed"))
    # The engine is told what the month has left, and stops a transfer there.
    assert measure.calls == [(Job("wwan0", "speed"), 12_000_000)]
    (result,) = _spooled(daemon)
    verify_result(result, parse_public_key(daemon.publisher.meta.public_key))
    assert result.link.radio == Radio(
        rat="4g", rsrp_dbm=-97.0, rsrq_db=-11.0, sinr_db=9.8,
        cell="452-04-00306D-0A3C2B01", modem_state="connected",
    )  # fmt: skip
    health = result.provenance.health
    assert health is not None
    assert health.spool_depth == 0
    assert health.budget_left_bytes == 12_000_000 - 5_000_000
    assert health.disk_free_bytes
    assert daemon.publisher.wake.is_set()


async def test_a_test_over_budget_is_skipped_and_counted(daemon: Daemon) -> None:
    for _ in range(3):  # 5 MB each against 12 MB: the third would overspend
        await daemon.run_test(Job("wwan0", "speed"))
    assert len(_spooled(daemon)) == 2
    assert daemon.state.tests_skipped_budget == 1
    status = await daemon.status("online")
    assert status.health is not None
    (budget,) = status.health.budgets
    assert (budget.used_bytes, budget.cap_bytes, budget.skipped_tests) == (
        10_000_000,
        12_000_000,
        1,
    )
    # A fixed link has no cap and keeps testing.
    await daemon.run_test(Job("eth0", "speed"))
    assert len(_spooled(daemon)) == 3


async def test_a_fault_in_the_engine_is_counted_not_raised(daemon: Daemon) -> None:
    class Broken(SyntheticMeasure):
        async def __call__(
            self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
        ) -> LinkOutcome:
            raise RuntimeError("a bug")

    daemon.measure = Broken()
    await daemon.run_test(Job("eth0", "speed"))
    assert daemon.state.tests_failed == 1
    assert _spooled(daemon) == []


async def test_status_reads_what_the_daemon_recorded(daemon: Daemon, config: AgentConfig) -> None:
    await daemon.run_test(Job("wwan0", "speed"))
    await daemon.run_test(Job("eth0", "light"))
    await daemon.status("online")
    daemon.spool.settle([(str(_spooled(daemon)[0].id), "stored")])
    db = open_state_db(Path(config.state_dir), read_only=True)
    recorded_state = read_daemon_state(db)
    db.close()
    assert recorded_state is not None
    assert recorded_state.pid == os.getpid()
    report = gather(config, datetime.now(UTC))
    assert report.daemon_running
    assert (report.spool.depth, report.spool.spooled, report.spool.delivered) == (1, 2, 1)
    assert [(r.interface, r.delivered) for r in report.recent] == [("eth0", False), ("wwan0", True)]
    assert [b.interface for b in report.budgets] == ["wwan0"]
    assert msgspec.json.decode(msgspec.json.encode(report))["probe_id"] == config.probe_id


async def test_each_result_goes_to_the_history_and_a_broken_history_costs_nothing(
    daemon: Daemon, config: AgentConfig
) -> None:
    await daemon.run_test(Job("wwan0", "speed"))
    (kept,) = history.read(Path(config.state_dir)).entries
    assert (kept.source, kept.result) == ("daemon", _spooled(daemon)[0])
    # A history that cannot be written (here: a directory where its file goes).
    (Path(config.state_dir) / history.HISTORY_FILE).unlink()
    (Path(config.state_dir) / history.HISTORY_FILE).mkdir()
    await daemon.run_test(Job("eth0", "speed"))
    assert len(_spooled(daemon)) == 2
    state = read_daemon_state(daemon.db)
    assert state is not None
    assert (state.tests_run, state.tests_failed) == (2, 0)
