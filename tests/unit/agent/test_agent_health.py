"""The probe's own health from a fake /sys and recorded chronyc output."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.health import cpu_temperature_c, disk_free_bytes, parse_chrony_tracking


def _zone(root: Path, index: int, kind: str, millidegrees: str) -> None:
    zone = root / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n", encoding="ascii")
    (zone / "temp").write_text(millidegrees + "\n", encoding="ascii")


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "iwlwifi_1", "38000")
    _zone(tmp_path, 1, "cpu-thermal", "61850")
    assert cpu_temperature_c(tmp_path) == pytest.approx(61.85)


def test_cpu_temperature_falls_back_to_any_zone_or_none(tmp_path: Path) -> None:
    assert cpu_temperature_c(tmp_path) is None
    _zone(tmp_path, 0, "board", "45000")
    _zone(tmp_path, 1, "broken", "n/a")
    assert cpu_temperature_c(tmp_path) == 45.0


def test_chrony_correction_becomes_the_clock_offset() -> None:
    slow = (
        "A29FC87B,162.159.200.123,3,1700000000.1,0.000250000,-0.000011,0.000023,"
        "-7.385,-0.001,0.043,0.015,0.0006,1030.5,Normal"
    )
    assert parse_chrony_tracking(slow) == pytest.approx(-0.25)  # 0.25 ms slow = behind
    assert parse_chrony_tracking("garbage") is None


def test_disk_free_of_a_missing_path_is_unknown(tmp_path: Path) -> None:
    assert disk_free_bytes(tmp_path) is not None
    assert disk_free_bytes(tmp_path / "absent") is None
