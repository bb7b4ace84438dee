"""The compliance engine against QCVN.md's worked examples and its verdict rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.compliance import (
    MONITORING_METHOD,
    QCVN_METHOD,
    Estimate,
    Judgement,
    Moments,
    Sample,
    Verdict,
    area_stats,
    evaluate_compliance,
    mean_of_moments,
    wilson_interval,
)
from collector.compliance import (
    judge as judge_stats,
)
from contract.profiles import bundled_profiles
from contract.result import Plan
from contract.sampling import UNITS_PER_MBPS, rate_units

NOW = datetime(2025, 6, 1, tzinfo=UTC)
PROFILES = bundled_profiles()
# Student t quantiles (0.975) from printed tables, so the test does not reuse the engine's scipy.
T_1599 = 1.96145
T_199 = 1.97196
Z = 1.959964


def spread(mean: float, sd: float, n: int) -> list[float]:
    """n values (n even) with exactly this mean and this sample standard deviation."""
    assert n % 2 == 0
    offset = sd * math.sqrt((n - 1) / n)
    return [mean + offset if i % 2 else mean - offset for i in range(n)]


def sd_for_half_width(half_width: float, n: int, t: float) -> float:
    return half_width * math.sqrt(n) / t


def samples(rates: Sequence[float | None], **fields: Any) -> list[Sample]:
    """One sample a minute, the newest at NOW; extra fields apply to every sample."""
    return [
        Sample(timestamp=NOW - timedelta(minutes=i), download_mbps=rate, **fields)
        for i, rate in enumerate(rates)
    ]


def check(verdict: Verdict, check_id: str) -> Judgement:
    (found,) = [c for c in verdict.criteria if c.id == check_id]
    return found


def judge(
    items: Sequence[Sample], profile: str = "4g", plan: Plan | None = None, **kwargs: Any
) -> Verdict:
    return evaluate_compliance(items, PROFILES[profile], now=NOW, plan=plan, **kwargs)


# Worked examples of QCVN.md


def test_example_1_village_mean_43_passes_with_its_interval() -> None:
    sd = sd_for_half_width(0.9, 1600, T_1599)
    verdict = judge(samples(spread(43.0, sd, 1600)))
    assert verdict.status == "pass"
    assert verdict.n == 1600
    assert verdict.n_required == 1500
    assert verdict.mean_download_mbps == pytest.approx(43.0)
    assert verdict.ci_low == pytest.approx(42.1, abs=0.001)
    assert verdict.ci_high == pytest.approx(43.9, abs=0.001)
    assert not verdict.early_warning
    assert verdict.access_failure_rate == 0.0
    assert check(verdict, "download.mean").passed is True
    assert check(verdict, "access_failure").passed is True
    # Samples with no declared setting count in no part of the QCVN 81 sample mix.
    assert verdict.method == MONITORING_METHOD
    assert verdict.sample_mix.outdoor_fixed == 0
    assert verdict.sample_mix.indoor == 0


def test_example_2_village_mean_38_5_fails_even_if_the_interval_reaches_40() -> None:
    verdict = judge(samples(spread(38.5, 40.0, 1600)))
    assert verdict.status == "fail"
    assert verdict.mean_download_mbps == pytest.approx(38.5)
    # Judged on the statistic: the interval reaching past 40 does not move the line.
    assert verdict.ci_high is not None
    assert verdict.ci_high > 40.0
    assert check(verdict, "download.mean").passed is False
    assert not verdict.early_warning


def test_a_mean_just_above_target_passes_even_if_the_interval_dips_below() -> None:
    verdict = judge(samples(spread(40.5, 40.0, 1600)))
    assert verdict.ci_low is not None
    assert verdict.ci_low < 40.0
    assert verdict.status == "pass"


def test_example_3_too_few_samples_well_below_target_gives_early_warning() -> None:
    sd = sd_for_half_width(2.2, 200, T_199)
    verdict = judge(samples(spread(25.0, sd, 200)))
    assert verdict.status == "insufficient-data"
    assert verdict.early_warning
    assert verdict.n == 200
    assert verdict.mean_download_mbps == pytest.approx(25.0)
    assert verdict.ci_low == pytest.approx(22.8, abs=0.001)
    assert verdict.ci_high == pytest.approx(27.2, abs=0.001)
    mean_check = check(verdict, "download.mean")
    assert mean_check.passed is None
    assert mean_check.interval_fails
    assert "200 < 1500" in mean_check.note


def test_too_few_samples_with_interval_spanning_target_gives_no_early_warning() -> None:
    verdict = judge(samples(spread(38.0, 20.0, 200)))
    assert verdict.status == "insufficient-data"
    assert not verdict.early_warning


def test_too_few_samples_above_target_is_still_insufficient() -> None:
    verdict = judge(samples(spread(60.0, 5.0, 200)))
    assert verdict.status == "insufficient-data"
    assert not verdict.early_warning


def test_example_4_mean_of_per_sample_rates_not_total_bytes_over_time() -> None:
    # (bytes, seconds): 10 s at 100 Mb/s and 1 s at 10 Mb/s.
    transfers = [(125_000_000, 10.0), (1_250_000, 1.0)]
    rates = [bytes_ * 8 / 1e6 / seconds for bytes_, seconds in transfers]
    assert rates == pytest.approx([100.0, 10.0])
    verdict = judge(samples(rates))
    assert verdict.mean_download_mbps == pytest.approx(55.0)
    total = sum(b for b, _ in transfers) * 8 / 1e6 / sum(s for _, s in transfers)
    assert total == pytest.approx(91.8, abs=0.05)
    assert verdict.mean_download_mbps != pytest.approx(total)
    assert verdict.status == "insufficient-data"


def fixed_samples(download_mean: float, upload_mean: float, n: int = 1200) -> list[Sample]:
    downloads = spread(download_mean, 30.0, n)
    uploads = spread(upload_mean, 10.0, n)
    return [
        Sample(timestamp=NOW - timedelta(minutes=i), download_mbps=d, upload_mbps=u)
        for i, (d, u) in enumerate(zip(downloads, uploads, strict=True))
    ]


def test_example_5_fixed_plan_conformity_passes_national_target_fails() -> None:
    plan = Plan(download_mbps=300.0, upload_mbps=100.0)
    verdict = judge(fixed_samples(250.0, 90.0), "fixed", plan)
    assert verdict.mean_download_mbps == pytest.approx(250.0)
    assert verdict.plan_download_threshold_mbps == pytest.approx(240.0)
    assert verdict.plan_upload_threshold_mbps == pytest.approx(80.0)
    assert verdict.plan_conformity == "pass"
    assert verdict.national_target == "fail"
    # The regulation (QCVN 34) decides the status; the 1 Gb/s programme target is reported apart.
    assert verdict.status == "pass"
    assert [c.id for c in verdict.criteria] == ["download.mean", "download.plan", "upload.plan"]
    assert check(verdict, "download.plan").passed is True
    assert check(verdict, "download.plan").part == "regulation"
    assert check(verdict, "download.mean").part == "programme"
    assert check(verdict, "download.mean").passed is False
    assert check(verdict, "download.mean").threshold == 1000.0
    assert verdict.mean_upload_mbps == pytest.approx(90.0)
    # QCVN 34 asks for no sample mix: the method is the regulation's.
    assert verdict.method == QCVN_METHOD


def test_fixed_passes_only_when_both_parts_pass() -> None:
    plan = Plan(download_mbps=1000.0, upload_mbps=500.0)
    verdict = judge(fixed_samples(1100.0, 450.0), "fixed", plan)
    assert (verdict.plan_conformity, verdict.national_target) == ("pass", "pass")
    assert verdict.status == "pass"


def test_fixed_below_plan_fails_plan_conformity() -> None:
    plan = Plan(download_mbps=300.0, upload_mbps=100.0)
    verdict = judge(fixed_samples(230.0, 90.0), "fixed", plan)
    assert verdict.plan_conformity == "fail"
    assert check(verdict, "download.plan").passed is False
    assert check(verdict, "upload.plan").passed is True


def test_fixed_without_plan_skips_plan_conformity_and_says_so() -> None:
    verdict = judge(fixed_samples(1100.0, 450.0), "fixed")
    plan_check = check(verdict, "download.plan")
    assert plan_check.skipped
    assert plan_check.passed is None
    assert plan_check.threshold is None
    assert "no single subscribed plan" in plan_check.note
    assert verdict.plan_conformity is None
    assert verdict.plan_download_threshold_mbps is None
    assert verdict.national_target == "pass"
    # Without a plan the regulation cannot be judged, whatever the programme indicator says.
    assert verdict.status == "insufficient-data"


def test_fixed_without_upload_samples_cannot_judge_upload_plan() -> None:
    plan = Plan(download_mbps=300.0, upload_mbps=100.0)
    verdict = judge(samples(spread(250.0, 30.0, 1200)), "fixed", plan)
    assert check(verdict, "upload.plan").note == "no samples to compute it from"
    assert verdict.plan_conformity == "insufficient-data"
    assert verdict.national_target == "fail"
    assert verdict.status == "insufficient-data"


# Window, probe-limited and failed samples


def test_samples_outside_the_window_are_ignored() -> None:
    inside = samples([43.0] * 1500)
    edge = NOW - timedelta(days=30)
    outside = [
        Sample(timestamp=edge, download_mbps=0.0),
        Sample(timestamp=edge - timedelta(days=3), download_mbps=0.0),
        Sample(timestamp=NOW + timedelta(seconds=1), download_mbps=0.0),
        Sample(timestamp=edge, status="failed"),
    ]
    # A minute after the edge: the minimum gap (30 s) runs from the sample at the edge.
    just_inside = Sample(timestamp=edge + timedelta(minutes=1), download_mbps=43.0)
    verdict = judge([*outside, *inside, just_inside])
    assert verdict.n == 1501
    assert verdict.n_attempts == 1501
    assert verdict.n_failed == 0
    assert verdict.mean_download_mbps == pytest.approx(43.0)
    assert verdict.window_start == edge
    assert verdict.window_end == NOW


def test_a_shorter_window_counts_fewer_samples() -> None:
    hourly = [
        Sample(timestamp=NOW - timedelta(hours=i), download_mbps=50.0) for i in range(24 * 10)
    ]
    verdict = judge(hourly, window=timedelta(days=7))
    assert verdict.n == 24 * 7
    assert verdict.window_start == NOW - timedelta(days=7)


def test_probe_limited_samples_are_counted_apart_not_averaged() -> None:
    ok = samples([50.0] * 1500)
    limited = [
        Sample(
            timestamp=NOW - timedelta(seconds=i + 1),
            download_mbps=900.0,
            status="probe_limited",
            device=f"other-{i}",
        )
        for i in range(300)
    ]
    verdict = judge([*ok, *limited])
    assert verdict.n == 1500
    assert verdict.n_probe_limited == 300
    assert verdict.mean_download_mbps == pytest.approx(50.0)
    # A probe-limited sample did connect: it is an attempt, not a failure.
    assert verdict.n_attempts == 1800
    assert verdict.access_failure_rate == 0.0
    assert verdict.status == "pass"


def test_failed_attempts_count_toward_access_failure_not_the_mean() -> None:
    ok = samples([43.0] * 1540)
    failed = [
        Sample(
            timestamp=NOW - timedelta(seconds=i + 1),
            download_mbps=500.0,
            status="failed",
            device=f"other-{i}",
        )
        for i in range(60)
    ]
    verdict = judge([*ok, *failed])
    assert verdict.n == 1540
    assert verdict.n_failed == 60
    assert verdict.mean_download_mbps == pytest.approx(43.0)
    assert verdict.access_failure_rate == pytest.approx(0.0375)
    # Wilson 95 % interval of 60 / 1600, worked by hand.
    assert verdict.access_failure_ci_low == pytest.approx(0.02924, abs=1e-5)
    assert verdict.access_failure_ci_high == pytest.approx(0.04797, abs=1e-5)
    assert verdict.status == "pass"


def test_access_failure_above_five_percent_fails_alone() -> None:
    ok = samples([43.0] * 1500)
    failed = [
        Sample(timestamp=NOW - timedelta(seconds=i + 1), status="failed", device=f"other-{i}")
        for i in range(100)
    ]
    verdict = judge([*ok, *failed])
    assert verdict.access_failure_rate == pytest.approx(100 / 1600)
    assert check(verdict, "access_failure").passed is False
    assert check(verdict, "download.mean").passed is True
    assert verdict.status == "fail"


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(3, 0) is None
    # Wilson bounds are the roots of (share - p)^2 = z^2 p (1 - p) / n.
    low, high = wilson_interval(60, 1600) or (0.0, 0.0)
    for bound in (low, high):
        assert (0.0375 - bound) ** 2 == pytest.approx(Z * Z * bound * (1 - bound) / 1600, rel=1e-4)


def mean_with_interval(rates: list[float]) -> Estimate:
    """The engine's mean and interval of these rates (taken to 0.01 Mb/s, as samples are)."""
    moments = Moments()
    for rate in rates:
        moments.add_value(rate_units(rate))
    return mean_of_moments(moments, UNITS_PER_MBPS)


