"""Compliance engine: an area's sufficient statistics in, a verdict against one QCVN profile out.

Pure: no I/O and no clock. The same engine judges live (statistics summed inside the store, see
collector/verdicts.py) and offline (`evaluate`, statistics summed here from samples by
`area_stats`); rates and latencies are whole units (contract.sampling) so both sums are exact and
the two verdicts are the same numbers. The rules are those of docs/qcvn-method.md: the statistic is
the plain mean of per-sample rates, pass/fail is judged on the statistic itself once n >=
n_required, and the 95 % interval is reported beside it (raising an early warning while data is
still insufficient).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import msgspec
from scipy import special

from contract.criteria import Criterion, Part, Unit, criteria
from contract.profiles import (
    Profile,
    SampleMix,
    ceiling_mbps,
    default_technology,
    limited_quantities,
)
from contract.quantities import Comparison, declared_quantities
from contract.result import Mbps, Millis, Plan, Setting
from contract.sampling import (
    DAY_PARTS,
    UNITS_PER_MBPS,
    UNITS_PER_MS,
    SampleClass,
    classify,
    day_part,
    epoch_ms,
    gap_s,
    latency_units,
    rate_units,
    too_close,
    window_ms,
)

DEFAULT_WINDOW = timedelta(days=30)
CONFIDENCE = 0.95
STATISTIC_METHOD = "arithmetic mean of per-sample rates (0.01 Mb/s resolution)"
INTERVAL_METHOD = "95 % Student-t interval of the mean; 95 % Wilson score interval of shares"
QCVN_METHOD = "QCVN method"
MONITORING_METHOD = "monitoring per the QCVN method"

SampleStatus = Literal["ok", "failed", "probe_limited", "unconverged"]
VerdictStatus = Literal["pass", "fail", "insufficient-data"]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True):
    """Engine types: immutable and keyword-only, like the wire contract."""


class Sample(_Frozen, frozen=True, kw_only=True):
    """One test attempt. `status` "failed" = could not connect; "probe_limited" = probe ceiling;
    "unconverged" = the rate was still climbing when the test ended.

    `device` names the probe link that took it (the minimum gap between samples is per device);
    `technology` chooses the physical ceiling (empty: the profile's first technology).
    """

    timestamp: datetime
    download_mbps: Mbps | None = None
    upload_mbps: Mbps | None = None
    rtt_ms: Millis | None = None
    status: SampleStatus = "ok"
    setting: Setting | None = None
    device: str = ""
    technology: str = ""
    # Quantities measurement kinds declare (contract.quantities), by name, in their units.
    values: dict[str, float] = {}


@dataclass(slots=True)
class Moments:
    """n, sum and sum of squares of whole-unit values: exact, and additive across areas."""

    n: int = 0
    total: int = 0
    total_sq: int = 0

    def add_value(self, units: int) -> None:
        self.n += 1
        self.total += units
        self.total_sq += units * units

    def add(self, other: Moments) -> None:
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq


@dataclass(slots=True)
class AreaStats:
    """Everything a verdict needs about an area's samples; sums of areas are areas.

    `at_or_above` counts counted download samples at or above a rate, keyed by that rate in
    whole units (a profile's share threshold). `plans` holds the subscribed plans seen.
    `quantities` holds the moments of each declared quantity (contract.quantities) by name.
    """

    attempts: int = 0
    failed: int = 0
    probe_limited: int = 0
    unconverged: int = 0
    implausible: int = 0
    too_close: int = 0
    duplicates: int = 0
    download: Moments = field(default_factory=Moments)
    upload: Moments = field(default_factory=Moments)
    latency: Moments = field(default_factory=Moments)
    quantities: dict[str, Moments] = field(default_factory=dict)
    at_or_above: dict[int, int] = field(default_factory=dict)
    mix: dict[str, int] = field(default_factory=dict)
    day_parts: list[int] = field(default_factory=lambda: [0] * DAY_PARTS)
    plans: set[Plan | None] = field(default_factory=set)

    def add(self, other: AreaStats) -> None:
        self.attempts += other.attempts
        self.failed += other.failed
        self.probe_limited += other.probe_limited
        self.unconverged += other.unconverged
        self.implausible += other.implausible
        self.too_close += other.too_close
        self.duplicates += other.duplicates
        self.download.add(other.download)
        self.upload.add(other.upload)
        self.latency.add(other.latency)
        for name, moments in other.quantities.items():
            self.quantities.setdefault(name, Moments()).add(moments)
        for threshold, count in other.at_or_above.items():
            self.at_or_above[threshold] = self.at_or_above.get(threshold, 0) + count
        for setting, count in other.mix.items():
            self.mix[setting] = self.mix.get(setting, 0) + count
        for part, count in enumerate(other.day_parts):
            self.day_parts[part] += count
        self.plans |= other.plans

    def count_class(self, sample_class: SampleClass, count: int = 1) -> None:
        """Attempts by class; counted ones also need their values (`add_counted`)."""
        if sample_class == "too_close":
            self.too_close += count
            return
        self.attempts += count
        if sample_class == "failed":
            self.failed += count
        elif sample_class == "probe_limited":
            self.probe_limited += count
        elif sample_class == "unconverged":
            self.unconverged += count
        elif sample_class == "implausible":
            self.implausible += count


class Judgement(_Frozen, frozen=True, kw_only=True):
    """One criterion of a profile as judged, so a reader sees why a verdict came out as it did.

    `passed` is None when the criterion was not judged (too few samples, or skipped); `skipped`
    marks a criterion that cannot apply (no plan given); `interval_fails` is True when the whole
    95 % interval lies on the failing side of the threshold.
    """

    id: str
    name: str
    part: Part
    unit: Unit
    comparison: Comparison
    threshold: float | None
    statistic: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    passed: bool | None
    interval_fails: bool
    skipped: bool = False
    note: str = ""


class Verdict(_Frozen, frozen=True, kw_only=True):
    """An area's verdict against one profile over one window.

    `status` is the regulation's verdict (for fixed lines: QCVN 34 plan conformity); criteria the
    profile marks as programme indicators (the fixed 1 Gb/s target) are judged apart in
    `national_target`, with their own early warning, and never move `status`. Fields a profile does
    not ask for are None.
    """

    profile: str
    status: VerdictStatus
    early_warning: bool
    method: str
    window_start: datetime
    window_end: datetime
    n: int
    n_required: int
    n_attempts: int
    n_failed: int
    n_probe_limited: int
    n_unconverged: int
    n_implausible: int
    n_too_close: int
    n_duplicates: int
    mean_download_mbps: float | None
    ci_low: float | None
    ci_high: float | None
    share_min_mbps: float | None
    share_required: float | None
    share_at_or_above_min: float | None
    share_ci_low: float | None
    share_ci_high: float | None
    access_failure_rate: float | None
    access_failure_ci_low: float | None
    access_failure_ci_high: float | None
    n_upload: int
    mean_upload_mbps: float | None
    upload_ci_low: float | None
    upload_ci_high: float | None
    n_latency: int
    mean_latency_ms: float | None
    latency_ci_low: float | None
    latency_ci_high: float | None
    plan_conformity: VerdictStatus | None
    plan_download_threshold_mbps: float | None
    plan_upload_threshold_mbps: float | None
    national_target: VerdictStatus | None
    national_target_early_warning: bool
    sample_mix: SampleMix
    sample_mix_required: SampleMix | None
    day_parts: tuple[int, ...]
    day_part_min_share: float | None
    criteria: tuple[Judgement, ...]


class Estimate(_Frozen, frozen=True, kw_only=True):
    """A statistic with its 95 % interval; `value` None when there was nothing to compute from."""

    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


@lru_cache(maxsize=65536)
def _t_quantile(degrees_of_freedom: int) -> float:
    # The ufunc under scipy.stats.t.ppf, without its ~0.5 ms of argument handling per call: a
    # national refresh asks for thousands of different n.
    return float(special.stdtrit(degrees_of_freedom, (1.0 + CONFIDENCE) / 2.0))


_Z = float(special.ndtri((1.0 + CONFIDENCE) / 2.0))


def mean_of_moments(moments: Moments, units_per: int) -> Estimate:
    """Mean and 95 % Student-t interval from exact sums.

    Python divides two integers with one rounding, so the mean and the variance of the mean are
    the correctly rounded values of the exact fractions, whoever summed the integers.
    """
    n = moments.n
    if n == 0:
        return Estimate(value=None, n=0)
    mean = moments.total / (n * units_per)
    if n < 2:  # noqa: PLR2004 - a spread needs two values
        return Estimate(value=mean, n=n)
    # Variance of the mean, exact until the division: (n sum(x^2) - sum(x)^2) / (n^2 (n - 1)).
    spread = n * moments.total_sq - moments.total * moments.total
    variance_of_mean = spread / (n * n * (n - 1))
    half_width = _t_quantile(n - 1) * math.sqrt(variance_of_mean) / units_per
    return Estimate(value=mean, n=n, ci_low=mean - half_width, ci_high=mean + half_width)


def wilson_interval(successes: int, trials: int) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion; None for no trials."""
    if trials <= 0:
        return None
    share = successes / trials
    z2 = _Z * _Z
    denominator = 1.0 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half_width = _Z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials))
    half_width /= denominator
    # Exact in theory, but rounding can leave 1.0 just outside the interval of 10 out of 10.
    return max(0.0, min(centre - half_width, share)), min(1.0, max(centre + half_width, share))


