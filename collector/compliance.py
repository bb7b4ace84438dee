"""Compliance engine: samples and `now` in, a verdict against one QCVN profile out.

Pure: no I/O and no clock, so the same samples always give the same verdict. The rules are those
of QCVN.md: the statistic is the plain mean of per-sample rates, pass/fail is judged on the
statistic itself once n >= n_required, and the 95 % interval is reported beside it (and raises an
early warning while data is still insufficient).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal, TypeVar

import msgspec
from scipy import stats

from contract.profiles import DirectionTarget, Profile, SampleMix
from contract.result import Mbps, Millis, Plan

DEFAULT_WINDOW = timedelta(days=30)
CONFIDENCE = 0.95
QCVN_METHOD = "QCVN method"
MONITORING_METHOD = "monitoring per the QCVN method"
# A mean summed from thousands of floats carries rounding noise; a line drawn by the regulation
# must not move because of it, so "meets" allows this relative slack and nothing more.
_ROUNDING_SLACK = 1e-9

SampleStatus = Literal["ok", "failed", "probe_limited"]
Setting = Literal["indoor", "outdoor_fixed", "outdoor_moving"]
VerdictStatus = Literal["pass", "fail", "insufficient-data"]
Direction = Literal["download", "upload"]
Comparison = Literal[">=", "<="]
Unit = Literal["Mb/s", "ms", "share"]
# "plan": QCVN 34 conformity with the subscribed plan; "target": every other criterion.
Part = Literal["target", "plan"]

AreaKey = TypeVar("AreaKey", bound=Hashable)


class _Frozen(msgspec.Struct, frozen=True, kw_only=True):
    """Engine types: immutable and keyword-only, like the wire contract."""


class Sample(_Frozen, frozen=True, kw_only=True):
    """One test attempt. `status` "failed" = could not connect; "probe_limited" = probe ceiling."""

    timestamp: datetime
    download_mbps: Mbps | None = None
    upload_mbps: Mbps | None = None
    rtt_ms: Millis | None = None
    status: SampleStatus = "ok"
    # A fixed probe measures from one place: an outdoor fixed point in QCVN 81/126 terms.
    setting: Setting = "outdoor_fixed"


class Estimate(_Frozen, frozen=True, kw_only=True):
    """A statistic with its 95 % interval; `value` None when there was nothing to compute from."""

    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


class Check(_Frozen, frozen=True, kw_only=True):
    """One criterion of a profile, so a reader sees why a verdict came out as it did.

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

    Fields a profile does not ask for are None. `plan_conformity` and `national_target` are the two
    parts of a fixed-broadband verdict (QCVN 34 plan conformity, and every other target); they are
    None for profiles without a plan criterion.
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
    sample_mix: SampleMix
    sample_mix_required: SampleMix | None
    checks: tuple[Check, ...]


@lru_cache(maxsize=4096)
def _t_quantile(degrees_of_freedom: int) -> float:
    return float(stats.t.ppf((1.0 + CONFIDENCE) / 2.0, degrees_of_freedom))


_Z = float(stats.norm.ppf((1.0 + CONFIDENCE) / 2.0))


def mean_with_interval(values: Iterable[float]) -> Estimate:
    """Arithmetic mean and its 95 % Student-t interval; no interval below two values."""
    data = list(values)
    n = len(data)
    if n == 0:
        return Estimate(value=None, n=0)
    # fsum and the clamp keep the mean inside [min, max] despite rounding.
    mean = min(max(math.fsum(data) / n, min(data)), max(data))
    if n < 2:  # noqa: PLR2004 - a spread needs two values
        return Estimate(value=mean, n=n)
    variance = math.fsum((x - mean) ** 2 for x in data) / (n - 1)
    half_width = _t_quantile(n - 1) * math.sqrt(variance / n)
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


def _meets(statistic: float, comparison: Comparison, threshold: float) -> bool:
    slack = _ROUNDING_SLACK * max(1.0, abs(threshold))
    if comparison == ">=":
        return statistic >= threshold - slack
    return statistic <= threshold + slack