def test_mean_interval_known_values() -> None:
    estimate = mean_with_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert estimate.value == 3.0
    assert estimate.ci_low == pytest.approx(1.0368, abs=1e-4)
    assert estimate.ci_high == pytest.approx(4.9632, abs=1e-4)
    single = mean_with_interval([7.0])
    assert (single.value, single.ci_low, single.ci_high) == (7.0, None, None)
    assert mean_with_interval([]).value is None


def test_no_samples_at_all_is_insufficient_without_warning() -> None:
    verdict = judge([])
    assert verdict.status == "insufficient-data"
    assert verdict.n == 0
    assert verdict.mean_download_mbps is None
    assert verdict.ci_low is None
    assert not verdict.early_warning


# 4G draft share rule and 5G


def test_draft_2023_share_rule_passes_at_96_percent() -> None:
    verdict = judge(samples([40.0] * 1536 + [20.0] * 64), "4g-draft-2023")
    # Exactly 40 Mb/s is "at or above".
    assert verdict.share_at_or_above_min == pytest.approx(0.96)
    assert verdict.share_min_mbps == 40.0
    assert verdict.share_required == 0.95
    assert verdict.status == "pass"


def test_draft_2023_share_rule_fails_at_94_percent_whatever_the_mean() -> None:
    verdict = judge(samples([60.0] * 1504 + [39.9] * 96), "4g-draft-2023")
    assert verdict.share_at_or_above_min == pytest.approx(0.94)
    assert verdict.mean_download_mbps is not None
    assert verdict.mean_download_mbps > 40.0
    assert verdict.share_ci_low == pytest.approx(0.9273, abs=1e-4)
    assert verdict.share_ci_high == pytest.approx(0.9506, abs=1e-4)
    assert check(verdict, "download.share").passed is False
    assert verdict.status == "fail"


