"""Per-area verdicts from stored series: joining fields back into samples, judging every level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.compliance import Sample
from collector.verdicts import (
    Area,
    ExportedSeries,
    StoredSample,
    areas_of,
    judge_areas,
    samples_from_export,
)
from contract.profiles import bundled_profiles
from contract.result import Plan

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
VILLAGE_A = {"province": "11", "commune": "03211", "village": "Bản Nà Hin",
             "technology": "4g", "operator": "Viettel"}  # fmt: skip
VILLAGE_B = VILLAGE_A | {"village": "Bản Mường"}


def _stored(
    labels: dict[str, str], rates: list[float], *, plan: Plan | None = None
) -> list[StoredSample]:
    return [
        StoredSample(
            labels | {"probe": f"p-{labels['village']}"},
            Sample(timestamp=NOW - timedelta(minutes=10 * (i + 1)), download_mbps=rate),
            plan,
        )
        for i, rate in enumerate(rates)
    ]


def test_a_sample_counts_in_its_village_commune_province_and_nation() -> None:
    levels = [area.level for area in areas_of(VILLAGE_A)]
    assert levels == ["village", "commune", "province", "nation"]
    assert list(areas_of(VILLAGE_A))[1] == Area("commune", "11", "03211", "", "4g", "Viettel")


def test_fields_of_one_result_are_joined_into_one_sample() -> None:
    labels = {"probe": "p1", **VILLAGE_A}
    t1, t2 = 1_795_000_000_000, 1_795_000_600_000
    series = [
        ExportedSeries({"__name__": "qos_download_mbps", **labels}, [41.5], [t1]),
        ExportedSeries({"__name__": "qos_attempt_failed", **labels}, [0.0, 1.0], [t1, t2]),
        ExportedSeries({"__name__": "qos_probe_limited", **labels}, [0.0, 0.0], [t1, t2]),
        ExportedSeries({"__name__": "qos_latency_idle_median_ms", **labels}, [23.0], [t1]),
    ]
    samples = sorted(samples_from_export(series), key=lambda s: s.sample.timestamp)
    assert [s.sample.status for s in samples] == ["ok", "failed"]
    assert samples[0].sample.download_mbps == 41.5
    assert samples[0].sample.rtt_ms == 23.0
    assert samples[1].sample.download_mbps is None
    assert samples[0].labels == labels


def test_commune_pools_its_villages_and_each_village_is_judged_alone() -> None:
    # 800 samples at 30 Mb/s in A and 800 at 60 Mb/s in B: each village lacks n (1,500),
    # the commune has 1,600 with a mean of 45 -> pass, though village A alone is far below.
    samples = _stored(VILLAGE_A, [29.0, 31.0] * 400) + _stored(VILLAGE_B, [59.0, 61.0] * 400)
    verdicts = judge_areas(samples, bundled_profiles(), now=NOW)
    village_a = verdicts[Area("village", "11", "03211", "Bản Nà Hin", "4g", "Viettel")]
    assert village_a.status == "insufficient-data"
    assert village_a.early_warning is True
    commune = verdicts[Area("commune", "11", "03211", "", "4g", "Viettel")]
    assert commune.status == "pass"
    assert commune.n == 1600
    assert commune.mean_download_mbps is not None
    assert abs(commune.mean_download_mbps - 45.0) < 1e-9
    assert verdicts[Area("nation", "", "", "", "4g", "Viettel")].n == 1600


def test_plan_is_used_only_where_one_plan_applies() -> None:
    fixed = {"province": "79", "commune": "26734", "village": "Ấp Thạnh Hòa",
             "technology": "ftth", "operator": "VNPT"}  # fmt: skip
    other = fixed | {"village": "Ấp Bình"}
    samples = _stored(fixed, [250.0] * 1200, plan=Plan(download_mbps=300, upload_mbps=300))
    samples += _stored(other, [90.0] * 1200, plan=Plan(download_mbps=100, upload_mbps=100))
    verdicts = judge_areas(samples, bundled_profiles(), now=NOW)
    village = verdicts[Area("village", "79", "26734", "Ấp Thạnh Hòa", "ftth", "VNPT")]
    assert village.plan_download_threshold_mbps == 240.0
    assert village.national_target == "fail"
    commune = verdicts[Area("commune", "79", "26734", "", "ftth", "VNPT")]
    assert commune.plan_download_threshold_mbps is None


def test_technology_without_a_profile_is_left_out() -> None:
    samples = _stored(VILLAGE_A | {"technology": "unknown"}, [10.0] * 5)
    assert judge_areas(samples, bundled_profiles(), now=NOW) == {}


def test_a_light_test_is_not_an_attempt_and_a_failed_download_is() -> None:
    labels = {"probe": "p1", **VILLAGE_A}
    light, failed = 1_795_000_000_000, 1_795_000_600_000
    series = [
        ExportedSeries({"__name__": "qos_latency_idle_median_ms", **labels}, [23.0], [light]),
        ExportedSeries({"__name__": "qos_attempt_failed", **labels}, [0.0, 1.0], [light, failed]),
    ]
    samples = samples_from_export(series)
    assert [s.sample.status for s in samples] == ["failed"]
