"""The agent's TOML: a good file loads, a bad key or value is named with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from contract.errors import ConfigError

GOOD = """\
probe_id = "vn-01-ban-a"

[location]
province_code = "01"
commune_code = "00004"
village = "Bản A"
lat = 21.0
lon = 105.8

[[links]]
interface = "wwan0"
access = "mobile"
technology = "4g"
operator = "Viettel"

[[links]]
interface = "eth0"
access = "fixed"
technology = "ftth"
operator = "VNPT"
plan = { download_mbps = 300, upload_mbps = 100 }

[[targets]]
id = "hn1"
url = "http://198.18.0.1:8080"

[broker]
url = "mqtt://127.0.0.1:1883"
"""


def _write(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path))
    assert config.probe_id == "vn-01-ban-a"
    plan = config.link("eth0").plan
    assert plan is not None
    assert plan.download_mbps == 300
    assert config.link(None).interface == "wwan0"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('technology = "4g"', 'technology = "6g"', "links[0].technology"),
        ('province_code = "01"', 'province_code = "Hà Nội"', "location.province_code"),
        ("lat = 21.0", "lattitude = 21.0", "location"),
        ('probe_id = "vn-01-ban-a"', 'probe_id = "Ban A!"', "probe_id"),
        ('url = "mqtt://127.0.0.1:1883"', 'url = "tcp://broker"', "broker.url"),
        ('url = "http://198.18.0.1:8080"', 'url = "198.18.0.1"', "targets[0].url"),
        # Names travel in every result, and the collector refuses one that is not plain text.
        ('village = "Bản A"', 'village = "Bản A\\nINFO forged"', "location.village"),
        ('operator = "Viettel"', 'operator = "Viettel\\u200b"', "links[0].operator"),
    ],
)
def test_bad_key_or_value_is_named(tmp_path: Path, old: str, new: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD.replace(old, new)))
    assert key in str(caught.value)


def test_unknown_interface_lists_the_known_ones(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path))
    with pytest.raises(ConfigError, match="configured: wwan0, eth0"):
        config.link("eth1")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="qos-agent enroll"):
        load_config(tmp_path / "absent.toml")
