"""The daemon's config sections: defaults, and bad values named with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.config import DEFAULT_MOBILE_BUDGET_BYTES, load_config
from contract.errors import ConfigError
from tests.unit.agent.builders import FIXED, MOBILE, config_table, write_config


def test_defaults_give_mobile_links_a_budget_and_fixed_links_none(tmp_path: Path) -> None:
    table = config_table(tmp_path / "state")
    del table["schedule"], table["publish"]
    config = write_config(tmp_path / "agent.toml", table)
    assert config.link_config("wwan0").budget_bytes == DEFAULT_MOBILE_BUDGET_BYTES
    assert config.link_config("eth0").budget_bytes is None
    assert config.schedule.speed_mean_s == 6 * 3600
    assert config.key_path == tmp_path / "state" / "probe.key"
    assert config.link("eth0").plan is not None


def test_a_stated_budget_and_key_file_are_used(tmp_path: Path) -> None:
    mobile = MOBILE | {"monthly_budget_bytes": 5_000_000_000}
    table = config_table(tmp_path, links=(mobile,), key_file=str(tmp_path / "k"))
    config = write_config(tmp_path / "agent.toml", table)
    assert config.link_config("wwan0").budget_bytes == 5_000_000_000
    assert config.key_path == tmp_path / "k"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"schedule": {"speed_mean_s": 60, "speed_floor_s": 120}}, "schedule.speed_floor_s"),
        ({"links": [MOBILE, MOBILE]}, "links[1].interface"),
        ({"links": [MOBILE | {"budget": 1}]}, "links[0]"),
        ({"links": [FIXED | {"plan": {"download_mbps": 1, "upload": 1}}]}, "links[0].plan"),
        ({"location": {"province_code": "11", "commune_code": "03211", "village": "A",
                       "lat": 1, "lon": 2, "altitude": 5}}, "location"),
        ({"spool": {"max_results": 0}}, "spool.max_results"),
        ({"publish": {"reconnect_first_s": 9, "reconnect_cap_s": 1}}, "publish.reconnect_first_s"),
        ({"broker": {"url": "mqtt://h", "ca_fle": "x"}}, "broker"),
        ({"broker": {"url": "mqtts://h", "ca_file": "/absent/ca.pem"}}, "broker.ca_file"),
    ],
)  # fmt: skip
def test_bad_keys_and_values_are_named(tmp_path: Path, change: dict[str, Any], key: str) -> None:
    path = tmp_path / "agent.toml"
    with pytest.raises(ConfigError) as caught:
        write_config(path, config_table(tmp_path) | change)
    assert f"{path}: {key}" in str(caught.value)


def test_the_example_config_loads() -> None:
    example = Path(__file__).parents[3] / "deploy" / "agent.example.toml"
    config = load_config(example)
    assert config.link_config("wwan0").budget_bytes == 2_000_000_000
