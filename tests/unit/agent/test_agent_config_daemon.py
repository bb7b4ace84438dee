"""The daemon's config sections: defaults, and bad values named with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from agent.config import (
    DEFAULT_MOBILE_BUDGET_BYTES,
    BudgetConfig,
    LinkConfig,
    PublishConfig,
    ScheduleConfig,
    SpoolConfig,
    load_config,
)
from contract.errors import ConfigError
from tests.unit.agent.builders import FAST_PUBLISH, FIXED, MOBILE, config_table, write_config


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


@pytest.mark.parametrize(
    ("change", "key", "allowed"),
    [
        ({"publish": FAST_PUBLISH | {"status_interval_s": 1e-9}}, "publish.status_interval_s",
         "1e-09 is out of range (allowed: ≥ 1 and ≤ 86_400)"),
        ({"publish": FAST_PUBLISH | {"window": 0}}, "publish.window", "allowed: ≥ 1 and ≤ 1_000"),
        ({"schedule": {"speed_mean_s": float("nan")}}, "schedule.speed_mean_s",
         "nan is out of range (allowed: ≥ 0.01 and ≤ 7_776_000)"),
        ({"schedule": {"speed_duration_s": float("inf")}}, "schedule.speed_duration_s",
         "inf is out of range (allowed: ≥ 0.1 and ≤ 120)"),
        ({"spool": {"max_results": 10**12}}, "spool.max_results", "≤ 10_000_000"),
        ({"budget": {"speed_test_estimate_bytes": -1}}, "budget.speed_test_estimate_bytes",
         "-1 is out of range (allowed: ≥ 1_000 and ≤ 10_000_000_000)"),
        ({"links": [MOBILE | {"monthly_budget_bytes": 10**18}]}, "links[0].monthly_budget_bytes",
         "allowed: ≥ 0 and ≤ 10_000_000_000_000"),
    ],
)  # fmt: skip
def test_every_number_is_bounded_and_the_error_gives_the_range(
    tmp_path: Path, change: dict[str, Any], key: str, allowed: str
) -> None:
    path = tmp_path / "agent.toml"
    with pytest.raises(ConfigError) as caught:
        write_config(path, config_table(tmp_path) | change)
    assert f"{path}: {key}: " in str(caught.value)
    assert allowed in str(caught.value)


def test_every_number_of_the_config_has_both_bounds() -> None:
    """A new numeric key without an upper bound fails here (None means unbounded)."""
    for section in (ScheduleConfig, BudgetConfig, SpoolConfig, PublishConfig, LinkConfig):
        info = msgspec.inspect.type_info(section)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            number = field.type
            if isinstance(number, msgspec.inspect.UnionType):
                number = next(
                    t for t in number.types if not isinstance(t, msgspec.inspect.NoneType)
                )
            if isinstance(number, msgspec.inspect.IntType | msgspec.inspect.FloatType):
                assert number.ge is not None or number.gt is not None, field.name
                assert number.le is not None or number.lt is not None, field.name


def test_a_first_receipt_wait_above_its_cap_is_refused(tmp_path: Path) -> None:
    publish = FAST_PUBLISH | {"receipt_timeout_s": 100.0, "resend_cap_s": 10.0}
    with pytest.raises(ConfigError, match=r"publish\.receipt_timeout_s: 100 s is above"):
        write_config(tmp_path / "agent.toml", config_table(tmp_path, publish=publish))


def test_an_account_in_the_broker_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    broker = {"url": "mqtt://vn-11-ban-test:Hu3-secret@127.0.0.1:1883"}
    with pytest.raises(ConfigError) as caught:
        write_config(tmp_path / "agent.toml", config_table(tmp_path, broker=broker))
    text = str(caught.value)
    assert "broker.url: mqtt://***@127.0.0.1:1883 holds an account" in text
    assert "[broker] username and password" in text
    assert "Hu3-secret" not in text


def test_a_ca_file_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_bytes(bytes(range(256)) * 4)
    broker = {"url": "mqtts://127.0.0.1:8883", "ca_file": str(garbage)}
    with pytest.raises(ConfigError, match=rf"broker\.ca_file: {garbage} holds no usable CA"):
        write_config(tmp_path / "agent.toml", config_table(tmp_path, broker=broker))
