"""A scheduled test in its own process: its outcome comes back; a failing child is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.measure import ChildMeasure
from agent.schedule import Job
from contract.errors import ServiceError
from lab.services import Endpoint
from tests.unit.agent.builders import FIXED, config_table, write_config

pytestmark = [pytest.mark.integration]

LOOPBACK = FIXED | {"interface": "lo"}


async def test_a_light_test_in_a_child_returns_its_outcome(
    tmp_path: Path, target: Endpoint
) -> None:
    table = config_table(tmp_path / "state", target_url=target.url, links=(LOOPBACK,))
    config = write_config(tmp_path / "agent.toml", table)
    measured = await ChildMeasure(tmp_path / "agent.toml")(
        config, Job("lo", "light"), config.targets[0], 1_000_000
    )
    # The light kinds only, each with its own time inside the test's; the daemon builds the result.
    kinds = {outcome.kind: outcome for outcome in measured.outcomes}
    assert {"latency", "ipv6"} <= set(kinds)
    assert "download" not in kinds
    assert kinds["latency"].reading.block is not None
    for outcome in measured.outcomes:
        assert measured.started_at <= outcome.started_at <= outcome.finished_at
        assert outcome.finished_at <= measured.finished_at
    assert not measured.speed_attempt
    # Nothing was counted on the probe's state: seq and the gap chain are the daemon's.
    assert not (tmp_path / "state" / "seq").exists()


async def test_a_child_that_cannot_run_raises_with_its_reason(tmp_path: Path) -> None:
    table = config_table(tmp_path / "state", links=(LOOPBACK,))
    config = write_config(tmp_path / "agent.toml", table)
    (tmp_path / "agent.toml").write_text("probe_id = 'Not Valid'\n", encoding="utf-8")
    with pytest.raises(ServiceError, match="probe_id"):
        await ChildMeasure(tmp_path / "agent.toml")(
            config, Job("lo", "light"), config.targets[0], None
        )
