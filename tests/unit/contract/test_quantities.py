"""A quantity a measurement kind declares, judged from its declaration and the profiles alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from collector.compliance import AreaStats, Moments, judge
from collector.evaluate import parse_campaign
from collector.series import FIELD_NAMES, fields
from contract.criteria import criteria
from contract.errors import ConfigError, WireError
from contract.profiles import bundled_profiles, load_profiles
from contract.quantities import Quantity, check_quantity, declared_quantities
from contract.result import KindBlock, decode_result, encode_result
from tests.strategies import sample_result

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PROFILE = """
[profiles.x]
title = "t"
source = "s"
access = "mobile"
default_for = ["4g"]
n_required = 3
download = { mean_min_mbps = 10.0 }
"""


def _profile(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILE + extra, encoding="utf-8")
    return path


def test_access_delay_is_declared_by_its_kind() -> None:
    delay = declared_quantities()["access_delay"]
    assert (delay.field, delay.counted_field, delay.criterion_id) == (
        "access_delay_ms",
        "counted_access_delay_ms",
        "access_delay.mean",
    )
    assert delay.comparison == "<="
    assert {"access_delay_ms", "counted_access_delay_ms"} <= set(FIELD_NAMES)


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        (Quantity("Access-Delay", "t", "ms", "ms", 1, "<="), "lower-case letters"),
        (Quantity("delay", "t", "m s", "ms", 1, "<="), "unit 'm s'"),
        (Quantity("delay", "t", "ms", "ms", 0, "<="), "units_per 0"),
        (Quantity("delay", "t", "ms", "ms", 1, "<"), "comparison '<'"),  # type: ignore[arg-type]
        ("access_delay", "not a contract.quantities.Quantity"),
    ],
)
def test_a_declaration_that_would_make_bad_series_names_is_refused(
    quantity: object, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        check_quantity(quantity, "entry point x")


def test_a_profile_limits_a_declared_quantity_and_may_call_it_a_programme_indicator(
    tmp_path: Path,
) -> None:
    extra = 'mean_limits = { access_delay_ms = 3000.0 }\nprogramme = ["access_delay.mean"]\n'
    profile = load_profiles(_profile(tmp_path, extra))["x"]
    (delay,) = [c for c in criteria(profile, None) if c.id == "access_delay.mean"]
    assert (delay.unit, delay.comparison, delay.threshold) == ("ms", "<=", 3000.0)
    assert delay.part == "programme"
    assert delay.name == "access delay mean <= 3000 ms"


def test_a_limit_on_a_quantity_no_kind_declares_is_refused_by_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mean_limits\.jitter_ms") as raised:
        load_profiles(_profile(tmp_path, "mean_limits = { jitter_ms = 30.0 }\n"))
    assert "access_delay_ms" in raised.value.hint


def test_a_negative_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mean_limits"):
        load_profiles(_profile(tmp_path, "mean_limits = { access_delay_ms = -1.0 }\n"))


def _stats(delays_ms: list[int]) -> AreaStats:
    stats = AreaStats(download=Moments(n=3, total=3 * 5000, total_sq=3 * 5000 * 5000))
    stats.attempts = 3
    for delay in delays_ms:
        stats.quantities.setdefault("access_delay", Moments()).add_value(delay)
    return stats


def test_the_4g_verdict_holds_the_mean_access_delay_to_five_seconds(tmp_path: Path) -> None:
    profile = load_profiles(_profile(tmp_path, "mean_limits = { access_delay_ms = 5000.0 }\n"))
    assert bundled_profiles()["4g"].mean_limits == {"access_delay_ms": 5000.0}
    assert judge(_stats([4000, 5000, 6000]), profile["x"], now=NOW).status == "pass"
    slow = judge(_stats([4000, 6000, 6001]), profile["x"], now=NOW)
    assert slow.status == "fail"
    (judged,) = [c for c in slow.criteria if c.id == "access_delay.mean"]
    assert judged.statistic == pytest.approx(16001 / 3)
    assert judged.passed is False
    too_few = judge(_stats([9000]), profile["x"], now=NOW)
    assert too_few.status == "insufficient-data"
    # Never measured in the window (older probes, a campaign without it): not judged.
    unmeasured = judge(_stats([]), profile["x"], now=NOW)
    assert unmeasured.status == "pass"
    (skipped,) = [c for c in unmeasured.criteria if c.id == "access_delay.mean"]
    assert skipped.skipped is True
    assert skipped.passed is None


def test_a_result_stores_its_declared_quantities_and_ignores_names_nobody_declared() -> None:
    base = sample_result()
    measurements = msgspec.structs.replace(
        base.measurements,
        kinds={
            "access_delay": KindBlock(values={"access_delay": 812.6}),
            "someone_elses": KindBlock(values={"made_up": 1.0}),
        },
    )
    stored = fields(msgspec.structs.replace(base, measurements=measurements))
    assert stored["access_delay_ms"] == 812.6
    assert stored["counted_access_delay_ms"] == 813.0  # whole ms, for exact sums in the store
    assert not any("made_up" in name or "someone" in name for name in stored)
    assert set(stored) <= set(FIELD_NAMES)


@pytest.mark.parametrize(
    "kinds",
    [
        {"access_delay": {"values": {"access_delay": 1e12}}},  # beyond any quantity
        {"access_delay": {"values": {"access_delay": -1.0}}},
        {"access_delay": {"values": {"Access Delay\n": 1.0}}},  # a name that is no series name
        {"x" * 41: {"values": {}}},
        {"access_delay": {"values": {"access_delay": "812"}}},
    ],
)
def test_a_hostile_kind_block_is_refused_naming_where(kinds: dict[str, object]) -> None:
    wire = msgspec.json.decode(encode_result(sample_result()))
    wire["measurements"]["kinds"] = kinds
    with pytest.raises(WireError, match=r"\$\.measurements\.kinds"):
        decode_result(msgspec.json.encode(wire))


def test_evaluate_reads_a_declared_quantity_from_its_column() -> None:
    campaign = parse_campaign(
        [
            "timestamp,download_mbps,access_delay_ms\n",
            "2026-03-01T08:00:00Z,45.0,812.5\n",
            "2026-03-01T09:00:00Z,45.0,\n",
            "2026-03-01T10:00:00Z,45.0,soon\n",
        ]
    )
    assert [sample.values for sample in campaign.samples] == [{"access_delay": 812.5}, {}]
    (bad,) = campaign.bad_rows
    assert bad.line == 4
    assert "access_delay_ms" in bad.reason