def test_draft_2023_share_early_warning_uses_the_wilson_upper_bound() -> None:
    verdict = judge(samples([45.0] * 50 + [10.0] * 50), "4g-draft-2023")
    assert verdict.status == "insufficient-data"
    assert verdict.share_ci_high is not None
    assert verdict.share_ci_high < 0.95
    assert verdict.early_warning


def test_the_4g_plan_profile_has_no_share_figures() -> None:
    verdict = judge(samples([43.0] * 10))
    assert verdict.share_at_or_above_min is None
    assert verdict.share_ci_low is None
    assert verdict.mean_upload_mbps is None
    assert verdict.mean_latency_ms is None


SETTINGS = ("indoor", "outdoor_fixed", "outdoor_moving")


def five_g_samples(
    *,
    downloads: Sequence[float] | None = None,
    upload: float = 40.0,
    rtt: float | None = 30.0,
    n: int = 1500,
    settings: Sequence[str] = SETTINGS,
) -> list[Sample]:
    rates = downloads if downloads is not None else spread(150.0, 20.0, n)
    return [
        msgspec.convert(
            {
                "timestamp": NOW - timedelta(minutes=i),
                "download_mbps": rate,
                "upload_mbps": upload,
                "rtt_ms": rtt,
                "setting": settings[i % len(settings)],
            },
            Sample,
        )
        for i, rate in enumerate(rates)
    ]