def _interval_fails(estimate: Estimate, comparison: Comparison, threshold: float) -> bool:
    if estimate.ci_low is None or estimate.ci_high is None:
        return False
    if comparison == ">=":
        return estimate.ci_high < threshold
    return estimate.ci_low > threshold


def _judge(
    *,
    check_id: str,
    name: str,
    part: Part,
    unit: Unit,
    comparison: Comparison,
    threshold: float,
    estimate: Estimate,
    n_required: int,
) -> Check:
    passed: bool | None = None
    note = ""
    if estimate.value is None:
        note = "no samples to compute it from"
    elif estimate.n < n_required:
        note = f"not judged: n {estimate.n} < {n_required} required"
    else:
        passed = _meets(estimate.value, comparison, threshold)
    return Check(
        id=check_id,
        name=name,
        part=part,
        unit=unit,
        comparison=comparison,
        threshold=threshold,
        statistic=estimate.value,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        n=estimate.n,
        passed=passed,
        interval_fails=_interval_fails(estimate, comparison, threshold),
        note=note,
    )


def _share_estimate(rates: list[float], share_min_mbps: float) -> Estimate:
    at_or_above = sum(1 for rate in rates if rate >= share_min_mbps)
    return proportion_with_interval(at_or_above, len(rates))


def _direction_checks(
    direction: Direction,
    *,
    target: DirectionTarget,
    rates: list[float],
    mean: Estimate,
    plan_mbps: float | None,
    n_required: int,
) -> list[Check]:
    checks: list[Check] = []
    if target.mean_min_mbps is not None:
        checks.append(
            _judge(
                check_id=f"{direction}.mean",
                name=f"{direction} mean >= {target.mean_min_mbps:g} Mb/s",
                part="target",
                unit="Mb/s",
                comparison=">=",
                threshold=target.mean_min_mbps,
                estimate=mean,
                n_required=n_required,
            )
        )
    if target.share_min_mbps is not None and target.share_required is not None:
        checks.append(
            _judge(
                check_id=f"{direction}.share",
                name=(
                    f"share of {direction} samples >= {target.share_min_mbps:g} Mb/s"
                    f" is >= {target.share_required:.0%}"
                ),
                part="target",
                unit="share",
                comparison=">=",
                threshold=target.share_required,
                estimate=_share_estimate(rates, target.share_min_mbps),
                n_required=n_required,
            )
        )
    if target.plan_ratio is not None:
        name = f"{direction} mean >= {target.plan_ratio:g} x plan"
        if plan_mbps is None:
            checks.append(
                Check(
                    id=f"{direction}.plan",
                    name=name,
                    part="plan",
                    unit="Mb/s",
                    comparison=">=",
                    threshold=None,
                    statistic=mean.value,
                    ci_low=mean.ci_low,
                    ci_high=mean.ci_high,
                    n=mean.n,
                    passed=None,
                    interval_fails=False,
                    skipped=True,
                    note="skipped: no plan given, so plan conformity (QCVN 34) is not judged",
                )
            )
        else:
            threshold = target.plan_ratio * plan_mbps
            checks.append(
                _judge(
                    check_id=f"{direction}.plan",
                    name=f"{name} ({threshold:g} Mb/s)",
                    part="plan",
                    unit="Mb/s",
                    comparison=">=",
                    threshold=threshold,
                    estimate=mean,
                    n_required=n_required,
                )
            )
    return checks


def _combine(checks: Iterable[Check], *, enough: bool) -> VerdictStatus:
    judged = [check for check in checks if not check.skipped]
    if not enough:
        return "insufficient-data"
    # A definite fail of any criterion decides, even while another cannot be judged yet.
    if any(check.passed is False for check in judged):
        return "fail"
    if any(check.passed is None for check in judged):
        return "insufficient-data"
    return "pass"


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"{what} {moment.isoformat()} has no time zone; give timezone-aware times (UTC)"
        raise ValueError(msg)
    return moment


