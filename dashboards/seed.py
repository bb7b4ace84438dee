"""Lab-like demo data for the dashboards: results, the engine's verdicts, fleet state, collector.

    .venv/bin/python -m dashboards.seed --store http://127.0.0.1:8428 [--hours 6]

Five probes shaped like the village lab: village A on 4G at 30 Mb/s (fails), B on 4G
at 60 Mb/s, C on 5G at 150 Mb/s, town D on fibre at 1 Gb/s (conforms to QCVN 34, below the 1 Gb/s
national target), E on 4G, IPv4-only and short of samples. Measured rates are 0.956 x the shaped
rate, as TCP goodput across `tc tbf` is.

No verdict is invented here. The demo makes Results (contract.result) and stores them through the
collector's StoreWriter, so collector/series.py gives them their series and sample classes; then
collector.verdicts.refresh_verdicts judges every area from the store every five minutes of the
shown range, as a running collector does. Each link has a result every five minutes, as many as
its verdicts need, days back into their 30-day window; some fail, some are probe-limited, too close
to the previous one or implausible, so every sample rule shows.
Fleet state and collector metrics are written in the Prometheus text format (what a scrape
stores). The data is the same for the same `now` (a seeded random generator).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from uuid6 import uuid7

from collector.coverage import coverage_lines
from collector.store import StoreWriter
from collector.verdicts import refresh_verdicts
from contract.errors import ServiceError
from contract.profiles import bundled_profiles, profile_for
from contract.result import (
    SCHEMA,
    Access,
    Clock,
    Ipv6,
    Latency,
    LatencyStats,
    Link,
    Location,
    MeasurementError,
    Measurements,
    Plan,
    Provenance,
    Result,
    Setting,
    Target,
    Technology,
    Throughput,
)
from contract.sampling import gap_s, too_close

GOODPUT = 0.956  # TCP goodput / shaped rate across tc tbf, measured on these machines
RESULT_EVERY_S = 300
VERDICT_EVERY_S = 300  # the dashboards read a verdict up to 10 min old
RERUN_AFTER_S = 20.0  # a re-run this soon after a result is too close to count (min_gap_s 30)
GLITCH_MBPS = 4812.0  # a modem counter glitch: far above any 4G link (ceiling 2,000 Mb/s)
TRANSFER_S = 8.0
WRITE_BATCH = 2000
SCRAPE_EVERY_S = 15
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 30, 60, 600, 3600, 86400)  # collector/metrics.py
COLLECTORS = ("collector-1:9108", "collector-2:9108")
REJECT_EVERY_S = {"duplicate": 1800, "bad-signature": 7200, "schema": 10800}
TARGET = Target(id="target-hn-1", address="198.18.0.10", ip_version=4)


@dataclass(frozen=True)
class DemoLink:
    """One probe's one link and what it measures; its verdict is the engine's."""

    probe: str
    province: str
    commune: str
    village: str
    lat: float
    lon: float
    access: Access
    technology: Technology
    operator: str
    interface: str
    setting: Setting
    shaped_mbps: float
    upload_mbps: float
    latency_ms: float
    ipv6_works_share: float
    failure_share: float
    probe_limited_share: float
    results: int  # results in its verdicts' window, re-runs aside
    plan: Plan | None = None
    glitch_every: int = 0  # every so many older results reports GLITCH_MBPS (implausible)
    # Share of downloads still climbing when their test ended (a satellite backhaul's village).
    unconverged_share: float = 0.0
    rerun_every: int = 0  # every so many older results is re-run RERUN_AFTER_S later
    clock_synced: bool = True
    offline_for_s: float = 0.0
    budget_left: float = 0.5

    @property
    def download_mbps(self) -> float:
        return self.shaped_mbps * GOODPUT

    @property
    def area(self) -> dict[str, str]:
        return {"province": self.province, "commune": self.commune, "village": self.village}


DEMO_LINKS = (
    DemoLink(
        probe="probe-a",
        province="04",
        commune="01273",
        village="Na Sang",
        lat=22.666,
        lon=106.258,
        access="mobile",
        technology="4g",
        operator="Viettel",
        interface="wwan0",
        setting="outdoor_fixed",
        shaped_mbps=30,
        upload_mbps=11,
        latency_ms=38,
        ipv6_works_share=0.9,
        failure_share=0.03,
        probe_limited_share=0,
        results=1700,
        glitch_every=400,
        budget_left=0.55,
    ),
    DemoLink(
        probe="probe-b",
        province="11",
        commune="03127",
        village="Huoi Mun",
        lat=21.386,
        lon=103.017,
        access="mobile",
        technology="4g",
        operator="VNPT",
        interface="wwan0",
        setting="indoor",
        shaped_mbps=60,
        upload_mbps=18,
        latency_ms=32,
        ipv6_works_share=1,
        failure_share=0.01,
        probe_limited_share=0,
        results=1700,
        rerun_every=150,
        budget_left=0.7,
    ),
    DemoLink(
        probe="probe-c",
        province="12",
        commune="03503",  # Xã Pa Tần
        village="Pa Tan",
        lat=22.398,
        lon=103.470,
        access="mobile",
        technology="5g",
        operator="Viettel",
        interface="wwan0",
        setting="outdoor_fixed",
        shaped_mbps=150,
        upload_mbps=41,
        latency_ms=21,
        ipv6_works_share=1,
        failure_share=0.01,
        probe_limited_share=0,
        results=1650,
        budget_left=0.35,
    ),
    DemoLink(
        probe="probe-d",
        province="01",
        commune="00004",
        village="Phuc Xa",
        lat=21.047,
        lon=105.847,
        access="fixed",
        technology="ftth",
        operator="FPT",
        interface="eth0",
        setting="indoor",
        shaped_mbps=1000,
        upload_mbps=930,
        latency_ms=3,
        ipv6_works_share=1,
        failure_share=0,
        probe_limited_share=0.1,
        results=1300,
        plan=Plan(download_mbps=1000.0, upload_mbps=1000.0),
        budget_left=0.92,
    ),
    DemoLink(
        probe="probe-e",
        province="52",
        commune="21607",
        village="Plei Op",
        lat=13.983,
        lon=108.002,
        access="mobile",
        technology="4g",
        operator="MobiFone",
        interface="wwan0",
        setting="outdoor_fixed",
        shaped_mbps=26,
        upload_mbps=8,
        latency_ms=45,
        ipv6_works_share=0,
        failure_share=0.04,
        probe_limited_share=0,
        results=200,
        unconverged_share=0.1,
        clock_synced=False,
        offline_for_s=3000,
        budget_left=0.08,
    ),
)


def sample(name: str, labels: dict[str, str], value: float, at_s: float) -> str:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{label_text}}} {value:g} {round(at_s * 1000)}"


def steps(start: float, end: float, every_s: float) -> Iterator[float]:
    at = start
    while at <= end:
        yield at
        at += every_s


def result_times(index: int, link: DemoLink, end: float) -> list[float]:
    """When a link's results finish, oldest first: every 5 min, probes out of step, none while
    offline. The oldest is days inside the 30-day window of every verdict shown."""
    last = end - link.offline_for_s - 37.0 * index
    return [last - RESULT_EVERY_S * number for number in range(link.results - 1, -1, -1)]


def throughput(mbps: float, *, converged: bool = True) -> Throughput:
    return Throughput(
        mbps=mbps,
        bytes=round(mbps / 8 * 1e6 * TRANSFER_S),
        duration_s=TRANSFER_S,
        flows=4,
        converged=converged,
    )


def latency_stats(median_ms: float) -> LatencyStats:
    return LatencyStats(
        median_ms=median_ms,
        p95_ms=round(median_ms * 1.4, 1),
        jitter_ms=round(median_ms * 0.1, 1),
        loss=0.0,
        count=20,
        method="icmp",
    )


def measured(
    link: DemoLink, rng: random.Random, *, glitch: bool, climbing: bool = False
) -> Measurements:
    """One result's figures; climbing: a test that ended at half the link's rate, still climbing."""
    # A measured rate never exceeds the line's rate, nor a fixed line's upload its plan.
    download = min(link.shaped_mbps, rng.gauss(link.download_mbps, link.download_mbps * 0.06))
    upload_ceiling = link.plan.upload_mbps if link.plan else math.inf
    upload = min(upload_ceiling, rng.gauss(link.upload_mbps, link.upload_mbps * 0.08))
    idle = max(1.0, rng.gauss(link.latency_ms, link.latency_ms * 0.15))
    works = rng.random() < link.ipv6_works_share
    return Measurements(
        download=throughput(round(max(1.0, download / 2), 2), converged=False)
        if climbing
        else throughput(GLITCH_MBPS if glitch else round(max(1.0, download), 2)),
        upload=throughput(round(max(0.5, upload), 2)),
        latency=Latency(
            idle=latency_stats(round(idle, 1)),
            loaded=latency_stats(round(idle + rng.uniform(20, 120), 1)),
        ),
        ipv6=Ipv6(status="works" if works else "no-v6"),
    )


@dataclass(frozen=True)
class Attempt:
    """When a result finished, and how it came about."""

    at: float
    glitch: bool = False


def attempts(index: int, link: DemoLink, start: float, end: float) -> list[Attempt]:
    found: list[Attempt] = []
    for number, at in enumerate(result_times(index, link, end), start=1):
        # Glitches only before the shown range, so the charts keep their scale.
        glitch = at < start and bool(link.glitch_every) and number % link.glitch_every == 0
        found.append(Attempt(at, glitch=glitch))
        if link.rerun_every and number % link.rerun_every == 0:
            found.append(Attempt(at + RERUN_AFTER_S))
    return found


def demo_results(
    index: int, link: DemoLink, start: float, end: float, rng: random.Random
) -> list[Result]:
    """The link's results as its probe sends them; `gap_s` is the time since its previous
    counted sample, as the probe keeps it (collector/series.py turns a short gap into too_close)."""
    location = Location(
        province_code=link.province,
        commune_code=link.commune,
        village=link.village,
        lat=link.lat,
        lon=link.lon,
    )
    wire_link = Link(
        interface=link.interface,
        access=link.access,
        technology=link.technology,
        operator=link.operator,
        plan=link.plan,
        setting=link.setting,
    )
    profile = profile_for(link.technology)
    min_gap_s = profile.min_gap_s if profile is not None else 0.0
    results: list[Result] = []
    previous_counted: datetime | None = None
    for seq, attempt in enumerate(attempts(index, link, start, end), start=1):
        finished = datetime.fromtimestamp(attempt.at, UTC)
        # The probe's own chain rule (contract.sampling), as agent.state.sample_gap applies it.
        gap = gap_s(previous_counted, finished)
        if not too_close(gap, min_gap_s):
            previous_counted = finished
        errors: tuple[MeasurementError, ...] = ()
        if rng.random() < link.failure_share:
            measurements = Measurements()
            errors = (
                MeasurementError(
                    stage="download", code="timeout", message="no answer from the target in 10 s"
                ),
            )
        else:
            # Drawn only where a share is set, so the other links' series stay as they were.
            climbing = bool(link.unconverged_share) and rng.random() < link.unconverged_share
            measurements = measured(link, rng, glitch=attempt.glitch, climbing=climbing)
        spent = sum(t.bytes for t in (measurements.download, measurements.upload) if t is not None)
        results.append(
            Result(
                schema=SCHEMA,
                id=uuid7(),
                probe_id=link.probe,
                seq=seq,
                started_at=finished - timedelta(seconds=3 * TRANSFER_S),
                finished_at=finished,
                clock=Clock(synced=link.clock_synced),
                location=location,
                link=wire_link,
                target=TARGET,
                measurements=measurements,
                provenance=Provenance(
                    agent_version="0.1.0",
                    runner="iperf3",
                    bytes_used=spent or 20_000,
                    probe_limited=bool(errors == () and rng.random() < link.probe_limited_share),
                    gap_s=gap,
                ),
                errors=errors,
            )
        )
    return results


def verdict_times(start: float, end: float) -> list[float]:
    """Every five minutes back from `end`, so the last verdict is judged at `end` itself."""
    count = int((end - start) // VERDICT_EVERY_S)
    return [end - VERDICT_EVERY_S * number for number in range(count, -1, -1)]


async def store_and_judge(store_url: str, results: list[Result], start: float, end: float) -> None:
    """The results through the collector's writer, then the engine's verdicts over the range."""
    profiles = bundled_profiles()
    writer = StoreWriter(store_url)
    try:
        for first in range(0, len(results), WRITE_BATCH):
            await writer.write(results[first : first + WRITE_BATCH])
        async with aiohttp.ClientSession() as session:
            await flush(session, store_url)
            for at in verdict_times(start, end):
                now = datetime.fromtimestamp(at, UTC)
                await refresh_verdicts(session, writer, profiles, now=now)
            await flush(session, store_url)
    finally:
        await writer.close()


@dataclass
class CollectorCounters:
    """One collector's cumulative counters, advanced as results arrive."""

    accepted: int = 0
    lag_sum: float = 0.0
    lag_buckets: list[int] | None = None

    def observe(self, lag_s: float) -> None:
        self.accepted += 1
        self.lag_sum += lag_s
        if self.lag_buckets is None:
            self.lag_buckets = [0] * (len(LAG_BUCKETS) + 1)
        for number, bound in enumerate((*LAG_BUCKETS, math.inf)):
            self.lag_buckets[number] += lag_s <= bound