def proportion_with_interval(successes: int, trials: int) -> Estimate:
    interval = wilson_interval(successes, trials)
    if interval is None:
        return Estimate(value=None, n=0)
    return Estimate(value=successes / trials, n=trials, ci_low=interval[0], ci_high=interval[1])


# Samples -> statistics (offline, and the definition the store's rollups reproduce) ------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"{what} {moment.isoformat()} has no time zone; give timezone-aware times (UTC)"
        raise ValueError(msg)
    return moment


def classify_sample(sample: Sample, profile: Profile, *, is_too_close: bool) -> SampleClass:
    technology = sample.technology or default_technology(profile)
    return classify(
        failed=sample.status == "failed",
        probe_limited=sample.status == "probe_limited",
        unconverged=sample.status == "unconverged",
        rates_mbps=(sample.download_mbps, sample.upload_mbps),
        ceiling_mbps=ceiling_mbps(profile, technology),
        is_too_close=is_too_close,
    )


def add_counted(stats: AreaStats, sample: Sample, share_units: Iterable[int]) -> None:
    """A counted sample's values into the area's sums."""
    if sample.download_mbps is not None:
        units = rate_units(sample.download_mbps)
        stats.download.add_value(units)
        for threshold in share_units:
            stats.at_or_above.setdefault(threshold, 0)
            if units >= threshold:
                stats.at_or_above[threshold] += 1
        setting = sample.setting or ""
        stats.mix[setting] = stats.mix.get(setting, 0) + 1
        stats.day_parts[day_part(sample.timestamp)] += 1
    if sample.upload_mbps is not None:
        stats.upload.add_value(rate_units(sample.upload_mbps))
    if sample.rtt_ms is not None:
        stats.latency.add_value(latency_units(sample.rtt_ms))
    quantities = declared_quantities()
    for name, value in sample.values.items():
        quantity = quantities.get(name)
        if quantity is not None:
            stats.quantities.setdefault(name, Moments()).add_value(quantity.units(value))


