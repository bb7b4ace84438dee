"""Lab-like demo data for the dashboards: results, verdicts, fleet state and collector metrics.

    .venv/bin/python -m dashboards.seed --store http://127.0.0.1:8428 [--hours 6]

Five probes shaped like the village lab (DESIGN.md): village A on 4G at 30 Mb/s (fails), B on 4G
at 60 Mb/s, C on 5G at 150 Mb/s, town D on fibre at 1 Gb/s, E on 4G, IPv4-only and short of
samples. Measured rates are 0.956 x the shaped rate, as TCP goodput across `tc tbf` is. Series and
labels follow SERIES.md: results and verdicts as InfluxDB line protocol (what the collector
writes), fleet state and collector metrics in the Prometheus text format (what a scrape stores).
The data is the same for the same `now` (a seeded random generator).
"""

from __future__ import annotations

import argparse
import math
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from contract.errors import ServiceError

GOODPUT = 0.956  # TCP goodput / shaped rate across tc tbf, measured on these machines
RESULT_EVERY_S = 300
VERDICT_EVERY_S = 60
SCRAPE_EVERY_S = 15
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 30, 60, 600, 3600, 86400)  # collector/metrics.py
COLLECTORS = ("collector-1:9108", "collector-2:9108")
REJECT_EVERY_S = {"duplicate": 1800, "bad-signature": 7200, "schema": 10800}


@dataclass(frozen=True)
class DemoLink:
    """One probe's one link, what it measures, and the verdict its area gets."""

    probe: str
    province: str
    commune: str
    village: str
    lat: float
    lon: float
    access: str
    technology: str
    operator: str
    interface: str
    profile: str
    shaped_mbps: float
    upload_mbps: float
    latency_ms: float
    ipv6_works_share: float
    failure_share: float
    probe_limited_share: float
    n: int  # samples in the verdict's 30-day window now
    n_required: int
    target_mbps: float
    ci_half_width_mbps: float
    plan_mbps: float | None = None
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
        profile="4g",
        shaped_mbps=30,
        upload_mbps=11,
        latency_ms=38,
        ipv6_works_share=0.9,
        failure_share=0.03,
        probe_limited_share=0,
        n=1600,
        n_required=1500,
        target_mbps=40,
        ci_half_width_mbps=0.5,
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
        profile="4g",
        shaped_mbps=60,
        upload_mbps=18,
        latency_ms=32,
        ipv6_works_share=1,
        failure_share=0.01,
        probe_limited_share=0,
        n=1650,
        n_required=1500,
        target_mbps=40,
        ci_half_width_mbps=0.6,
        budget_left=0.7,
    ),
    DemoLink(
        probe="probe-c",
        province="12",
        commune="03406",
        village="Pa Tan",
        lat=22.398,
        lon=103.470,
        access="mobile",
        technology="5g",
        operator="Viettel",
        interface="wwan0",
        profile="5g",
        shaped_mbps=150,
        upload_mbps=41,
        latency_ms=21,
        ipv6_works_share=1,
        failure_share=0.01,
        probe_limited_share=0,
        n=1540,
        n_required=1500,
        target_mbps=100,
        ci_half_width_mbps=2.2,
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
        profile="fixed",
        shaped_mbps=1000,
        upload_mbps=930,
        latency_ms=3,
        ipv6_works_share=1,
        failure_share=0,
        probe_limited_share=0.1,
        n=1200,
        n_required=1000,
        target_mbps=1000,
        ci_half_width_mbps=3.1,
        plan_mbps=1000,
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
        profile="4g",
        shaped_mbps=26,
        upload_mbps=8,
        latency_ms=45,
        ipv6_works_share=0,
        failure_share=0.04,
        probe_limited_share=0,
        n=200,
        n_required=1500,
        target_mbps=40,
        ci_half_width_mbps=2.2,
        clock_synced=False,
        offline_for_s=3000,
        budget_left=0.08,
    ),
)


def escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line(measurement: str, tags: dict[str, str], fields: dict[str, float], at_s: float) -> str:
    tag_text = "".join(f",{key}={escape_tag(value)}" for key, value in tags.items() if value)
    field_text = ",".join(f"{key}={value:g}" for key, value in fields.items())
    return f"{measurement}{tag_text} {field_text} {round(at_s * 1000)}"


def sample(name: str, labels: dict[str, str], value: float, at_s: float) -> str:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{label_text}}} {value:g} {round(at_s * 1000)}"


def steps(start: float, end: float, every_s: float, offset_s: float = 0.0) -> Iterator[float]:
    at = start + offset_s
    while at <= end:
        yield at
        at += every_s


def result_times(index: int, link: DemoLink, start: float, end: float) -> list[float]:
    """When a link's results finish: every 5 min, probes out of step, none while offline."""
    last = end - link.offline_for_s
    return list(steps(start, last, RESULT_EVERY_S, offset_s=37.0 * index))


