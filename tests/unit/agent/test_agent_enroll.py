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
        "--commune", "03211",
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
        ("--province", "Hà Nội", "location.province_code"),
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
