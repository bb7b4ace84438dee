"""Per-area verdicts from the store's rollups: the queries, their answers back into statistics,
and every level judged from the pooled statistics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from collector import verdicts as verdicts_module
from collector.compliance import AreaStats, Sample, area_stats
from collector.series import AREA_LABELS, plan_label, sample_fields
from collector.store import StoreWriter
from collector.verdicts import (
    Area,
    _Vector,
    areas_of,
    judge_areas,
    rollups,
    stats_from_rollups,
    verdict_line,
)
from contract.errors import ServiceError
from contract.profiles import bundled_profiles
from contract.result import Plan
from tests.strategies import sample_result

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
PROFILES = bundled_profiles()
VILLAGE_A = {"province": "11", "commune": "03211", "village": "Bản Nà Hin", "technology": "4g",
             "operator": "Viettel", "setting": "indoor", "plan": ""}  # fmt: skip
VILLAGE_B = VILLAGE_A | {"village": "Bản Mường"}


def key(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels[name] for name in AREA_LABELS)


def stats(labels: dict[str, str], rates: list[float]) -> AreaStats:
    """An area group's statistics as the offline engine sums them."""
    samples = [
        Sample(
            timestamp=NOW - timedelta(minutes=10 * (i + 1)), download_mbps=rate, upload_mbps=rate
        )
        for i, rate in enumerate(rates)
    ]
    technology = labels["technology"]
    profile = PROFILES["fixed" if technology == "ftth" else technology]
    plan = None
    if labels["plan"]:
        download, _, upload = labels["plan"].partition("/")
        plan = Plan(download_mbps=float(download), upload_mbps=float(upload))
    found = area_stats(samples, profile, now=NOW, plan=plan)
    found.mix = {labels["setting"]: found.download.n}
    return found


def test_a_sample_counts_in_its_village_commune_province_and_nation() -> None:
    levels = [area.level for area in areas_of(VILLAGE_A)]
    assert levels == ["village", "commune", "province", "nation"]
    assert list(areas_of(VILLAGE_A))[1] == Area("commune", "11", "03211", "", "4g", "Viettel")


def test_rollups_group_by_area_and_never_export_raw_samples() -> None:
    queries = {rollup.name: rollup.expression for rollup in rollups(PROFILES, timedelta(days=30))}
    assert set(queries) == {
        "class",
        "day_part",
        "download",
        "upload",
        "latency",
        "quantity.access_delay",
        "at_or_above.3000",
    }
    # Access delay, declared by its kind and limited by the 4G profile: moments of whole ms.
    assert '"sum2_over_time"), qos_counted_access_delay_ms[' in queries["quantity.access_delay"]
    assert "histogram_over_time(qos_sample_class[2592000000ms])" in queries["class"]
    assert '"sum2_over_time"), qos_counted_latency_10us[' in queries["latency"]
    # 5G's share rule (>= 30 Mb/s): whole units, so > 2999.5 is >= 3000.
    share = queries["at_or_above.3000"]
    assert 'count_gt_over_time(qos_counted_download_10kbps{technology=~"5g"}' in share
    assert ", 2999.5)" in share
    for expression in queries.values():
        assert expression.startswith(f"sum by ({','.join(AREA_LABELS)}")
        assert "export" not in expression


def test_answers_become_each_groups_statistics() -> None:
    def vector(value: str, **labels: str) -> _Vector:
        return _Vector(VILLAGE_A | labels, (0.0, value))

    answers = {
        "class": [
            vector("3", vmrange="8.799e-01...1.000e+00"),  # 1 counted
            vector("1", vmrange="1.896e+00...2.154e+00"),  # 2 failed
            vector("2", vmrange="4.642e+00...5.275e+00"),  # 5 too close
        ],
        "download": [
            vector("3", rollup="count_over_time"),
            vector("12000", rollup="sum_over_time"),
            vector("48020000", rollup="sum2_over_time"),
        ],
        "day_part": [vector("3", vmrange="2.783e+00...3.162e+00")],  # 3: 12-18
        "at_or_above.4000": [vector("2")],
    }
    found = stats_from_rollups(answers)[key(VILLAGE_A)]
    assert (found.attempts, found.failed, found.too_close) == (4, 1, 2)
    assert (found.download.n, found.download.total, found.download.total_sq) == (
        3, 12000, 48020000,
    )  # fmt: skip
    assert found.mix == {"indoor": 3}
    assert found.day_parts == [0, 0, 3, 0]
    assert found.at_or_above == {4000: 2}
    assert found.plans == {None}


def test_a_bucket_without_one_whole_number_is_refused() -> None:
    answers = {"class": [_Vector(VILLAGE_A | {"vmrange": "1.0e+00...3.0e+00"}, (0.0, "1"))]}
    with pytest.raises(ServiceError, match="no single whole number"):
        stats_from_rollups(answers)


