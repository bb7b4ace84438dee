"""Per-area verdicts kept in the store, so dashboards and alert rules read them directly.

Every interval the collector reads the window's raw samples back from the store, judges every
area (village, commune, province, nation) x technology x operator with the pure compliance engine,
and writes the `qos_compliance_*` series (dashboards/SERIES.md). Reading the raw samples back keeps
the verdict exactly the regulation's statistic (mean of per-sample rates, t interval), which
recording rules could only approximate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import aiohttp
import msgspec

from collector.compliance import DEFAULT_WINDOW, QCVN_METHOD, Sample, Verdict, evaluate_areas
from collector.store import StoreWriter, epoch_ms, make_line
from contract.errors import ServiceError
from contract.profiles import Profile, profile_for
from contract.result import Plan

log = logging.getLogger("qosfleet.collector.verdicts")

MEASUREMENT = "qos_compliance"
Level = Literal["village", "commune", "province", "nation"]
STATUS_VALUE = {"pass": 1.0, "fail": 0.0, "insufficient-data": -1.0}
# The per-result series a verdict needs, as written by collector/store.py.
SAMPLE_SERIES = (
    "download_mbps",
    "upload_mbps",
    "latency_idle_median_ms",
    "attempt_failed",
    "probe_limited",
    "plan_download_mbps",
    "plan_upload_mbps",
)
# Labels that identify one result's series apart from the metric name.
_RESULT_LABELS = ("probe", "interface", "target", "ip_version")


class Area(NamedTuple):
    level: Level
    province: str
    commune: str
    village: str
    technology: str
    operator: str


def areas_of(labels: Mapping[str, str]) -> Iterator[Area]:
    """The four areas one probe's sample belongs to, from its village up to the nation."""
    province, commune = labels.get("province", ""), labels.get("commune", "")
    village = labels.get("village", "")
    technology, operator = labels.get("technology", ""), labels.get("operator", "")
    yield Area("village", province, commune, village, technology, operator)
    yield Area("commune", province, commune, "", technology, operator)
    yield Area("province", province, "", "", technology, operator)
    yield Area("nation", "", "", "", technology, operator)


class ExportedSeries(msgspec.Struct, frozen=True):
    """One line of VictoriaMetrics' /api/v1/export."""

    metric: dict[str, str]
    values: list[float]
    timestamps: list[int]


class StoredSample(NamedTuple):
    labels: dict[str, str]
    sample: Sample
    plan: Plan | None


def samples_from_export(series: Iterable[ExportedSeries]) -> list[StoredSample]:
    """Join the per-field series of each result back into one sample (same labels and time)."""
    results: dict[tuple[tuple[str, str], ...], dict[int, dict[str, float]]] = {}
    for line in series:
        field = line.metric.get("__name__", "").removeprefix("qos_")
        key = tuple(sorted((k, v) for k, v in line.metric.items() if k != "__name__"))
        by_time = results.setdefault(key, {})
        for timestamp, value in zip(line.timestamps, line.values, strict=True):
            by_time.setdefault(timestamp, {})[field] = value
    samples: list[StoredSample] = []
    for key, by_time in results.items():
        labels = dict(key)
        for timestamp, values in by_time.items():
            if not {"download_mbps", "upload_mbps"} & values.keys() and not values.get(
                "attempt_failed"
            ):
                continue  # a light test (latency, IPv6): no speed attempt to count
            status: Literal["ok", "failed", "probe_limited"] = "ok"
            if values.get("attempt_failed") == 1.0:
                status = "failed"
            elif values.get("probe_limited") == 1.0:
                status = "probe_limited"
            sample = Sample(
                timestamp=datetime.fromtimestamp(timestamp / 1000, UTC),
                download_mbps=values.get("download_mbps"),
                upload_mbps=values.get("upload_mbps"),
                rtt_ms=values.get("latency_idle_median_ms"),
                status=status,
            )
            plan = None
            if "plan_download_mbps" in values and "plan_upload_mbps" in values:
                plan = Plan(
                    download_mbps=values["plan_download_mbps"],
                    upload_mbps=values["plan_upload_mbps"],
                )
            samples.append(StoredSample(labels, sample, plan))
    return samples