def _mix_met(counts: SampleMix, required: SampleMix | None) -> bool:
    if required is None:
        return True
    return (
        counts.indoor >= required.indoor
        and counts.outdoor_fixed >= required.outdoor_fixed
        and counts.outdoor_moving >= required.outdoor_moving
    )


def _plan_threshold(target: DirectionTarget | None, plan_mbps: float | None) -> float | None:
    if target is None or target.plan_ratio is None or plan_mbps is None:
        return None
    return target.plan_ratio * plan_mbps


def _reported(wanted: bool, estimate: Estimate) -> Estimate:
    """The estimate when the profile asks for it; otherwise an empty one, so fields stay None."""
    return estimate if wanted else Estimate(value=None, n=estimate.n)


class _Measured(_Frozen, frozen=True, kw_only=True):
    """The window's samples reduced to what the criteria need."""

    downloads: list[float]
    uploads: list[float]
    download: Estimate
    upload: Estimate
    latency: Estimate
    access_failure: Estimate


def _criteria(profile: Profile, measured: _Measured, plan: Plan | None) -> list[Check]:
    checks: list[Check] = []
    if profile.download is not None:
        checks += _direction_checks(
            "download",
            target=profile.download,
            rates=measured.downloads,
            mean=measured.download,
            plan_mbps=plan.download_mbps if plan else None,
            n_required=profile.n_required,
        )
    if profile.upload is not None:
        checks += _direction_checks(
            "upload",
            target=profile.upload,
            rates=measured.uploads,
            mean=measured.upload,
            plan_mbps=plan.upload_mbps if plan else None,
            n_required=profile.n_required,
        )
    if profile.access_failure_max is not None:
        checks.append(
            _judge(
                check_id="access_failure",
                name=f"access failure rate <= {profile.access_failure_max:.0%}",
                part="target",
                unit="share",
                comparison="<=",
                threshold=profile.access_failure_max,
                estimate=measured.access_failure,
                n_required=profile.n_required,
            )
        )
    if profile.latency_mean_max_ms is not None:
        checks.append(
            _judge(
                check_id="latency.mean",
                name=f"latency mean <= {profile.latency_mean_max_ms:g} ms",
                part="target",
                unit="ms",
                comparison="<=",
                threshold=profile.latency_mean_max_ms,
                estimate=measured.latency,
                n_required=profile.n_required,
            )
        )
    return checks