def test_an_inexact_sum_is_refused_not_judged() -> None:
    answers = {"download": [_Vector(VILLAGE_A | {"rollup": "sum2_over_time"}, (0.0, "1e17"))]}
    with pytest.raises(ServiceError, match="not an exact whole number"):
        stats_from_rollups(answers)


def test_commune_pools_its_villages_and_each_village_is_judged_alone() -> None:
    # 800 samples at 30 Mb/s in A and 800 at 60 Mb/s in B: each village lacks n (1,500),
    # the commune has 1,600 with a mean of 45 -> pass, though village A alone is far below.
    groups = {
        key(VILLAGE_A): stats(VILLAGE_A, [29.0, 31.0] * 400),
        key(VILLAGE_B): stats(VILLAGE_B, [59.0, 61.0] * 400),
    }
    verdicts = judge_areas(groups, PROFILES, now=NOW)
    village_a = verdicts[Area("village", "11", "03211", "Bản Nà Hin", "4g", "Viettel")]
    assert village_a.status == "insufficient-data"
    assert village_a.early_warning is True
    commune = verdicts[Area("commune", "11", "03211", "", "4g", "Viettel")]
    assert commune.status == "pass"
    assert commune.n == 1600
    assert commune.mean_download_mbps == 45.0
    assert commune.sample_mix.indoor == 1600
    assert verdicts[Area("nation", "", "", "", "4g", "Viettel")].n == 1600


def test_plan_is_used_only_where_one_plan_applies() -> None:
    fixed = {"province": "79", "commune": "26734", "village": "Ấp Thạnh Hòa", "setting": "",
             "technology": "ftth", "operator": "VNPT",
             "plan": plan_label(Plan(download_mbps=300, upload_mbps=300))}  # fmt: skip
    other = fixed | {
        "village": "Ấp Bình",
        "plan": plan_label(Plan(download_mbps=100, upload_mbps=100)),
    }
    groups = {key(fixed): stats(fixed, [250.0] * 1200), key(other): stats(other, [90.0] * 1200)}
    verdicts = judge_areas(groups, PROFILES, now=NOW)
    village = verdicts[Area("village", "79", "26734", "Ấp Thạnh Hòa", "ftth", "VNPT")]
    assert village.plan_download_threshold_mbps == 240.0
    assert village.plan_conformity == "pass"
    assert village.status == "pass"  # the regulation: QCVN 34 plan conformity
    assert village.national_target == "fail"  # the programme indicator, apart
    commune = verdicts[Area("commune", "79", "26734", "", "ftth", "VNPT")]
    assert commune.plan_download_threshold_mbps is None
    assert commune.status == "insufficient-data"


def test_a_conforming_fixed_line_below_1_gbps_is_stored_as_passing() -> None:
    fixed = {"province": "79", "commune": "26734", "village": "Ấp Thạnh Hòa", "setting": "",
             "technology": "ftth", "operator": "VNPT",
             "plan": plan_label(Plan(download_mbps=300, upload_mbps=300))}  # fmt: skip
    verdicts = judge_areas({key(fixed): stats(fixed, [250.0] * 1200)}, PROFILES, now=NOW)
    area = Area("village", "79", "26734", "Ấp Thạnh Hòa", "ftth", "VNPT")
    line = verdict_line(area, verdicts[area], PROFILES["fixed"], NOW)
    assert "status=1.0" in line
    assert "plan_status=1.0" in line
    assert "national_target_status=0.0" in line
    assert "target_download_mbps=240.0" in line
    assert "national_target_download_mbps=1000.0" in line


def test_technology_without_a_profile_is_left_out() -> None:
    unknown = VILLAGE_A | {"technology": "unknown"}
    groups = {key(unknown): stats(VILLAGE_A, [10.0] * 5)}
    assert judge_areas(groups, PROFILES, now=NOW) == {}


def test_a_light_test_is_not_an_attempt_and_a_failed_download_is() -> None:
    result = sample_result()
    light = result.__class__(
        **{f: getattr(result, f) for f in result.__struct_fields__ if f != "measurements"},
        measurements=result.measurements.__class__(),
    )
    assert sample_fields(light, PROFILES["4g"]) == {}
    assert sample_fields(result, PROFILES["4g"])["sample_class"] == 1.0
    assert sample_fields(result, PROFILES["4g"])["counted_download_10kbps"] == 4300.0


async def test_an_unexpected_error_in_a_refresh_never_stops_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    async def broken(*_args: object, **_kwargs: object) -> dict[Area, object]:
        calls.append(1)
        if len(calls) >= 3:
            raise asyncio.CancelledError
        raise RuntimeError("a bug")

    monkeypatch.setattr(verdicts_module, "refresh_verdicts", broken)
    writer = StoreWriter("http://127.0.0.1:9")
    try:
        with pytest.raises(asyncio.CancelledError):
            await verdicts_module.keep_verdicts_fresh(writer, PROFILES, interval_s=0.0)
    finally:
        await writer.close()
    assert len(calls) == 3