def share_units_of(profile: Profile) -> tuple[int, ...]:
    target = profile.download
    if target is None or target.share_min_mbps is None:
        return ()
    return (rate_units(target.share_min_mbps),)


def sample_classes(samples: Sequence[Sample], profile: Profile) -> list[SampleClass | None]:
    """Each sample's class, in input order; None for a duplicate (same device and time, at the
    store's millisecond resolution, as an earlier sample), which counts once.

    Per device, a sample closer than `min_gap_s` to the previous counted one is `too_close`, as
    the probe marks it live. The gap chain runs over the device's whole history, as the probe
    keeps it, so a sample's class does not depend on where a window starts.
    """
    classes: list[SampleClass | None] = [None] * len(samples)
    by_device: dict[str, dict[int, int]] = {}
    for index, sample in enumerate(samples):
        moment = epoch_ms(_aware(sample.timestamp, "sample timestamp"))
        by_device.setdefault(sample.device, {}).setdefault(moment, index)
    for firsts in by_device.values():
        previous_counted: datetime | None = None
        for moment in sorted(firsts):
            index = firsts[moment]
            sample = samples[index]
            close = too_close(gap_s(previous_counted, sample.timestamp), profile.min_gap_s)
            if not close:
                previous_counted = sample.timestamp
            classes[index] = classify_sample(sample, profile, is_too_close=close)
    return classes


def area_stats(
    samples: Iterable[Sample],
    profile: Profile,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    plan: Plan | None = None,
) -> AreaStats:
    """The samples inside (now - window, now] reduced to statistics, by the method's rules
    (`sample_classes`); duplicates inside the window are counted apart.

    The window is taken at the store's millisecond resolution, as its rollups take it: a sample
    0.3 ms after `now` is at `now` there, so it is inside here too.
    """
    _aware(now, "now")
    if window <= timedelta(0):
        msg = f"window {window} must be positive"
        raise ValueError(msg)
    end = epoch_ms(now)
    start = end - window_ms(window)
    result = AreaStats(plans={plan})
    share_units = share_units_of(profile)
    for threshold in share_units:
        result.at_or_above[threshold] = 0
    listed = list(samples)
    for sample, sample_class in zip(listed, sample_classes(listed, profile), strict=True):
        if not start < epoch_ms(sample.timestamp) <= end:
            continue
        if sample_class is None:
            result.duplicates += 1
            continue
        result.count_class(sample_class)
        if sample_class == "counted":
            add_counted(result, sample, share_units)
    return result


