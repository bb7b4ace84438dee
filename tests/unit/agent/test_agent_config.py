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


@pytest.mark.parametrize(
    ("technology", "operator", "canonical"),
    [
        ("4G", "viettel", ("4g", "Viettel")),
        ("LTE", "VIETTEL TELECOM", ("4g", "Viettel")),
        ("lte-a", "Viettel", ("4g", "Viettel")),
    ],
)
def test_hand_written_names_are_read_in_their_canonical_spelling(
    tmp_path: Path, technology: str, operator: str, canonical: tuple[str, str]
) -> None:
    text = GOOD.replace('technology = "4g"', f'technology = "{technology}"')
    text = text.replace('operator = "Viettel"', f'operator = "{operator}"')
    link = load_config(_write(tmp_path, text)).link("wwan0")
    assert (link.technology, link.operator) == canonical
    assert link.access == "mobile"


@pytest.mark.parametrize(
    ("old", "new", "key", "suggested"),
    [
        ('technology = "4g"', 'technology = "ltee"', "links[0].technology", "4g"),
        ('operator = "Viettel"', 'operator = "Viettell"', "links[0].operator", "Viettel"),
        ('operator = "VNPT"', 'operator = "vnpt fibrevnn"', "links[1].operator", "VNPT"),
    ],
)
def test_an_unknown_name_is_refused_by_its_key_with_the_canonical_spelling(
    tmp_path: Path, old: str, new: str, key: str, suggested: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD.replace(old, new)))
    assert key in caught.value.message
    assert f"did you mean {suggested}" in caught.value.hint


def test_a_name_of_the_wrong_type_is_refused_by_the_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD.replace('operator = "Viettel"', "operator = 4")))
    assert "links[0].operator" in str(caught.value)