def judge_areas(
    samples: list[StoredSample],
    profiles: dict[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[Area, Verdict]:
    """Pure: every area x technology x operator judged against its technology's profile."""
    keyed = [(area, stored.sample) for stored in samples for area in areas_of(stored.labels)]
    # QCVN 34 compares with the subscribed plan: meaningful only where one plan applies.
    plans_seen: dict[Area, set[Plan | None]] = {}
    for stored in samples:
        for area in areas_of(stored.labels):
            plans_seen.setdefault(area, set()).add(stored.plan)
    plans = {
        area: next(iter(seen))
        for area, seen in plans_seen.items()
        if len(seen) == 1 and next(iter(seen)) is not None
    }
    return evaluate_areas(
        keyed,
        lambda area: profile_for(area.technology, profiles),
        now=now,
        window=window,
        plans={area: plan for area, plan in plans.items() if plan is not None},
    )


def verdict_line(area: Area, verdict: Verdict, profile: Profile, at: datetime) -> str:
    download = profile.download
    # The line a chart draws: the mean target, or the per-sample minimum of a share rule.
    target_line = (download.mean_min_mbps or download.share_min_mbps) if download else None
    tags = area._asdict() | {"profile": verdict.profile}
    numbers: dict[str, float | None] = {
        "status": STATUS_VALUE[verdict.status],
        "early_warning": float(verdict.early_warning),
        "formal": float(verdict.method == QCVN_METHOD),
        "n": float(verdict.n),
        "n_required": float(verdict.n_required),
        "n_failed": float(verdict.n_failed),
        "n_probe_limited": float(verdict.n_probe_limited),
        "mean_download_mbps": verdict.mean_download_mbps,
        "ci_low_mbps": verdict.ci_low,
        "ci_high_mbps": verdict.ci_high,
        "target_download_mbps": target_line,
        "share_at_or_above_min": verdict.share_at_or_above_min,
        "access_failure_rate": verdict.access_failure_rate,
        "mean_upload_mbps": verdict.mean_upload_mbps,
        "mean_latency_ms": verdict.mean_latency_ms,
    }
    return make_line(MEASUREMENT, tags, numbers, epoch_ms(at))


async def export_series(
    session: aiohttp.ClientSession, store_url: str, match: str, start: datetime, end: datetime
) -> list[ExportedSeries]:
    """The series `match` selects between start and end, from VictoriaMetrics' export API."""
    params = {
        "match[]": match,
        "start": f"{start.timestamp():.3f}",
        "end": f"{end.timestamp():.3f}",
    }
    decoder = msgspec.json.Decoder(ExportedSeries)
    try:
        async with session.get(f"{store_url}/api/v1/export", params=params) as response:
            response.raise_for_status()
            return [decoder.decode(line) async for line in response.content if line.strip()]
    except (aiohttp.ClientError, msgspec.DecodeError) as exc:
        raise ServiceError(
            f"cannot read from the store at {store_url}: {exc}",
            "check that VictoriaMetrics runs and --store points at it",
        ) from exc


async def read_samples(
    session: aiohttp.ClientSession, store_url: str, *, start: datetime, end: datetime
) -> list[StoredSample]:
    names = "|".join(SAMPLE_SERIES)
    match = f'{{__name__=~"qos_({names})"}}'
    return samples_from_export(await export_series(session, store_url, match, start, end))


async def refresh_verdicts(
    session: aiohttp.ClientSession,
    writer: StoreWriter,
    profiles: dict[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[Area, Verdict]:
    """One pass: read the window, judge every area, write the verdict series at `now`."""
    samples = await read_samples(session, writer.url, start=now - window, end=now)
    verdicts = judge_areas(samples, profiles, now=now, window=window)
    if verdicts:
        await writer.write_lines(
            [verdict_line(a, v, profiles[v.profile], now) for a, v in verdicts.items()]
        )
    return verdicts


async def keep_verdicts_fresh(
    writer: StoreWriter, profiles: dict[str, Profile], *, interval_s: float
) -> None:
    """Refresh for ever; a store outage is logged and retried at the next interval."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while True:
            try:
                verdicts = await refresh_verdicts(session, writer, profiles, now=datetime.now(UTC))
                log.info("verdicts refreshed for %d areas", len(verdicts))
            except ServiceError as exc:
                log.warning("verdicts not refreshed: %s", exc.message)
            await asyncio.sleep(interval_s)
