"""Live and offline verdicts agree: the same samples, judged from a real VictoriaMetrics' rollups
and by `evaluate`'s engine, give the same status, counts, means and intervals.

Samples are random (hypothesis): several devices, gaps below and above the profile's minimum,
exact duplicates, failed, probe-limited, unconverged (a rate still climbing when its test ended,
the download's or the upload's) and implausible attempts, every setting, 4G, 5G and fixed
lines with a plan, access delays (a quantity its kind declares, limited by the 4G profile) or
none. Live, each becomes a Result whose gap the probe's own code (agent.state) keeps,
written through the collector's write path (collector/series.py, StoreWriter).
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uuid6 import uuid7

from agent.state import sample_gap
from collector.compliance import Sample, Verdict, evaluate_compliance
from collector.store import StoreWriter, result_line
from collector.verdicts import Area, judge_window
from contract.profiles import bundled_profiles, load_profiles, profile_for
from contract.result import (
    SCHEMA,
    Clock,
    KindBlock,
    Latency,
    LatencyStats,
    Link,
    Location,
    MeasurementError,
    Measurements,
    Plan,
    Provenance,
    Result,
    Target,
    Throughput,
)
from lab.services import VictoriaMetrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
WINDOW = timedelta(days=1)
PROFILES = bundled_profiles()
PLAN = Plan(download_mbps=300.0, upload_mbps=100.0)
_operators = itertools.count()

Status = Literal["ok", "failed", "probe_limited", "unconverged"]
# Gaps between a device's attempts, in ms: duplicates, inside and at the 30 s minimum, ordinary.
GAPS_MS = st.one_of(
    st.sampled_from([0, 1, 10_000, 29_999, 30_000, 30_001]),
    st.integers(min_value=0, max_value=4 * 3_600_000),
)
RATES = st.one_of(
    st.floats(min_value=0.01, max_value=1500.0, allow_nan=False).map(lambda r: round(r, 3)),
    st.sampled_from([30.0, 39.99, 40.0, 100.0, 240.0, 2500.0]),  # thresholds; above 4G's ceiling
)
ATTEMPT = st.tuples(
    GAPS_MS,
    st.sampled_from(["ok", "ok", "ok", "failed", "probe_limited", "unconverged"]),
    RATES,
    st.one_of(st.none(), RATES),
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=900.0).map(lambda r: round(r, 2))),
    st.sampled_from([None, "indoor", "outdoor_fixed", "outdoor_moving"]),
    st.one_of(
        st.none(),
        st.floats(min_value=0.0, max_value=30_000.0).map(lambda ms: round(ms, 3)),
        st.sampled_from([4999.5, 5000.0, 5000.49]),  # around the 4G limit and a whole-ms edge
    ),
)


def result_of(
    *,
    probe: str,
    technology: str,
    operator: str,
    finished_at: datetime,
    status: Status,
    download: float,
    upload: float | None,
    rtt: float | None,
    setting: str | None,
    gap: float | None,
    access_delay_ms: float | None = None,
) -> Result:
    fixed = technology == "ftth"
    failed = status == "failed"
    # Unconverged: the upload's block says so where there is one, else the download's.
    unconverged = status == "unconverged"
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id=probe,
        seq=1,
        started_at=finished_at - timedelta(seconds=8),
        finished_at=finished_at,
        clock=Clock(synced=True),
        location=Location(
            province_code="79", commune_code="26734", village="Ấp Một", lat=10.7, lon=106.7
        ),
        link=Link(
            interface="eth0" if fixed else "wwan0",
            access="fixed" if fixed else "mobile",
            technology=technology,  # type: ignore[arg-type]
            operator=operator,
            plan=PLAN if fixed else None,
            setting=setting,  # type: ignore[arg-type]
        ),
        target=Target(id="hcm1", address="198.18.0.1", ip_version=4),
        measurements=Measurements(
            download=None
            if failed
            else Throughput(
                mbps=download,
                bytes=int(download * 1e6),
                duration_s=8.0,
                converged=not unconverged or upload is not None,
            ),
            upload=None
            if failed or upload is None
            else Throughput(
                mbps=upload, bytes=int(upload * 1e6), duration_s=8.0, converged=not unconverged
            ),
            latency=None
            if failed or rtt is None
            else Latency(
                idle=LatencyStats(
                    median_ms=rtt, p95_ms=rtt, jitter_ms=0.0, loss=0.0, count=10, method="icmp"
                )
            ),
            kinds={}
            if access_delay_ms is None
            else {"access_delay": KindBlock(values={"access_delay": access_delay_ms})},
        ),
        provenance=Provenance(
            agent_version="0.1.0",
            runner="http",
            probe_limited=status == "probe_limited",
            gap_s=gap,
        ),
        errors=(MeasurementError(stage="download", code="connect-failed", message="refused"),)
        if failed
        else (),
    )


def _same(live: float | None, offline: float | None) -> bool:
    if live is None or offline is None:
        return live is offline
    return abs(live - offline) <= 1e-9 * max(1.0, abs(offline))


def assert_same(live: Verdict, offline: Verdict) -> None:
    for name in (
        "status",
        "early_warning",
        "method",
        "n",
        "n_attempts",
        "n_failed",
        "n_probe_limited",
        "n_unconverged",
        "n_implausible",
        "n_too_close",
        "n_upload",
        "n_latency",
        "plan_conformity",
        "national_target",
        "sample_mix",
        "day_parts",
    ):
        assert getattr(live, name) == getattr(offline, name), name
    for name in (
        "mean_download_mbps",
        "ci_low",
        "ci_high",
        "share_at_or_above_min",
        "share_ci_low",
        "share_ci_high",
        "access_failure_rate",
        "mean_upload_mbps",
        "upload_ci_low",
        "upload_ci_high",
        "mean_latency_ms",
        "latency_ci_low",
        "latency_ci_high",
    ):
        assert _same(getattr(live, name), getattr(offline, name)), name
    for judged_live, judged_offline in zip(live.criteria, offline.criteria, strict=True):
        assert judged_live.id == judged_offline.id
        assert (judged_live.passed, judged_live.skipped, judged_live.n) == (
            judged_offline.passed,
            judged_offline.skipped,
            judged_offline.n,
        ), judged_live.id
        for name in ("statistic", "ci_low", "ci_high"):
            live_value, offline_value = getattr(judged_live, name), getattr(judged_offline, name)
            assert _same(live_value, offline_value), (judged_live.id, name)


async def _live(store: VictoriaMetrics, results: list[Result]) -> dict[Area, Verdict]:
    writer = StoreWriter(store.url)
    try:
        await writer.write_lines([result_line(r, None, PROFILES) for r in results])
        store.flush()
        async with aiohttp.ClientSession() as session:
            return await judge_window(session, store.url, PROFILES, now=NOW, window=WINDOW)
    finally:
        await writer.close()


def test_live_and_offline_verdicts_agree(store: VictoriaMetrics) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        technology=st.sampled_from(["4g", "5g", "ftth"]),
        devices=st.lists(st.lists(ATTEMPT, min_size=1, max_size=40), min_size=1, max_size=3),
        start_offset_s=st.sampled_from([0, 1, 3_600, 20 * 3_600, 86_400]),
    )
    def check(
        technology: str, devices: list[list[tuple[object, ...]]], start_offset_s: int
    ) -> None:
        operator = f"Nhà mạng {next(_operators)}"
        profile = profile_for(technology, PROFILES)
        assert profile is not None
        samples: list[Sample] = []
        for index, attempts in enumerate(devices):
            # Back from the window's end, so some attempts fall before the window starts.
            moment = NOW - timedelta(seconds=start_offset_s)
            for gap_ms, status, download, upload, rtt, setting, delay in attempts:
                moment -= timedelta(milliseconds=gap_ms)  # type: ignore[arg-type]
                failed = status == "failed"
                sample = Sample(
                    timestamp=moment,
                    download_mbps=None if failed else download,  # type: ignore[arg-type]
                    upload_mbps=None if failed else upload,  # type: ignore[arg-type]
                    rtt_ms=None if failed else rtt,  # type: ignore[arg-type]
                    status=status,  # type: ignore[arg-type]
                    setting=setting,  # type: ignore[arg-type]
                    device=f"vn-79-p{index}",
                    technology=technology,
                    values={} if failed or delay is None else {"access_delay": delay},  # type: ignore[dict-item]
                )
                # A zero gap is the same sample again (same device and time: a duplicate).
                samples.append(samples[-1] if gap_ms == 0 and samples else sample)
        results: list[Result] = []
        unique = {(s.device, s.timestamp): s for s in reversed(samples)}
        with tempfile.TemporaryDirectory() as state:
            # The probe meets its attempts in time order and keeps the gap chain (agent.state).
            for (device, moment), sample in sorted(unique.items()):
                gap = sample_gap(Path(state), device, moment, profile.min_gap_s)
                result = result_of(
                    probe=device,
                    technology=technology,
                    operator=operator,
                    finished_at=moment,
                    status=sample.status,
                    download=sample.download_mbps or 0.0,
                    upload=sample.upload_mbps,
                    rtt=sample.rtt_ms,
                    setting=sample.setting,
                    gap=gap,
                    access_delay_ms=sample.values.get("access_delay"),
                )
                copies = sum(1 for s in samples if (s.device, s.timestamp) == (device, moment))
                results += [result] * copies
        # Exact duplicates: some results delivered twice (a journal replay).
        results += results[: len(results) // 5]
        live = asyncio.run(_live(store, results))
        offline = evaluate_compliance(
            samples,
            profile,
            now=NOW,
            window=WINDOW,
            plan=PLAN if technology == "ftth" else None,
        )
        area = Area("village", "79", "26734", "Ấp Một", technology, operator)
        if offline.n_attempts == 0 and offline.n_too_close == 0:
            assert area not in live
            return
        assert area in live, (offline, sorted(live))
        assert_same(live[area], offline)

    check()


def test_edges_agree_live_and_offline(store: VictoriaMetrics) -> None:
    """Samples at the window's edges to the microsecond, and one fixed-line test stamped alike
    for two targets (the same sample twice, though its series differ)."""
    ms, us = timedelta(milliseconds=1), timedelta(microseconds=1)
    for technology, moments in (
        ("4g", [NOW - WINDOW, NOW - WINDOW + ms, NOW - WINDOW + 300 * us, NOW, NOW + 300 * us]),
        ("ftth", [NOW - timedelta(hours=2)] * 2),
    ):
        operator = f"Nhà mạng {next(_operators)}"
        profile = profile_for(technology, PROFILES)
        assert profile is not None
        results: list[Result] = []
        samples: list[Sample] = []
        with tempfile.TemporaryDirectory() as state:
            for index, moment in enumerate(moments):
                # Mobile: one device each; fixed: one probe measuring two targets.
                device = f"vn-79-p{index}" if technology == "4g" else "vn-79-p0"
                gap = sample_gap(Path(state), device, moment, profile.min_gap_s)
                result = result_of(
                    probe=device,
                    technology=technology,
                    operator=operator,
                    finished_at=moment,
                    status="ok",
                    download=10.0 * (index + 1),
                    upload=5.0,
                    rtt=None,
                    setting="indoor",
                    gap=gap,
                )
                target = msgspec.structs.replace(result.target, id=f"target-{index}")
                results.append(msgspec.structs.replace(result, target=target))
                samples.append(
                    Sample(
                        timestamp=moment,
                        download_mbps=10.0 * (index + 1),
                        upload_mbps=5.0,
                        setting="indoor",
                        device=device,
                        technology=technology,
                    )
                )
        live = asyncio.run(_live(store, results))
        offline = evaluate_compliance(
            samples, profile, now=NOW, window=WINDOW, plan=PLAN if technology == "ftth" else None
        )
        area = Area("village", "79", "26734", "Ấp Một", technology, operator)
        assert live[area].n == offline.n == (3 if technology == "4g" else 1), technology
        assert _same(live[area].mean_download_mbps, offline.mean_download_mbps), technology


ACCESS_DELAY_PROFILE = """
[profiles.4g-access]
title = "4G, access delay judged on few samples (a test profile)"
source = "QCVN 81:2019 access delay, n lowered for a test"
access = "mobile"
default_for = ["4g"]
n_required = 4
download = { mean_min_mbps = 10.0 }
mean_limits = { access_delay_ms = 5000.0 }
"""


@pytest.mark.parametrize(
    ("delays_ms", "status"),
    [([800.0, 1200.5, 4999.4, 3000.0], "pass"), ([5200.0, 6100.25, 4800.0, 7000.0], "fail")],
)
def test_an_access_delay_criterion_is_judged_alike_live_and_offline(
    store: VictoriaMetrics, tmp_path: Path, delays_ms: list[float], status: str
) -> None:
    """A profile's access-delay limit, from profiles data alone, decides the verdict both ways."""
    (tmp_path / "profiles.toml").write_text(ACCESS_DELAY_PROFILE, encoding="utf-8")
    profiles = load_profiles(tmp_path / "profiles.toml")
    profile = profiles["4g-access"]
    operator = f"Nhà mạng {next(_operators)}"
    results: list[Result] = []
    samples: list[Sample] = []
    for index, delay in enumerate(delays_ms):
        moment = NOW - timedelta(hours=index + 1)
        device = f"vn-79-p{index}"
        result = result_of(
            probe=device,
            technology="4g",
            operator=operator,
            finished_at=moment,
            status="ok",
            download=50.0,
            upload=None,
            rtt=None,
            setting="indoor",
            gap=None,
            access_delay_ms=delay,
        )
        results.append(result)
        samples.append(
            Sample(
                timestamp=moment,
                download_mbps=50.0,
                setting="indoor",
                device=device,
                technology="4g",
                values={"access_delay": delay},
            )
        )

    async def live_verdicts() -> dict[Area, Verdict]:
        writer = StoreWriter(store.url)
        try:
            await writer.write_lines([result_line(r, None, profiles) for r in results])
            store.flush()
            async with aiohttp.ClientSession() as session:
                return await judge_window(session, store.url, profiles, now=NOW, window=WINDOW)
        finally:
            await writer.close()

    live = asyncio.run(live_verdicts())[Area("village", "79", "26734", "Ấp Một", "4g", operator)]
    offline = evaluate_compliance(samples, profile, now=NOW, window=WINDOW)
    assert_same(live, offline)
    assert live.status == offline.status == status
    (judged,) = [c for c in live.criteria if c.id == "access_delay.mean"]
    assert judged.n == 4
    assert judged.passed is (status == "pass")
    # Whole milliseconds, as the store sums them: the mean of the rounded delays.
    whole = [round(delay) for delay in delays_ms]
    assert judged.statistic == sum(whole) / len(whole)
