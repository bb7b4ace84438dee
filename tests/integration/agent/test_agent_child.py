"""A scheduled test in its own process: the result comes back; a failing child is an error."""

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


async def test_a_light_test_in_a_child_returns_its_result(tmp_path: Path, target: Endpoint) -> None:
    table = config_table(tmp_path / "state", target_url=target.url, links=(LOOPBACK,))
    config = write_config(tmp_path / "agent.toml", table)
    measure = ChildMeasure(tmp_path / "agent.toml")
    first = await measure(config, Job("lo", "light"), config.targets[0], 1_000_000)
    second = await measure(config, Job("lo", "light"), config.targets[0], None)
    assert (first.seq, second.seq) == (0, 1)
    assert first.signature is None  # the daemon signs, after adding radio and health
    assert first.measurements.download is None
    assert first.measurements.latency is not None
    assert first.measurements.ipv6 is not None
    assert first.link.interface == "lo"


async def test_a_child_that_cannot_run_raises_with_its_reason(tmp_path: Path) -> None:
    table = config_table(tmp_path / "state", links=(LOOPBACK,))
    config = write_config(tmp_path / "agent.toml", table)
    (tmp_path / "agent.toml").write_text("probe_id = 'Not Valid'\n", encoding="utf-8")
    with pytest.raises(ServiceError, match="probe_id"):
        await ChildMeasure(tmp_path / "agent.toml")(
            config, Job("lo", "light"), config.targets[0], None
        )
