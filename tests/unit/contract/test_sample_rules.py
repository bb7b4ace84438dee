"""The method's sample rules: units, day parts, the minimum gap chain and the sample classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.state import sample_gap
from contract.sampling import classify, day_part, gap_s, latency_units, rate_units, too_close

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def test_units_are_hundredths() -> None:
    assert rate_units(43.126) == 4313
    assert rate_units(40.0) == 4000
    assert latency_units(23.456) == 2346


@pytest.mark.parametrize(
    ("utc_hour", "part"), [(16, 3), (17, 0), (22, 0), (23, 1), (4, 1), (5, 2), (11, 3)]
)
def test_day_parts_are_six_hours_of_vietnam_time(utc_hour: int, part: int) -> None:
    assert day_part(T0.replace(hour=utc_hour)) == part


def test_gap_is_measured_at_the_stores_millisecond_resolution() -> None:
    assert gap_s(None, T0) is None
    assert gap_s(T0, T0 + timedelta(seconds=29, microseconds=999_600)) == 30.0
    assert gap_s(T0, T0 + timedelta(seconds=29, microseconds=999_400)) == 29.999
    assert too_close(29.999, 30.0)
    assert not too_close(30.0, 30.0)
    assert not too_close(None, 30.0)


def test_classes_follow_the_rules_precedence() -> None:
    def of(**changes: object) -> str:
        fields: dict[str, object] = {
            "failed": False,
            "probe_limited": False,
            "unconverged": False,
            "rates_mbps": (40.0, 10.0),
            "ceiling_mbps": 2000.0,
            "is_too_close": False,
        }
        return classify(**(fields | changes))  # type: ignore[arg-type]

    assert of() == "counted"
    assert of(rates_mbps=(2000.0, None)) == "counted"  # at the ceiling is possible
    assert of(rates_mbps=(40.0, 2000.01)) == "implausible"
    assert of(probe_limited=True, rates_mbps=(9000.0, None)) == "probe_limited"
    assert of(unconverged=True) == "unconverged"
    # An unconverged rate is a lower bound: above the ceiling it is impossible all the same.
    assert of(unconverged=True, rates_mbps=(9000.0, None)) == "implausible"
    assert of(probe_limited=True, unconverged=True) == "probe_limited"
    assert of(failed=True, probe_limited=True) == "failed"
    assert of(failed=True, is_too_close=True) == "too_close"


def test_the_probe_keeps_a_greedy_chain_per_link(tmp_path: Path) -> None:
    # Attempts every 10 s: every third one is 30 s after the previous counted one.
    gaps = [sample_gap(tmp_path, "wwan0", T0 + timedelta(seconds=10 * i), 30.0) for i in range(7)]
    assert gaps == [None, 10.0, 20.0, 30.0, 10.0, 20.0, 30.0]
    # Another link has its own chain; a hostile interface name is only a key.
    assert sample_gap(tmp_path, "eth0", T0, 30.0) is None
    assert sample_gap(tmp_path, "../../x", T0, 30.0) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-counted.json", "seq.lock"]


def test_a_torn_chain_file_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "last-counted.json").write_text('{"wwan0": "not a time"', encoding="ascii")
    assert sample_gap(tmp_path, "wwan0", T0, 30.0) is None
    assert sample_gap(tmp_path, "wwan0", T0 + timedelta(seconds=5), 30.0) == 5.0
