"""Monthly byte budgets: persisted, estimated from history; a test that would overspend waits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agent.budget import ESTIMATE_MARGIN, Budget
from agent.state import open_state_db

NOV = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def _budget(tmp_path: Path) -> Budget:
    return Budget(
        open_state_db(tmp_path),
        caps={"wwan0": 100_000_000, "eth0": None},
        first_estimates={"speed": 30_000_000, "light": 100_000},
    )


def test_a_test_is_skipped_when_its_estimate_exceeds_what_is_left(tmp_path: Path) -> None:
    budget = _budget(tmp_path)
    assert budget.allows("wwan0", "speed", NOV)
    budget.charge("wwan0", "speed", 40_000_000, NOV)
    assert budget.estimate("wwan0", "speed") == 40_000_000 * ESTIMATE_MARGIN
    assert budget.left("wwan0", NOV) == 60_000_000
    assert budget.allows("wwan0", "speed", NOV)  # 50 MB estimated, 60 MB left
    budget.charge("wwan0", "speed", 40_000_000, NOV)
    assert not budget.allows("wwan0", "speed", NOV)  # 50 MB estimated, 20 MB left
    assert budget.allows("wwan0", "light", NOV)  # light tests still fit
    (link,) = budget.report(NOV)
    assert (link.interface, link.used_bytes, link.cap_bytes, link.skipped_tests) == (
        "wwan0",
        80_000_000,
        100_000_000,
        1,
    )


def test_budgets_survive_a_restart_and_reset_with_the_month(tmp_path: Path) -> None:
    _budget(tmp_path).charge("wwan0", "speed", 90_000_000, NOV)
    again = _budget(tmp_path)
    assert again.left("wwan0", NOV) == 10_000_000
    assert again.estimate("wwan0", "speed") == 90_000_000 * ESTIMATE_MARGIN
    assert again.left("wwan0", DEC) == 100_000_000


def test_a_link_without_a_cap_is_never_held_back(tmp_path: Path) -> None:
    budget = _budget(tmp_path)
    budget.charge("eth0", "speed", 10**12, NOV)
    assert budget.left("eth0", NOV) is None
    assert budget.allows("eth0", "speed", NOV)
    assert [b.interface for b in budget.report(NOV)] == ["wwan0"]