def result_lines(
    index: int, link: DemoLink, start: float, end: float, rng: random.Random
) -> list[str]:
    """Per-result series (collector/store.py): what a probe's results look like once stored."""
    tags = {
        "probe": link.probe,
        **link.area,
        "access": link.access,
        "technology": link.technology,
        "operator": link.operator,
        "interface": link.interface,
        "target": "target-hn-1",
        "ip_version": "4",
    }
    lines = []
    for seq, at in enumerate(result_times(index, link, start, end), start=1):
        fields: dict[str, float] = {"seq": seq, "lat": link.lat, "lon": link.lon}
        if rng.random() < link.failure_share:
            fields |= {"attempt_failed": 1, "errors": 1, "probe_limited": 0, "bytes_used": 2e4}
        else:
            download = max(1.0, rng.gauss(link.download_mbps, link.download_mbps * 0.06))
            upload = max(0.5, rng.gauss(link.upload_mbps, link.upload_mbps * 0.08))
            idle = max(1.0, rng.gauss(link.latency_ms, link.latency_ms * 0.15))
            fields |= {
                "download_mbps": round(download, 2),
                "upload_mbps": round(upload, 2),
                "latency_idle_median_ms": round(idle, 1),
                "latency_loaded_median_ms": round(idle + rng.uniform(20, 120), 1),
                "attempt_failed": 0,
                "errors": 0,
                "probe_limited": float(rng.random() < link.probe_limited_share),
                # about 8 s of transfer each way: Mb/s / 8 x 1e6 bytes per second
                "bytes_used": round((download + upload) / 8 * 1e6 * 8),
                "ipv6_works": float(rng.random() < link.ipv6_works_share),
            }
        fields["clock_synced"] = float(link.clock_synced)
        if link.plan_mbps is not None:
            fields |= {"plan_download_mbps": link.plan_mbps, "plan_upload_mbps": link.plan_mbps}
        lines.append(line("qos", tags, fields, at))
    return lines


def verdict_fields(link: DemoLink, at: float, end: float, rng: random.Random) -> dict[str, float]:
    """The verdict as the QCVN rule gives it (QCVN.md): n grows as results arrive."""
    n = link.n - round((end - at) / RESULT_EVERY_S)
    mean = link.download_mbps + rng.gauss(0, link.ci_half_width_mbps / 4)
    low, high = mean - link.ci_half_width_mbps, mean + link.ci_half_width_mbps
    enough = n >= link.n_required
    status = (1 if mean >= link.target_mbps else 0) if enough else -1
    fields: dict[str, float] = {
        "status": status,
        "early_warning": float(not enough and high < link.target_mbps),
        "formal": 0,  # fixed probes give fixed-point samples only: "monitoring per the method"
        "n": n,
        "n_required": link.n_required,
        "mean_download_mbps": round(mean, 2),
        "ci_low_mbps": round(low, 2),
        "ci_high_mbps": round(high, 2),
        "target_download_mbps": link.target_mbps,
        "access_failure_rate": link.failure_share,
        "n_failed": round(n * link.failure_share),
        "n_probe_limited": round(n * link.probe_limited_share),
    }
    if link.profile == "5g":  # QCVN 126 also judges upload, latency and a share of samples
        fields |= {
            "share_at_or_above_min": 0.99,
            "mean_upload_mbps": link.upload_mbps,
            "mean_latency_ms": link.latency_ms,
        }
    return fields


def verdict_lines(link: DemoLink, start: float, end: float, rng: random.Random) -> list[str]:
    """One demo area per province: the same verdict at every level down to the village."""
    base = {"technology": link.technology, "operator": link.operator, "profile": link.profile}
    levels = {
        "village": link.area,
        "commune": {"province": link.province, "commune": link.commune},
        "province": {"province": link.province},
        "nation": {},
    }
    lines: list[str] = []
    for at in steps(start, end, VERDICT_EVERY_S):
        fields = verdict_fields(link, at, end, rng)
        lines.extend(
            line("qos_compliance", {"level": level, **area, **base}, fields, at)
            for level, area in levels.items()
        )
    return lines


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
        at for index, link in enumerate(DEMO_LINKS) for at in result_times(index, link, start, end)
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


def seed(store_url: str, *, hours: float = 6.0, now: float | None = None) -> float:
    """Write `hours` of demo data ending at `now` into the store; returns `now`."""
    if urllib.parse.urlsplit(store_url).scheme not in {"http", "https"}:
        raise ServiceError(f"store URL {store_url!r} is not http(s)", "pass e.g. http://host:8428")
    end = time.time() if now is None else now
    start = end - hours * 3600
    rng = random.Random(1)  # noqa: S311 - demo numbers, reproducible for the same `now`
    store_url = store_url.rstrip("/")
    lines: list[str] = []
    for index, link in enumerate(DEMO_LINKS):
        lines += result_lines(index, link, start, end, rng)
        lines += verdict_lines(link, start, end, rng)
    post(f"{store_url}/write?precision=ms", "\n".join(lines) + "\n")
    post(f"{store_url}/api/v1/import/prometheus", "\n".join(fleet_samples(start, end, rng)) + "\n")
    # VictoriaMetrics makes fresh samples searchable within about a second; flush to skip the wait.
    with urllib.request.urlopen(f"{store_url}/internal/force_flush", timeout=30) as response:  # noqa: S310
        response.read()
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
