"""Per-area verdicts kept in the store, so dashboards and alert rules read them directly.

Every interval the collector asks VictoriaMetrics for each area group's sufficient statistics over
the window — counts by sample class, n / sum / sum of squares of the counted rates, latencies
and declared quantities a profile limits (access delay),
counts at the share thresholds and per part of the day — as MetricsQL rollups grouped by the area
labels (collector/series.py writes the whole-unit series they sum). The store does the per-sample
work where the samples live (a VictoriaMetrics cluster's vmselect spreads it), so a refresh costs
per area group, never per sample of the window. Sums of whole units are exact, so the verdict is
the one `qos-collector evaluate` gives on the same samples. The pure engine
(collector/compliance.py) then judges every area (village, commune, province, nation) x
technology x operator and the `qos_compliance_*` series are written (dashboards/SERIES.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import aiohttp
import msgspec

from collector.compliance import DEFAULT_WINDOW, QCVN_METHOD, AreaStats, Moments, Verdict, judge
from collector.series import AREA_LABELS, plan_of_label
from collector.series import MEASUREMENT as SAMPLES
from collector.store import StoreWriter, make_line
from contract.errors import ServiceError
from contract.profiles import Profile, limited_quantities, profile_for
from contract.sampling import (
    CLASS_CODES,
    DAY_PARTS,
    EXACT_LIMIT,
    epoch_ms,
    rate_units,
    window_ms,
)

log = logging.getLogger("qosfleet.collector.verdicts")

MEASUREMENT = "qos_compliance"
Level = Literal["village", "commune", "province", "nation"]
STATUS_VALUE = {"pass": 1.0, "fail": 0.0, "insufficient-data": -1.0}
GroupKey = tuple[str, ...]  # AREA_LABELS' values
VERDICT_LINES_PER_WRITE = 1000


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


class Rollup(NamedTuple):
    """One MetricsQL instant query answering some statistics of every area group."""

    name: str
    expression: str


# aggr_over_time's rollups, and the Moments field each answers.
MOMENTS = {"count_over_time": "n", "sum_over_time": "total", "sum2_over_time": "total_sq"}
CLASS_OF_CODE = {code: name for name, code in CLASS_CODES.items()}


def rollups(profiles: Mapping[str, Profile], window: timedelta) -> list[Rollup]:
    """The queries whose answers are every group's AreaStats (see `stats_from_rollups`).

    Few queries, each one pass over its series: histogram_over_time counts every class (and every
    day part) at once, aggr_over_time gives n, sum and sum of squares together.
    """
    group = ",".join(AREA_LABELS)
    span = f"{window_ms(window)}ms"

    def summed(
        by: str, rollup: str, field: str, *, before: str = "", after: str = "", selector: str = ""
    ) -> str:
        series = f"{SAMPLES}_{field}{selector}[{span}]"
        return f"sum by ({group}{by}) ({rollup}({before}{series}{after}))"

    moments = "(" + ",".join(f'"{name}"' for name in MOMENTS) + "), "
    found = [
        Rollup("class", summed(",vmrange", "histogram_over_time", "sample_class")),
        Rollup("day_part", summed(",vmrange", "histogram_over_time", "counted_day_part")),
    ]
    for quantity in ("download", "upload", "latency"):
        field = f"counted_{quantity}_{'10us' if quantity == 'latency' else '10kbps'}"
        found.append(Rollup(quantity, summed(",rollup", "aggr_over_time", field, before=moments)))
    # The quantities measurement kinds declare, where a profile limits their mean.
    limited = {q.name: q for p in profiles.values() for q, _limit in limited_quantities(p)}
    for name, declared in limited.items():
        field = declared.counted_field
        found.append(
            Rollup(f"quantity.{name}", summed(",rollup", "aggr_over_time", field, before=moments))
        )
    # count_ge_over_time is not in VictoriaMetrics 1.79; on whole units, > T - 0.5 is >= T.
    for profile in profiles.values():
        target = profile.download
        if target is None or target.share_min_mbps is None or not profile.default_for:
            continue
        units = rate_units(target.share_min_mbps)
        selector = '{technology=~"' + "|".join(profile.default_for) + '"}'
        found.append(
            Rollup(
                f"at_or_above.{units}",
                summed(
                    "",
                    "count_gt_over_time",
                    "counted_download_10kbps",
                    after=f", {units - 0.5}",
                    selector=selector,
                ),
            )
        )
    return found


class _Vector(msgspec.Struct, frozen=True):
    metric: dict[str, str]
    value: tuple[float, str]


class _Data(msgspec.Struct, frozen=True):
    result: list[_Vector]


class _Answer(msgspec.Struct, frozen=True):
    data: _Data


_answer = msgspec.json.Decoder(_Answer)


def _whole(text: str, rollup: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # not a number at all: refused below like any inexact one
    if not math.isfinite(value) or value != int(value) or not 0 <= value < EXACT_LIMIT:
        # Sums of whole units are exact below 2**53; beyond, the verdict would not be.
        raise ServiceError(
            f"rollup {rollup} answered {text}, not an exact whole number",
            "an area group holds too many samples for exact sums: see docs/qcvn-method.md",
        )
    return int(value)


def _bucket_value(vmrange: str, rollup: str, allowed: range) -> int:
    """The one whole number inside a histogram bucket 'low...high' (low < k <= high), which
    must be one the collector writes (`allowed`)."""
    low, _, high = vmrange.partition("...")
    try:
        inside = range(math.floor(float(low)) + 1, math.floor(float(high)) + 1)
    except (ValueError, OverflowError):
        inside = range(0)
    if len(inside) != 1 or inside[0] not in allowed:
        raise ServiceError(
            f"rollup {rollup} answered a bucket {vmrange!r} holding no single whole number"
            f" from {allowed.start} to {allowed.stop - 1}",
            "the series must hold the codes collector/series.py writes",
        )
    return inside[0]


CLASS_RANGE = range(min(CLASS_OF_CODE), max(CLASS_OF_CODE) + 1)
DAY_PART_RANGE = range(1, DAY_PARTS + 1)


# A label the store left out is an empty one (map() stops with AREA_LABELS).
_ABSENT = itertools.repeat("")


def stats_from_rollups(answers: Mapping[str, list[_Vector]]) -> dict[GroupKey, AreaStats]:
    """Every area group's statistics from the rollups' answers (pure)."""
    groups: dict[GroupKey, AreaStats] = {}
    for name, vectors in answers.items():
        kind, _, detail = name.partition(".")
        for vector in vectors:
            key = tuple(map(vector.metric.get, AREA_LABELS, _ABSENT))
            stats = groups.get(key)
            if stats is None:
                stats = groups[key] = AreaStats(plans={plan_of_label(key[-1])})
                stats.mix[key[-2]] = 0
            count = _whole(vector.value[1], name)
            if kind == "class":
                code = _bucket_value(vector.metric.get("vmrange", ""), name, CLASS_RANGE)
                stats.count_class(CLASS_OF_CODE[code], count)
            elif kind == "day_part":
                part = _bucket_value(vector.metric.get("vmrange", ""), name, DAY_PART_RANGE)
                stats.day_parts[part - 1] = count
            elif kind in {"download", "upload", "latency", "quantity"}:
                field = MOMENTS.get(vector.metric.get("rollup", ""), "")
                if not field:
                    raise ServiceError(
                        f"rollup {name} answered an unknown rollup {vector.metric.get('rollup')!r}",
                        "check that the store is VictoriaMetrics 1.79 or later",
                    )
                moments = (
                    stats.quantities.setdefault(detail, Moments())
                    if kind == "quantity"
                    else getattr(stats, kind)
                )
                setattr(moments, field, count)
                if kind == "download" and field == "n":
                    stats.mix[key[-2]] = count
            elif kind == "at_or_above":
                stats.at_or_above[int(detail)] = count
    return groups


def judge_areas(
    groups: Mapping[GroupKey, AreaStats],
    profiles: Mapping[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[Area, Verdict]:
    """Pure: every area x technology x operator judged against its technology's profile."""
    areas: dict[Area, AreaStats] = {}
    for key, stats in groups.items():
        for area in areas_of(dict(zip(AREA_LABELS, key, strict=True))):
            areas.setdefault(area, AreaStats()).add(stats)
    verdicts: dict[Area, Verdict] = {}
    for area, stats in areas.items():
        profile = profile_for(area.technology, profiles)
        if profile is not None:
            verdicts[area] = judge(stats, profile, now=now, window=window)
    return verdicts