# Statistics -> verdict -------------------------------------------------------------------------


def _meets(statistic: float, comparison: Comparison, threshold: float) -> bool:
    if comparison == ">=":
        return statistic >= threshold
    return statistic <= threshold


def _interval_fails(estimate: Estimate, comparison: Comparison, threshold: float) -> bool:
    if estimate.ci_low is None or estimate.ci_high is None:
        return False
    if comparison == ">=":
        return estimate.ci_high < threshold
    return estimate.ci_low > threshold


def _judge(criterion: Criterion, estimate: Estimate, n_required: int) -> Judgement:
    passed: bool | None = None
    note = criterion.note
    threshold = criterion.threshold
    if threshold is not None and criterion.skip_unmeasured and estimate.n == 0:
        threshold, note = None, "not judged: no sample in the window measured it"
    if threshold is None:
        pass
    elif estimate.value is None:
        note = "no samples to compute it from"
    elif estimate.n < n_required:
        note = f"not judged: n {estimate.n} < {n_required} required"
    else:
        passed = _meets(estimate.value, criterion.comparison, threshold)
    return Judgement(
        id=criterion.id,
        name=criterion.name,
        part=criterion.part,
        unit=criterion.unit,
        comparison=criterion.comparison,
        threshold=threshold,
        statistic=estimate.value,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        n=estimate.n,
        passed=passed,
        interval_fails=threshold is not None
        and _interval_fails(estimate, criterion.comparison, threshold),
        skipped=threshold is None,
        note=note,
    )


def _combine(judgements: Iterable[Judgement], *, enough: bool) -> VerdictStatus:
    applicable = [judged for judged in judgements if not judged.skipped]
    if not enough or not applicable:
        return "insufficient-data"
    # A definite fail of any criterion decides, even while another cannot be judged yet.
    if any(judged.passed is False for judged in applicable):
        return "fail"
    if any(judged.passed is None for judged in applicable):
        return "insufficient-data"
    return "pass"


def _early_warning(judgements: Iterable[Judgement], status: VerdictStatus) -> bool:
    return status == "insufficient-data" and any(
        judged.interval_fails for judged in judgements if not judged.skipped
    )


def _mix(stats: AreaStats) -> SampleMix:
    return SampleMix(
        indoor=stats.mix.get("indoor", 0),
        outdoor_fixed=stats.mix.get("outdoor_fixed", 0),
        outdoor_moving=stats.mix.get("outdoor_moving", 0),
    )


def _mix_met(counts: SampleMix, required: SampleMix | None) -> bool:
    if required is None:
        return True
    return (
        counts.indoor >= required.indoor
        and counts.outdoor_fixed >= required.outdoor_fixed
        and counts.outdoor_moving >= required.outdoor_moving
    )


@lru_cache(maxsize=64)
def _exact_share(share: float) -> Fraction:
    """Exact: count >= share * total, compared as fractions so 10 % of 1,000 is 100, not 99.99."""
    return Fraction(share).limit_denominator(10_000)


def _spread_met(day_parts: list[int], min_share: float | None) -> bool:
    if min_share is None:
        return True
    total = sum(day_parts)
    share = _exact_share(min_share)
    # count >= share * total, in integers
    needed = share.numerator * total
    return total > 0 and all(count * share.denominator >= needed for count in day_parts)


def _single_plan(stats: AreaStats) -> Plan | None:
    """QCVN 34 compares with the subscribed plan: meaningful only where one plan applies."""
    if len(stats.plans) == 1:
        return next(iter(stats.plans))
    return None


def _estimates(stats: AreaStats, profile: Profile) -> dict[str, Estimate]:
    download = mean_of_moments(stats.download, UNITS_PER_MBPS)
    share_target = profile.download
    share = Estimate(value=None, n=stats.download.n)
    if share_target is not None and share_target.share_min_mbps is not None:
        count = stats.at_or_above.get(rate_units(share_target.share_min_mbps), 0)
        share = proportion_with_interval(count, stats.download.n)
    estimates = {
        "download.mean": download,
        "download.share": share,
        "upload.mean": mean_of_moments(stats.upload, UNITS_PER_MBPS),
        "upload.share": Estimate(value=None, n=stats.upload.n),
        "access_failure": proportion_with_interval(stats.failed, stats.attempts),
        "latency.mean": mean_of_moments(stats.latency, UNITS_PER_MS),
    }
    for quantity, _limit in limited_quantities(profile):
        moments = stats.quantities.get(quantity.name, Moments())
        estimates[quantity.criterion_id] = mean_of_moments(moments, quantity.units_per)
    return estimates


