"""What one sample says against the link's QCVN profile, whether the method counts it, and that it
is not yet a verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from uuid6 import uuid7

from agent.verdict import SampleLine, headline, sample_lines
from contract.criteria import criteria, criterion_name
from contract.profiles import bundled_profiles
from contract.result import (
    SCHEMA,
    Clock,
    Latency,
    LatencyStats,
    Link,
    MeasurementError,
    Measurements,
    Provenance,
    Result,
    Target,
    Throughput,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PLAN_300 = {"download_mbps": 300, "upload_mbps": 100}


def _result(
    technology: str,
    mbps: float | None,
    *,
    upload: float | None = None,
    provenance: dict[str, object] | None = None,
    **link: object,
) -> Result:
    access = "fixed" if technology == "ftth" else "mobile"
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id="vn-11-ban-a",
        seq=1,
        started_at=NOW - timedelta(seconds=10),
        finished_at=NOW,
        clock=Clock(synced=True),
        link=msgspec.convert(
            {"interface": "wwan0", "access": access, "technology": technology, "operator": "X"}
            | link,
            Link,
        ),
        target=Target(id="t", address="198.18.0.1", ip_version=4),
        measurements=Measurements(
            download=Throughput(mbps=mbps, bytes=1, duration_s=10.0) if mbps is not None else None,
            upload=Throughput(mbps=upload, bytes=1, duration_s=10.0)
            if upload is not None
            else None,
        ),
        provenance=msgspec.convert(
            {"agent_version": "0", "runner": "http"} | (provenance or {}), Provenance
        ),
    )


def _texts(lines: list[SampleLine]) -> dict[str, SampleLine]:
    return {line.text: line for line in lines}


def test_a_4g_sample_meets_or_misses_the_40_mbps_target_and_is_not_a_verdict() -> None:
    lines = sample_lines(_result("4g", 43.0, setting="indoor"))
    assert lines[0] == (
        "QCVN",
        "meets",
        "download mean ≥ 40 Mb/s: this sample's 43.0 Mb/s meets it",
    )
    assert lines[1] == ("QCVN", "meets", "access failure rate ≤ 5%: this attempt connected")
    last = lines[-1]
    assert last.tone == "info"
    assert "formal 4g verdict needs n ≥ 1,500 counted samples" in last.text
    assert "500 indoor, 500 outdoor_fixed and 500 outdoor_moving" in last.text
    misses = sample_lines(_result("4g", 25.0))[0]
    assert misses == (
        "QCVN",
        "misses",
        "download mean ≥ 40 Mb/s: this sample's 25.0 Mb/s misses it",
    )


def test_the_screen_iterates_the_profiles_criteria_in_their_order() -> None:
    # One definition (contract.criteria) for the collector's engine and this screen.
    profile = bundled_profiles()["5g"]
    result = _result("5g", 120.0, upload=40.0)
    idle = LatencyStats(median_ms=30, p95_ms=40, jitter_ms=2, loss=0, count=10, method="icmp")
    result = msgspec.structs.replace(
        result,
        measurements=msgspec.structs.replace(result.measurements, latency=Latency(idle=idle)),
    )
    names = [criterion_name(criterion, profile) for criterion in criteria(profile, None)]
    shown = [line.text.partition(":")[0] for line in sample_lines(result)[: len(names)]]
    assert shown == names


def test_a_fixed_sample_shows_plan_conformity_and_the_national_target_apart() -> None:
    lines = sample_lines(_result("ftth", 250.0, upload=90.0, plan=PLAN_300))
    plan_download, plan_upload, national = lines[:3]
    assert plan_download == (
        "QCVN 34",
        "meets",
        (
            "plan conformity, download mean ≥ 0.8 x plan (240 Mb/s): "
            "this sample's 250.0 Mb/s meets it"
        ),
    )
    assert plan_upload.tone == "meets"
    assert "upload mean ≥ 0.8 x plan (80 Mb/s): this sample's 90.0 Mb/s meets it" in (
        plan_upload.text
    )
    # Below 1 Gb/s but conforming to its plan: a programme warning, never a failure.
    assert national.heading == "programme"
    assert national.tone == "warning"
    assert national.text.startswith("national target, download mean ≥ 1,000 Mb/s:")
    assert "is below it (a programme indicator, not a failure of the regulation)" in national.text
    assert not [line for line in lines if line.tone == "misses"]
    assert all("fail" not in line.text.replace("failure of", "") for line in lines)


def test_a_fixed_sample_below_its_plan_misses_the_regulation() -> None:
    lines = sample_lines(_result("ftth", 200.0, plan=PLAN_300))
    assert lines[0].tone == "misses"
    assert lines[0].text.endswith("this sample's 200.0 Mb/s misses it")


def test_a_fixed_sample_without_a_plan_asks_for_it() -> None:
    lines = sample_lines(_result("ftth", 1200.0))
    plan_lines = [line for line in lines if line.heading == "QCVN 34"]
    assert [line.tone for line in plan_lines] == ["info", "info"]
    assert all("give --plan DOWN/UP to judge it" in line.text for line in plan_lines)
    national = "national target, download mean ≥ 1,000 Mb/s: this sample's 1,200.0 Mb/s meets it"
    assert _texts(lines)[national].heading == "programme"
    assert "each six-hour part of the day (Vietnam time) holds at least 10%" in lines[-1].text


def test_a_5g_sample_checks_the_minimum_share_and_latency() -> None:
    result = _result("5g", 35.0)
    idle = LatencyStats(
        median_ms=30, p95_ms=40, jitter_ms=2, loss=0, count=10, method="tcp-connect"
    )
    result = msgspec.structs.replace(
        result,
        measurements=msgspec.structs.replace(result.measurements, latency=Latency(idle=idle)),
    )
    texts = _texts(sample_lines(result))
    assert texts["download mean ≥ 100 Mb/s: this sample's 35.0 Mb/s misses it"].tone == "misses"
    share = "share of download samples ≥ 30 Mb/s is ≥ 95%: this sample's 35.0 Mb/s is at or above"
    assert texts[f"{share} 30 Mb/s"].tone == "meets"
    assert texts["latency mean ≤ 50 ms: this sample's 30 ms meets it"].tone == "meets"


def test_a_failed_attempt_counts_as_an_access_failure() -> None:
    error = MeasurementError(stage="download", code="connect-failed", message="refused")
    result = msgspec.structs.replace(_result("4g", None), errors=(error,))
    texts = _texts(sample_lines(result))
    failure = "access failure rate ≤ 5%: this attempt failed and counts as an access failure"
    assert texts[failure].tone == "misses"
    assert texts["a failed attempt: it enters no mean"].heading == "sample"


def test_a_problem_of_the_probe_is_no_attempt_on_the_link() -> None:
    # The collector's rule: only a download that could not run is an access failure.
    error = MeasurementError(stage="bind", code="interface-missing", message="no wwan0")
    lines = sample_lines(msgspec.structs.replace(_result("4g", None), errors=(error,)))
    assert not [line for line in lines if "access failure rate" in line.text]
    assert not [line for line in lines if "the method" in line.text]


def test_a_sample_too_close_to_the_previous_counted_one_would_not_count() -> None:
    lines = sample_lines(_result("4g", 43.0, provenance={"gap_s": 12.5}))
    (method,) = [line for line in lines if line.heading == "sample" and "method" in line.text]
    assert method.tone == "warning"
    assert method.text == (
        "the method would not count this sample: 12.5 s after this link's previous counted "
        "sample, closer than the 4g minimum gap of 30 s (counted as too close)"
    )
    counted = sample_lines(_result("4g", 43.0, provenance={"gap_s": 95.0}))
    assert (
        "sample",
        "info",
        (
            "the method counts this sample (95 s after this link's previous counted sample; "
            "at least 30 s needed)"
        ),
    ) in counted


def test_a_rate_above_the_physical_ceiling_is_implausible() -> None:
    lines = _texts(sample_lines(_result("4g", 99_999.0)))
    implausible = (
        "the method would not count this sample: 99,999.0 Mb/s is above the 4g physical "
        "ceiling of 2,000 Mb/s (implausible); kept as evidence"
    )
    assert lines[implausible].tone == "warning"


def test_a_probe_limited_sample_would_not_count() -> None:
    lines = sample_lines(_result("4g", 43.0, provenance={"probe_limited": True}))
    limited = "the method would not count this sample: probe-limited"
    assert any(line.tone == "warning" and line.text.startswith(limited) for line in lines)


def test_the_setting_is_shown_and_its_absence_is_a_warning_where_a_mix_is_asked() -> None:
    moving = sample_lines(_result("4g", 43.0, setting="outdoor_moving"))
    setting = (
        "setting outdoor_moving: one of the 500 outdoor_moving samples the QCVN method asks for"
    )
    assert _texts(moving)[setting].tone == "info"
    undeclared = [line for line in sample_lines(_result("4g", 43.0)) if "setting" in line.text]
    assert undeclared[0].tone == "warning"
    assert "counts in no part of the QCVN sample mix" in undeclared[0].text
    fixed = _texts(sample_lines(_result("ftth", 300.0, plan=PLAN_300, setting="indoor")))
    assert fixed["setting indoor"].tone == "info"


def test_a_technology_without_a_profile_says_so() -> None:
    assert sample_lines(_result("unknown", 10.0)) == [
        ("QCVN", "info", "no QCVN profile for technology 'unknown'")
    ]


def test_the_headline_judges_only_a_rate_that_is_the_links() -> None:
    assert headline(_result("4g", 52.0)).outcome == "pass"
    assert headline(_result("4g", 31.0)).outcome == "fail"
    # The probe's CPU set these rates, or they are physically impossible: neither ĐẠT nor KHÔNG ĐẠT.
    limited = headline(_result("4g", 31.0, provenance={"probe_limited": True}))
    assert (limited.outcome, limited.profile) == ("not_judged", "4g")
    assert headline(_result("4g", 5000.0)).outcome == "not_judged"
