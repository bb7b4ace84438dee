"""`qos-agent enroll`: a loadable config, a private key, and what to register centrally."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from agent.cli import main
from agent.commands.enroll import render_toml
from agent.config import load_config
from agent.keys import load_key
from contract.fleet import decode_meta
from contract.signing import public_key_text


def _enroll(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "enroll",
        "--probe-id", "vn-11-ban-na-hin",
        "--province", "11",
        "--commune", "03127",
        "--village", 'Bản "Nà" Hin',
        "--lat", "21.39",
        "--lon", "103.02",
        "--link", "wwan0:mobile:4g:Viettel",
        "--link", "eth0:fixed:ftth:VNPT:300/100",
        "--target", "hn1=http://198.18.0.1:8080",
        "--broker", "mqtts://broker.example.vn:8883",
        "--password", "s3cret",
        "--config", str(tmp_path / "etc" / "agent.toml"),
        "--state-dir", str(tmp_path / "state"),
        *extra,
    ]  # fmt: skip


def test_enroll_writes_a_config_and_key_and_prints_the_enrollment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_enroll(tmp_path, "--json")) == 0
    meta = decode_meta(capsys.readouterr().out.strip().encode())
    config = load_config(tmp_path / "etc" / "agent.toml")
    assert config.location.village == 'Bản "Nà" Hin'
    assert config.broker.username == "vn-11-ban-na-hin"
    assert config.broker.password == "s3cret"
    plan = config.link("eth0").plan
    assert plan is not None
    assert (plan.download_mbps, plan.upload_mbps) == (300, 100)
    assert stat.S_IMODE((tmp_path / "etc" / "agent.toml").stat().st_mode) == 0o640
    assert meta.public_key == public_key_text(load_key(config.key_path))
    assert [link.interface for link in meta.links] == ["wwan0", "eth0"]


def test_enroll_again_keeps_the_key_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(_enroll(tmp_path, "--json"))
    first = json.loads(capsys.readouterr().out)["public_key"]
    assert main(_enroll(tmp_path, "--json")) == 2  # the config exists
    assert "pass --force" in capsys.readouterr().err
    main(_enroll(tmp_path, "--json", "--force"))
    assert json.loads(capsys.readouterr().out)["public_key"] == first
    main(_enroll(tmp_path, "--json", "--force", "--new-key"))
    assert json.loads(capsys.readouterr().out)["public_key"] != first


def test_enroll_shows_what_to_register(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_enroll(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "Register centrally" in out
    assert "vn-11-ban-na-hin" in out
    assert "public key" in out


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--link", "wwan0:mobile", "--link 'wwan0:mobile'"),
        ("--link", "wwan0:mobile:6g:X", "links[2].technology"),
        ("--link", "eth1:fixed:ftth:X:fast", "links[2].plan"),
        ("--target", "http://x", "targets[1]"),
        ("--province", "Hà Nội", "use --province 01"),
        ("--link", "wwan1:mobile:4g:Vietel", "did you mean Viettel"),
    ],
)
def test_bad_options_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, named: str
) -> None:
    assert main([*_enroll(tmp_path), option, value]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "etc" / "agent.toml").exists()


def test_rendered_toml_reads_back_the_same() -> None:
    table = {
        "name": 'quote " backslash \\ tab \t ư',
        "n": 3,
        "x": 0.1,
        "flag": True,
        "section": {"inline": {"a": 1.5, "b": "c"}},
        "items": [{"k": "v"}, {"k": "w"}],
    }
    assert tomllib.loads(render_toml(table)) == table


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    assert main([*_enroll(tmp_path), *options]) == 2
    assert not (tmp_path / "etc" / "agent.toml").exists()
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "wrong", "instead"),
    [
        (("--lat", "48.8566", "--lon", "2.3522"), "(48.8566, 2.3522) is outside Vietnam",
         "--lat about 8.5 to 23.4"),
        (("--lat", "103.02", "--lon", "21.39"), "outside Vietnam", "use --lat 21.39 --lon 103.02"),
        (("--province", "99"), "'99' is not a province code", "01 Hà Nội, 04 Cao Bằng"),
        (("--province", "02", "--probe-id", "vn-02-x"),
         "02 is the code of Hà Giang before 2025-07-01; Hà Giang is now part of 08 Tuyên Quang",
         "use --province 08"),
        (("--probe-id", "vn-79-ban-na-hin"), "names province 79 (Hồ Chí Minh), not 11 (Điện Biên)",
         "use --probe-id vn-11-ban-na-hin"),
        (("--probe-id", "ban-na-hin"), "does not name its province",
         "e.g. --probe-id vn-11-ban-na-hin"),
        (("--link", "eth1:fixed:ftth:FPT"), "eth1 is a fixed line without its subscribed plan",
         "--link eth1:fixed:ftth:FPT:300/300"),
        (("--link", "eth1:fixed:optic:FPT:100/100"), "'optic' is not a known technology",
         "write one of ftth"),
    ],
)  # fmt: skip
def test_enroll_refuses_what_cannot_be_right_and_says_what_to_type(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    wrong: str,
    instead: str,
) -> None:
    error = _refusal(tmp_path, capsys, *options)
    assert wrong in error
    assert instead in error.split("->", 1)[1]


@pytest.mark.parametrize(
    ("probe_id", "province", "lat", "lon"),
    [
        ("vn-91-phu-quoc", "91", "10.22", "103.96"),  # Phú Quốc, An Giang (Kiên Giang before)
        ("vn-79-con-dao", "79", "8.69", "106.61"),  # Côn Đảo, Hồ Chí Minh (Bà Rịa - Vũng Tàu)
        ("vn-56-truong-sa", "56", "8.64", "111.92"),  # đặc khu Trường Sa, Khánh Hòa
        ("vn-02-lung-cu", "08", "23.36", "105.32"),  # an id from before 2025, Hà Giang's code
    ],
)
def test_enroll_accepts_islands_and_ids_from_before_the_merger(
    tmp_path: Path, probe_id: str, province: str, lat: str, lon: str
) -> None:
    options = ("--probe-id", probe_id, "--province", province, "--lat", lat, "--lon", lon)
    assert main([*_enroll(tmp_path, "--json"), *options]) == 0
    assert load_config(tmp_path / "etc" / "agent.toml").location.province_code == province


def test_enroll_writes_the_canonical_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_enroll(tmp_path, "--json"), "--link", "wwan1:Mobile:LTE:viettel telecom"]) == 0
    link = load_config(tmp_path / "etc" / "agent.toml").link("wwan1")
    assert (link.access, link.technology, link.operator) == ("mobile", "4g", "Viettel")
    assert capsys.readouterr().err == ""  # a listed commune: no warning


def test_enroll_warns_of_a_commune_not_in_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_enroll(tmp_path, "--json"), "--commune", "03211"]) == 0
    warning = capsys.readouterr().err
    assert "commune 03211 is not in the official list of Điện Biên" in warning
    assert main([*_enroll(tmp_path, "--json", "--force"), "--commune", "00715"]) == 0
    warning = capsys.readouterr().err
    assert "commune 00715 is Xã Lũng Cú of 08 Tuyên Quang, not of 11 Điện Biên" in warning