def judge(
    stats: AreaStats, profile: Profile, *, now: datetime, window: timedelta = DEFAULT_WINDOW
) -> Verdict:
    """The verdict of an area's statistics against one profile."""
    plan = _single_plan(stats)
    estimates = _estimates(stats, profile)
    judgements = [
        _judge(criterion, estimates[criterion.statistic], profile.n_required)
        for criterion in criteria(profile, plan)
    ]
    enough = stats.download.n >= profile.n_required
    regulation = [judged for judged in judgements if judged.part == "regulation"]
    programme = [judged for judged in judgements if judged.part == "programme"]
    status = _combine(regulation, enough=enough)
    has_plan_criterion = any(judged.id.endswith(".plan") for judged in judgements)
    plan_conformity: VerdictStatus | None = None
    if has_plan_criterion and plan is not None:
        plan_conformity = _combine(
            (judged for judged in judgements if judged.id.endswith(".plan")), enough=enough
        )
    national_target = _combine(programme, enough=enough) if programme else None

    mix = _mix(stats)
    formal = _mix_met(mix, profile.sample_mix) and _spread_met(
        stats.day_parts, profile.day_part_min_share
    )
    download = estimates["download.mean"]
    share = estimates["download.share"]
    share_target = (
        profile.download if profile.download and profile.download.share_min_mbps else None
    )
    access_failure = estimates["access_failure"]
    upload = estimates["upload.mean"]
    latency = estimates["latency.mean"]
    wants_upload = profile.upload is not None
    wants_latency = profile.latency_mean_max_ms is not None
    wants_access = profile.access_failure_max is not None
    return Verdict(
        profile=profile.name,
        status=status,
        early_warning=_early_warning(regulation, status),
        method=QCVN_METHOD if formal else MONITORING_METHOD,
        window_start=now - window,
        window_end=now,
        n=download.n,
        n_required=profile.n_required,
        n_attempts=stats.attempts,
        n_failed=stats.failed,
        n_probe_limited=stats.probe_limited,
        n_unconverged=stats.unconverged,
        n_implausible=stats.implausible,
        n_too_close=stats.too_close,
        n_duplicates=stats.duplicates,
        mean_download_mbps=download.value,
        ci_low=download.ci_low,
        ci_high=download.ci_high,
        share_min_mbps=share_target.share_min_mbps if share_target else None,
        share_required=share_target.share_required if share_target else None,
        share_at_or_above_min=share.value,
        share_ci_low=share.ci_low,
        share_ci_high=share.ci_high,
        access_failure_rate=access_failure.value if wants_access else None,
        access_failure_ci_low=access_failure.ci_low if wants_access else None,
        access_failure_ci_high=access_failure.ci_high if wants_access else None,
        n_upload=upload.n,
        mean_upload_mbps=upload.value if wants_upload else None,
        upload_ci_low=upload.ci_low if wants_upload else None,
        upload_ci_high=upload.ci_high if wants_upload else None,
        n_latency=latency.n,
        mean_latency_ms=latency.value if wants_latency else None,
        latency_ci_low=latency.ci_low if wants_latency else None,
        latency_ci_high=latency.ci_high if wants_latency else None,
        plan_conformity=plan_conformity,
        plan_download_threshold_mbps=_plan_threshold(judgements, "download.plan"),
        plan_upload_threshold_mbps=_plan_threshold(judgements, "upload.plan"),
        national_target=national_target,
        national_target_early_warning=national_target is not None
        and _early_warning(programme, national_target),
        sample_mix=mix,
        sample_mix_required=profile.sample_mix,
        day_parts=tuple(stats.day_parts),
        day_part_min_share=profile.day_part_min_share,
        criteria=tuple(judgements),
    )


def _plan_threshold(judgements: list[Judgement], criterion_id: str) -> float | None:
    return next((judged.threshold for judged in judgements if judged.id == criterion_id), None)


def evaluate_compliance(
    samples: Iterable[Sample],
    profile: Profile,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    plan: Plan | None = None,
) -> Verdict:
    """Judge the samples inside (now - window, now] against one profile."""
    stats = area_stats(samples, profile, now=now, window=window, plan=plan)
    return judge(stats, profile, now=now, window=window)