def test_5g_meeting_every_criterion_with_the_sample_mix_passes_by_the_qcvn_method() -> None:
    verdict = judge(five_g_samples(), "5g")
    assert verdict.status == "pass"
    assert {c.id: c.passed for c in verdict.criteria} == {
        "download.mean": True,
        "download.share": True,
        "upload.mean": True,
        "access_failure": True,
        "latency.mean": True,
    }
    assert verdict.mean_upload_mbps == pytest.approx(40.0)
    assert verdict.mean_latency_ms == pytest.approx(30.0)
    assert verdict.sample_mix.indoor == 500
    assert verdict.sample_mix.outdoor_moving == 500
    assert verdict.method == QCVN_METHOD


def test_5g_low_upload_fails_that_criterion_only() -> None:
    verdict = judge(five_g_samples(upload=25.0), "5g")
    assert verdict.status == "fail"
    assert [c.id for c in verdict.criteria if c.passed is False] == ["upload.mean"]


def test_5g_high_latency_fails() -> None:
    verdict = judge(five_g_samples(rtt=60.0), "5g")
    assert verdict.status == "fail"
    assert [c.id for c in verdict.criteria if c.passed is False] == ["latency.mean"]


def test_5g_share_below_30_fails_despite_a_high_mean() -> None:
    verdict = judge(five_g_samples(downloads=[300.0] * 1350 + [20.0] * 150), "5g")
    assert verdict.mean_download_mbps == pytest.approx(272.0)
    assert verdict.share_at_or_above_min == pytest.approx(0.9)
    assert [c.id for c in verdict.criteria if c.passed is False] == ["download.share"]