def fleet_samples(start: float, end: float, rng: random.Random) -> list[str]:
    """Fleet state and the collectors' own metrics, as scraped every 15 s."""
    arrivals = sorted(
        at
        for index, link in enumerate(DEMO_LINKS)
        for at in result_times(index, link, end)
        if at >= start
    )
    counters = [CollectorCounters() for _ in COLLECTORS]
    arrived = 0
    samples = []
    for at in steps(start, end, SCRAPE_EVERY_S):
        samples.extend(probe_state(at, start, end))
        while arrived < len(arrivals) and arrivals[arrived] <= at:
            # Most results land in under a second; some waited in a probe's spool.
            lag = rng.uniform(20, 60) if arrived % 23 == 0 else rng.lognormvariate(-1.0, 0.8)
            counters[arrived % len(COLLECTORS)].observe(lag)  # a shared subscription splits them
            arrived += 1
        for number, (instance, counter) in enumerate(zip(COLLECTORS, counters, strict=True)):
            own = {"job": "qos-collector", "instance": instance}
            write_errors = 2 if number == 0 and at > end - 7200 else 0
            samples += [
                sample("qos_collector_broker_connected", own, 1, at),
                sample("qos_collector_results_accepted_total", own, counter.accepted, at),
                sample("qos_collector_store_write_errors_total", own, write_errors, at),
                sample("qos_collector_ingest_lag_seconds_sum", own, round(counter.lag_sum, 3), at),
                sample("qos_collector_ingest_lag_seconds_count", own, counter.accepted, at),
            ]
            buckets = counter.lag_buckets or [0] * (len(LAG_BUCKETS) + 1)
            for bound, count in zip((*LAG_BUCKETS, math.inf), buckets, strict=True):
                le = "+Inf" if bound == math.inf else f"{bound:g}"
                samples.append(
                    sample("qos_collector_ingest_lag_seconds_bucket", {**own, "le": le}, count, at)
                )
            for reason, every_s in REJECT_EVERY_S.items():
                rejected = int((at - start + number * every_s / 2) // every_s)
                labels = {**own, "reason": reason}
                samples.append(sample("qos_collector_results_rejected_total", labels, rejected, at))
    return samples


def probe_state(at: float, start: float, end: float) -> list[str]:
    samples = []
    for link in DEMO_LINKS:
        online = float(at <= end - link.offline_for_s or link.offline_for_s == 0)
        spent = 0.05 * (end - at) / (end - start)  # the budget shrinks as the month goes on
        samples += [
            sample("qos_probe_online", {"probe": link.probe, **link.area}, online, at),
            sample(
                "qos_probe_budget_remaining_ratio",
                {"probe": link.probe, "interface": link.interface},
                round(link.budget_left + spent, 4),
                at,
            ),
        ]
    return samples


def post(url: str, body: str) -> None:
    request = urllib.request.Request(url, data=body.encode(), method="POST")  # noqa: S310 - the store's own URL
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            response.read()
    except OSError as exc:
        raise ServiceError(
            f"store refused demo data at {url}: {exc}", "is it VictoriaMetrics?"
        ) from exc


async def flush(session: aiohttp.ClientSession, store_url: str) -> None:
    """VictoriaMetrics makes fresh samples searchable within about a second; skip the wait."""
    try:
        async with session.get(f"{store_url}/internal/force_flush") as response:
            await response.read()
    except aiohttp.ClientError as exc:
        raise ServiceError(
            f"store at {store_url} did not flush: {exc}", "is it VictoriaMetrics?"
        ) from exc


def seed(store_url: str, *, hours: float = 6.0, now: float | None = None) -> float:
    """Write `hours` of demo data ending at `now` into the store; returns `now`."""
    if urllib.parse.urlsplit(store_url).scheme not in {"http", "https"}:
        raise ServiceError(f"store URL {store_url!r} is not http(s)", "pass e.g. http://host:8428")
    end = time.time() if now is None else now
    start = end - hours * 3600
    rng = random.Random(1)  # noqa: S311 - demo numbers, reproducible for the same `now`
    store_url = store_url.rstrip("/")
    results = [
        result
        for index, link in enumerate(DEMO_LINKS)
        for result in demo_results(index, link, start, end, rng)
    ]
    post(f"{store_url}/api/v1/import/prometheus", "\n".join(fleet_samples(start, end, rng)) + "\n")
    # The collector's coverage, as its last two full rounds wrote it (read 10 minutes back).
    places = [(link.province, link.commune) for link in DEMO_LINKS]
    for at in (end - 60, end):
        post(f"{store_url}/write", "\n".join(coverage_lines(places, round(at * 1000))) + "\n")
    asyncio.run(store_and_judge(store_url, results, start, end))
    return end


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write lab-like demo data into VictoriaMetrics.")
    parser.add_argument("--store", required=True, help="VictoriaMetrics URL, e.g. http://host:8428")
    parser.add_argument("--hours", type=float, default=6.0, help="how much history to write")
    args = parser.parse_args(argv)
    seed(args.store, hours=args.hours)
    print(f"seeded {args.hours:g} h of demo data for {len(DEMO_LINKS)} probes into {args.store}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
