"""What one sample says against the link's QCVN profile, and that it is not yet a verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from uuid6 import uuid7

from agent.verdict import sample_lines
from contract.result import (
    SCHEMA,
    Clock,
    Latency,
    LatencyStats,
    Link,
    MeasurementError,
    Measurements,
    Plan,
    Provenance,
    Result,
    Target,
    Throughput,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _result(technology: str, mbps: float | None, **link: object) -> Result:
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
            download=Throughput(mbps=mbps, bytes=1, duration_s=10.0) if mbps is not None else None
        ),
        provenance=Provenance(agent_version="0", runner="http"),
    )


def test_a_4g_sample_meets_or_misses_the_40_mbps_target_and_is_not_a_verdict() -> None:
    meets, last = sample_lines(_result("4g", 43.0))
    assert meets == (True, "this sample's download 43.0 Mb/s meets the 4g target of 40 Mb/s")
    assert last.meets is None
    assert "formal 4g verdict needs n ≥ 1,500 samples" in last.text
    misses = sample_lines(_result("4g", 25.0))[0]
    assert misses == (False, "this sample's download 25.0 Mb/s misses the 4g target of 40 Mb/s")


def test_a_fixed_sample_is_judged_against_the_plan_and_the_national_target() -> None:
    plan = Plan(download_mbps=300, upload_mbps=300)
    lines = sample_lines(_result("ftth", 250.0, plan=msgspec.to_builtins(plan)))
    assert [line.meets for line in lines] == [False, True, None]
    assert "misses the fixed target of 1000 Mb/s" in lines[0].text
    assert "meets 80% of the plan's 300 Mb/s (240 Mb/s)" in lines[1].text


def test_a_5g_sample_checks_the_minimum_share_and_latency() -> None:
    result = _result("5g", 35.0)
    idle = LatencyStats(
        median_ms=30, p95_ms=40, jitter_ms=2, loss=0, count=10, method="tcp-connect"
    )
    result = msgspec.structs.replace(
        result,
        measurements=msgspec.structs.replace(result.measurements, latency=Latency(idle=idle)),
    )
    texts = {line.text: line.meets for line in sample_lines(result)}
    assert texts["this sample's download 35.0 Mb/s misses the 5g target of 100 Mb/s"] is False
    assert texts["this sample is at or above the 30 Mb/s download minimum (95% of samples must be)"]
    assert texts["this sample's latency 30 ms meets the 5g limit of 50 ms"]


def test_a_failed_attempt_counts_as_an_access_failure() -> None:
    error = MeasurementError(stage="download", code="connect-failed", message="refused")
    result = msgspec.structs.replace(_result("4g", None), errors=(error,))
    first = sample_lines(result)[0]
    assert first == (
        False,
        "this attempt failed: it counts as an access failure (at most 5% allowed)",
    )


def test_a_technology_without_a_profile_says_so() -> None:
    assert sample_lines(_result("unknown", 10.0)) == [
        (None, "no QCVN profile for technology 'unknown'")
    ]