async def query(
    session: aiohttp.ClientSession, store_url: str, expression: str, at: datetime
) -> list[_Vector]:
    """One instant query at `at`, past VictoriaMetrics' response cache (which would miss samples
    delivered late by a probe's spool)."""
    # At the millisecond the offline engine ends the window (compliance.area_stats).
    params = {"query": expression, "time": f"{epoch_ms(at) / 1000:.3f}", "nocache": "1"}
    try:
        async with session.get(f"{store_url}/api/v1/query", params=params) as response:
            body = await response.read()
            if response.status != 200:  # noqa: PLR2004
                detail = body[:300].decode(errors="replace")
                raise ServiceError(
                    f"the store refused a verdict query ({response.status}): {detail}",
                    "check that the store is VictoriaMetrics 1.79 or later",
                )
        return _answer.decode(body).data.result
    except (aiohttp.ClientError, msgspec.DecodeError, TimeoutError) as exc:
        # A store that does not answer in time is an outage too (aiohttp's total timeout is a
        # bare TimeoutError), never an end of the collector.
        raise ServiceError(
            f"cannot read from the store at {store_url}: {str(exc) or type(exc).__name__}",
            "check that VictoriaMetrics runs and --store points at it",
        ) from exc


async def read_area_stats(
    session: aiohttp.ClientSession,
    store_url: str,
    profiles: Mapping[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[GroupKey, AreaStats]:
    """Every area group's statistics over (now - window, now], computed by the store."""
    wanted = rollups(profiles, window)
    answers = await asyncio.gather(
        *(query(session, store_url, rollup.expression, now) for rollup in wanted)
    )
    return stats_from_rollups(
        {rollup.name: answer for rollup, answer in zip(wanted, answers, strict=True)}
    )


async def judge_window(
    session: aiohttp.ClientSession,
    store_url: str,
    profiles: Mapping[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[Area, Verdict]:
    groups = await read_area_stats(session, store_url, profiles, now=now, window=window)
    return judge_areas(groups, profiles, now=now, window=window)


def _status(value: str | None) -> float | None:
    return None if value is None else STATUS_VALUE[value]


def verdict_line(area: Area, verdict: Verdict, profile: Profile, at: datetime) -> str:
    """One area's verdict as the `qos_compliance_*` series (dashboards/SERIES.md)."""
    download = profile.download
    regulation_line = verdict.plan_download_threshold_mbps
    mean_is_programme = "download.mean" in profile.programme
    if regulation_line is None and download is not None and not mean_is_programme:
        regulation_line = download.mean_min_mbps or download.share_min_mbps
    programme_line = download.mean_min_mbps if download is not None and mean_is_programme else None
    tags = area._asdict() | {"profile": verdict.profile}
    mix = verdict.sample_mix
    numbers: dict[str, float | None] = {
        "status": STATUS_VALUE[verdict.status],
        "early_warning": float(verdict.early_warning),
        "formal": float(verdict.method == QCVN_METHOD),
        "n": float(verdict.n),
        "n_required": float(verdict.n_required),
        "n_attempts": float(verdict.n_attempts),
        "n_failed": float(verdict.n_failed),
        "n_probe_limited": float(verdict.n_probe_limited),
        "n_unconverged": float(verdict.n_unconverged),
        "n_implausible": float(verdict.n_implausible),
        "n_too_close": float(verdict.n_too_close),
        "n_indoor": float(mix.indoor),
        "n_outdoor_fixed": float(mix.outdoor_fixed),
        "n_outdoor_moving": float(mix.outdoor_moving),
        "mean_download_mbps": verdict.mean_download_mbps,
        "ci_low_mbps": verdict.ci_low,
        "ci_high_mbps": verdict.ci_high,
        "target_download_mbps": regulation_line,
        "share_at_or_above_min": verdict.share_at_or_above_min,
        "share_ci_low": verdict.share_ci_low,
        "share_ci_high": verdict.share_ci_high,
        "access_failure_rate": verdict.access_failure_rate,
        "access_failure_ci_low": verdict.access_failure_ci_low,
        "access_failure_ci_high": verdict.access_failure_ci_high,
        "mean_upload_mbps": verdict.mean_upload_mbps,
        "upload_ci_low_mbps": verdict.upload_ci_low,
        "upload_ci_high_mbps": verdict.upload_ci_high,
        "target_upload_mbps": verdict.plan_upload_threshold_mbps
        or (profile.upload.mean_min_mbps if profile.upload is not None else None),
        "mean_latency_ms": verdict.mean_latency_ms,
        "latency_ci_low_ms": verdict.latency_ci_low,
        "latency_ci_high_ms": verdict.latency_ci_high,
        "plan_status": _status(verdict.plan_conformity),
        "national_target_status": _status(verdict.national_target),
        "national_target_early_warning": float(verdict.national_target_early_warning)
        if verdict.national_target is not None
        else None,
        "national_target_download_mbps": programme_line,
    }
    for part, count in enumerate(verdict.day_parts):
        numbers[f"n_day_part_{part}"] = float(count)
    # Each declared quantity the profile limits: its mean, interval and limit.
    judged = {judgement.id: judgement for judgement in verdict.criteria}
    for quantity, limit in limited_quantities(profile):
        judgement = judged.get(quantity.criterion_id)
        if judgement is None:
            continue
        numbers[f"mean_{quantity.field}"] = judgement.statistic
        numbers[f"{quantity.name}_ci_low_{quantity.unit}"] = judgement.ci_low
        numbers[f"{quantity.name}_ci_high_{quantity.unit}"] = judgement.ci_high
        numbers[f"target_{quantity.field}"] = limit
    return make_line(MEASUREMENT, tags, numbers, epoch_ms(at))


async def refresh_verdicts(
    session: aiohttp.ClientSession,
    writer: StoreWriter,
    profiles: Mapping[str, Profile],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[Area, Verdict]:
    """One pass: the window's statistics from the store, every area judged, verdicts written."""
    verdicts = await judge_window(session, writer.url, profiles, now=now, window=window)
    # Some 45 series an area: a national refresh writes about a million samples, and the first one
    # creates as many series. In parts, no write outlasts the store client's timeout; the store
    # takes one part while the next is rendered.
    judged = list(verdicts.items())
    writing: asyncio.Task[None] | None = None
    for start in range(0, len(judged), VERDICT_LINES_PER_WRITE):
        part = judged[start : start + VERDICT_LINES_PER_WRITE]
        lines = [verdict_line(area, v, profiles[v.profile], now) for area, v in part]
        if writing is not None:
            await writing
        writing = asyncio.create_task(writer.write_lines(lines))
        await asyncio.sleep(0)  # let the request leave before rendering the next part
    if writing is not None:
        await writing
    return verdicts


async def keep_verdicts_fresh(
    writer: StoreWriter, profiles: Mapping[str, Profile], *, interval_s: float
) -> None:
    """Refresh for ever; a store outage is logged and retried at the next interval."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while True:
            try:
                verdicts = await refresh_verdicts(session, writer, profiles, now=datetime.now(UTC))
                log.info("verdicts refreshed for %d areas", len(verdicts))
            except ServiceError as exc:
                log.warning("verdicts not refreshed: %s", exc.message)
            except Exception:
                # The refresh shares the collector's task group: a bug here must not stop ingest.
                log.exception("verdicts not refreshed: unexpected error (a bug: please report)")
            await asyncio.sleep(interval_s)
