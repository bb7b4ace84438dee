"""QCVN profiles are data: the bundled file loads, and a bad one is refused by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import ConfigError
from contract.profiles import bundled_profiles, ceiling_mbps, load_profiles, profile_for


def test_bundled_profiles_carry_the_qcvn_targets() -> None:
    profiles = bundled_profiles()
    assert set(profiles) >= {"4g", "4g-draft-2023", "5g", "fixed"}
    four_g = profiles["4g"]
    assert four_g.download is not None
    assert four_g.download.mean_min_mbps == 40.0
    assert four_g.n_required == 1500
    assert four_g.access_failure_max == 0.05
    five_g = profiles["5g"]
    assert five_g.download is not None
    assert five_g.upload is not None
    assert (five_g.download.mean_min_mbps, five_g.upload.mean_min_mbps) == (100.0, 30.0)
    assert (five_g.download.share_min_mbps, five_g.download.share_required) == (30.0, 0.95)
    assert five_g.latency_mean_max_ms == 50.0
    fixed = profiles["fixed"]
    assert fixed.download is not None
    assert (fixed.download.mean_min_mbps, fixed.download.plan_ratio, fixed.n_required) == (
        1000.0,
        0.8,
        1000,
    )
    assert profiles["4g-draft-2023"].verify is True


@pytest.mark.parametrize(
    ("technology", "profile"), [("4g", "4g"), ("5g", "5g"), ("ftth", "fixed"), ("cable", "fixed")]
)
def test_each_technology_has_its_default_profile(technology: str, profile: str) -> None:
    found = profile_for(technology)
    assert found is not None
    assert found.name == profile


def test_unknown_technology_has_no_profile() -> None:
    assert profile_for("unknown") is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
[profiles.x]
title = "t"
source = "s"
access = "mobile"
n_required = 10
"""


def test_a_typo_is_refused_by_its_key(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "download = { mean_mni_mbps = 40.0 }\n")
    with pytest.raises(ConfigError, match=r"profiles\.x\.download.*mean_mni_mbps"):
        load_profiles(path)


def test_a_bad_value_is_refused_by_its_key(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("n_required = 10", "n_required = -3"))
    with pytest.raises(ConfigError, match=r"profiles\.x\.n_required"):
        load_profiles(path)


def test_share_threshold_needs_its_share(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "download = { share_min_mbps = 40.0 }\n")
    with pytest.raises(ConfigError, match="share_required"):
        load_profiles(path)


def test_a_direction_without_target_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "download = {}\n")
    with pytest.raises(ConfigError, match="names no target"):
        load_profiles(path)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profiles(_write(tmp_path, "[profiles.x\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_profiles(tmp_path / "absent.toml")


def test_a_profile_defaulting_to_another_access_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[profiles.odd]\ntitle = "t"\nsource = "s"\naccess = "fixed"\ndefault_for = ["4g"]\n'
        "n_required = 1\ndownload = { mean_min_mbps = 1.0 }\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="4g is mobile access"):
        load_profiles(path)


def test_a_programme_criterion_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[profiles.odd]\ntitle = "t"\nsource = "s"\naccess = "fixed"\nprogramme = ["speed"]\n'
        "n_required = 1\ndownload = { mean_min_mbps = 1.0 }\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="'speed' is not a criterion"):
        load_profiles(path)


def test_every_ceiling_and_rule_of_the_bundled_profiles_is_read() -> None:
    profiles = bundled_profiles()
    assert ceiling_mbps(profiles["4g"], "4g") == 2000.0
    assert ceiling_mbps(profiles["4g"], "5g") == 100_000.0  # not this profile's technology
    assert profiles["fixed"].day_part_min_share == 0.1
    assert profiles["fixed"].programme == ("download.mean",)