def test_5g_without_latency_samples_is_insufficient() -> None:
    verdict = judge(five_g_samples(rtt=None), "5g")
    assert verdict.status == "insufficient-data"
    assert check(verdict, "latency.mean").note == "no samples to compute it from"


def test_5g_fixed_point_samples_only_is_monitoring() -> None:
    verdict = judge(five_g_samples(settings=("outdoor_fixed",)), "5g")
    assert verdict.status == "pass"
    assert verdict.method == MONITORING_METHOD


# Grouping and input checks


def test_statistics_of_two_areas_add_up_to_those_of_their_union() -> None:
    first = samples(spread(43.0, 5.0, 800))
    second = [
        msgspec.structs.replace(s, timestamp=s.timestamp - timedelta(days=1))
        for s in samples(spread(30.0, 5.0, 800))
    ]
    profile = PROFILES["4g"]
    pooled = area_stats(first, profile, now=NOW)
    pooled.add(area_stats(second, profile, now=NOW))
    assert pooled == area_stats(first + second, profile, now=NOW)
    assert judge_stats(pooled, profile, now=NOW) == evaluate_compliance(
        first + second, profile, now=NOW
    )


def test_naive_times_are_refused() -> None:
    naive = datetime(2025, 6, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="time zone"):
        evaluate_compliance([], PROFILES["4g"], now=naive)
    with pytest.raises(ValueError, match="time zone"):
        judge([Sample(timestamp=naive, download_mbps=1.0)])
    with pytest.raises(ValueError, match="positive"):
        judge([], window=timedelta(0))


# Properties

# Up to 4G's physical ceiling (2 Gb/s); above it a sample is implausible, tested apart.
rates_strategy = st.lists(
    st.floats(min_value=0.0, max_value=2_000.0, allow_nan=False), min_size=1, max_size=60
)


@given(rates=rates_strategy, n_required=st.integers(min_value=1, max_value=80))
def test_mean_interval_and_status_properties(rates: list[float], n_required: int) -> None:
    profile = msgspec.structs.replace(PROFILES["4g"], n_required=n_required)
    verdict = evaluate_compliance(samples(rates), profile, now=NOW)
    assert verdict.n == len(rates)
    mean = verdict.mean_download_mbps
    assert mean is not None
    # Rates are taken to 0.01 Mb/s (whole units, so sums are exact).
    assert min(rates) - 0.005 <= mean <= max(rates) + 0.005
    if len(rates) >= 2:
        assert verdict.ci_low is not None
        assert verdict.ci_high is not None
        assert verdict.ci_low <= mean <= verdict.ci_high
    else:
        assert verdict.ci_low is None
    if len(rates) < n_required:
        assert verdict.status == "insufficient-data"
    else:
        assert verdict.status == ("pass" if mean >= 40.0 else "fail")
        assert not verdict.early_warning


@given(
    rates=rates_strategy,
    share_min=st.floats(min_value=0.1, max_value=10_000.0, allow_nan=False),
)
def test_share_properties(rates: list[float], share_min: float) -> None:
    profile = msgspec.structs.replace(
        PROFILES["4g-draft-2023"],
        download=msgspec.structs.replace(
            PROFILES["4g-draft-2023"].download or pytest.fail("profile lost its download target"),
            share_min_mbps=share_min,
        ),
    )
    verdict = evaluate_compliance(samples(rates), profile, now=NOW)
    share = verdict.share_at_or_above_min
    at_or_above = sum(1 for r in rates if rate_units(r) >= rate_units(share_min))
    assert share == at_or_above / len(rates)
    assert verdict.share_ci_low is not None
    assert verdict.share_ci_high is not None
    assert 0.0 <= verdict.share_ci_low <= share <= verdict.share_ci_high <= 1.0