def evaluate_compliance(
    samples: Iterable[Sample],
    profile: Profile,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    plan: Plan | None = None,
) -> Verdict:
    """Judge the samples inside (now - window, now] against one profile."""
    _aware(now, "now")
    if window <= timedelta(0):
        msg = f"window {window} must be positive"
        raise ValueError(msg)
    start = now - window
    in_window = [s for s in samples if start < _aware(s.timestamp, "sample timestamp") <= now]

    # Only successful samples measure the link: failed ones count toward access failure (and as
    # attempts), probe-limited ones measured the probe's own ceiling and are counted apart.
    ok = [s for s in in_window if s.status == "ok"]
    n_failed = sum(1 for s in in_window if s.status == "failed")
    counted = [s for s in ok if s.download_mbps is not None]
    downloads = [s.download_mbps for s in counted if s.download_mbps is not None]
    uploads = [s.upload_mbps for s in ok if s.upload_mbps is not None]
    measured = _Measured(
        downloads=downloads,
        uploads=uploads,
        download=mean_with_interval(downloads),
        upload=mean_with_interval(uploads),
        latency=mean_with_interval(s.rtt_ms for s in ok if s.rtt_ms is not None),
        access_failure=proportion_with_interval(n_failed, len(in_window)),
    )
    mix = SampleMix(
        indoor=sum(1 for s in counted if s.setting == "indoor"),
        outdoor_fixed=sum(1 for s in counted if s.setting == "outdoor_fixed"),
        outdoor_moving=sum(1 for s in counted if s.setting == "outdoor_moving"),
    )

    checks = _criteria(profile, measured, plan)
    enough = measured.download.n >= profile.n_required
    status = _combine(checks, enough=enough)
    plan_checks = [check for check in checks if check.part == "plan"]
    plan_conformity: VerdictStatus | None = None
    national_target: VerdictStatus | None = None
    if plan_checks:
        if not all(check.skipped for check in plan_checks):
            plan_conformity = _combine(plan_checks, enough=enough)
        national_target = _combine(
            (check for check in checks if check.part == "target"), enough=enough
        )

    share_target = profile.download
    if share_target is None or share_target.share_min_mbps is None:
        share_target = None
        share = Estimate(value=None, n=len(downloads))
    else:
        share = _share_estimate(downloads, share_target.share_min_mbps)
    access_failure = _reported(profile.access_failure_max is not None, measured.access_failure)
    upload = _reported(profile.upload is not None, measured.upload)
    latency = _reported(profile.latency_mean_max_ms is not None, measured.latency)

    return Verdict(
        profile=profile.name,
        status=status,
        early_warning=status == "insufficient-data"
        and any(check.interval_fails for check in checks if not check.skipped),
        method=QCVN_METHOD if _mix_met(mix, profile.sample_mix) else MONITORING_METHOD,
        window_start=start,
        window_end=now,
        n=measured.download.n,
        n_required=profile.n_required,
        n_attempts=len(in_window),
        n_failed=n_failed,
        n_probe_limited=sum(1 for s in in_window if s.status == "probe_limited"),
        mean_download_mbps=measured.download.value,
        ci_low=measured.download.ci_low,
        ci_high=measured.download.ci_high,
        share_min_mbps=share_target.share_min_mbps if share_target else None,
        share_required=share_target.share_required if share_target else None,
        share_at_or_above_min=share.value,
        share_ci_low=share.ci_low,
        share_ci_high=share.ci_high,
        access_failure_rate=access_failure.value,
        access_failure_ci_low=access_failure.ci_low,
        access_failure_ci_high=access_failure.ci_high,
        n_upload=upload.n,
        mean_upload_mbps=upload.value,
        upload_ci_low=upload.ci_low,
        upload_ci_high=upload.ci_high,
        n_latency=latency.n,
        mean_latency_ms=latency.value,
        latency_ci_low=latency.ci_low,
        latency_ci_high=latency.ci_high,
        plan_conformity=plan_conformity,
        plan_download_threshold_mbps=_plan_threshold(
            profile.download, plan.download_mbps if plan else None
        ),
        plan_upload_threshold_mbps=_plan_threshold(
            profile.upload, plan.upload_mbps if plan else None
        ),
        national_target=national_target,
        sample_mix=mix,
        sample_mix_required=profile.sample_mix,
        checks=tuple(checks),
    )


def evaluate_areas(
    keyed_samples: Iterable[tuple[AreaKey, Sample]],
    profile: Profile | Callable[[AreaKey], Profile | None],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    plans: Mapping[AreaKey, Plan] | None = None,
) -> dict[AreaKey, Verdict]:
    """Group samples by area key (e.g. commune x technology x operator) and judge each group.

    `profile` is one profile for every group, or a function choosing it from the key (such as
    `contract.profiles.profile_for` on the key's technology); a group it gives None for is left out.
    """
    groups: dict[AreaKey, list[Sample]] = {}
    for key, sample in keyed_samples:
        groups.setdefault(key, []).append(sample)
    verdicts: dict[AreaKey, Verdict] = {}
    for key, group in groups.items():
        chosen = profile if isinstance(profile, Profile) else profile(key)
        if chosen is None:
            continue
        verdicts[key] = evaluate_compliance(
            group,
            chosen,
            now=now,
            window=window,
            plan=plans.get(key) if plans is not None else None,
        )
    return verdicts
