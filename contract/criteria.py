"""The criteria of a QCVN profile, defined once: the collector's engine judges an area with them,
the technician's check holds one sample against them.

Each criterion belongs to one part. `regulation`: what the regulation demands (QCVN 81/126 and the
4G plan target they are the method of; QCVN 34 plan conformity) — its status is the verdict and its
failure is a critical alert. `programme`: a national programme indicator the profile lists in
`programme` (the fixed 1 Gb/s target) — reported beside the verdict, never merged into it.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from contract.i18n import N_, _, number, percent
from contract.profiles import DirectionTarget, Profile, limited_quantities
from contract.quantities import Comparison, declared_quantities
from contract.result import Plan

Part = Literal["regulation", "programme"]
# download.mean, download.share, upload.mean, upload.share, access_failure, latency.mean, and
# `<quantity>.mean` for each quantity a measurement kind declares (contract.quantities).
Statistic = str
# Mb/s, ms, share, or a declared quantity's unit.
Unit = str
Direction = Literal["download", "upload"]


class Criterion(NamedTuple):
    id: str
    name: str
    part: Part
    statistic: Statistic
    unit: Unit
    comparison: Comparison
    # None: cannot be judged (a plan criterion without a plan); `note` says why.
    threshold: float | None
    # For a share criterion: the per-sample rate a sample must reach.
    share_min_mbps: float | None = None
    note: str = ""
    # Skipped, not insufficient, while no sample carries its statistic at all: a quantity of a kind
    # added later is absent from older probes' results and from campaigns that did not measure it.
    skip_unmeasured: bool = False


def criteria(profile: Profile, plan: Plan | None) -> tuple[Criterion, ...]:
    """Every criterion of the profile, in a fixed order: download, upload, access, latency, then
    the declared quantities' means in the profile's order."""
    # A national refresh judges tens of thousands of areas against a handful of (profile, plan)
    # pairs; profiles are immutable, so the answer is remembered per pair.
    key = (id(profile), plan)
    cached = _cache.get(key)
    if cached is not None and cached[0] is profile:
        return cached[1]
    found = _criteria(profile, plan)
    if len(_cache) > _CACHE_SIZE:
        _cache.clear()
    _cache[key] = (profile, found)
    return found


_CACHE_SIZE = 1024
_cache: dict[tuple[int, Plan | None], tuple[Profile, tuple[Criterion, ...]]] = {}


def _criteria(profile: Profile, plan: Plan | None) -> tuple[Criterion, ...]:
    found: list[Criterion] = []
    if profile.download is not None:
        plan_mbps = None if plan is None else plan.download_mbps
        found += _direction(profile, "download", profile.download, plan_mbps)
    if profile.upload is not None:
        plan_mbps = None if plan is None else plan.upload_mbps
        found += _direction(profile, "upload", profile.upload, plan_mbps)
    if profile.access_failure_max is not None:
        found.append(
            Criterion(
                id="access_failure",
                name=f"access failure rate <= {profile.access_failure_max:.0%}",
                part=_part(profile, "access_failure"),
                statistic="access_failure",
                unit="share",
                comparison="<=",
                threshold=profile.access_failure_max,
            )
        )
    if profile.latency_mean_max_ms is not None:
        found.append(
            Criterion(
                id="latency.mean",
                name=f"latency mean <= {profile.latency_mean_max_ms:g} ms",
                part=_part(profile, "latency.mean"),
                statistic="latency.mean",
                unit="ms",
                comparison="<=",
                threshold=profile.latency_mean_max_ms,
            )
        )
    for quantity, limit in limited_quantities(profile):
        found.append(
            Criterion(
                id=quantity.criterion_id,
                name=f"{quantity.title} mean {quantity.comparison} {limit:g} {quantity.unit}",
                part=_part(profile, quantity.criterion_id),
                statistic=quantity.criterion_id,
                unit=quantity.unit,
                comparison=quantity.comparison,
                threshold=limit,
                skip_unmeasured=True,
            )
        )
    return tuple(found)


def _part(profile: Profile, criterion_id: str) -> Part:
    return "programme" if criterion_id in profile.programme else "regulation"


def _direction(
    profile: Profile, direction: Direction, target: DirectionTarget, plan_mbps: float | None
) -> list[Criterion]:
    found: list[Criterion] = []
    mean: Statistic = "download.mean" if direction == "download" else "upload.mean"
    share: Statistic = "download.share" if direction == "download" else "upload.share"
    if target.mean_min_mbps is not None:
        criterion_id = f"{direction}.mean"
        found.append(
            Criterion(
                id=criterion_id,
                name=f"{direction} mean >= {target.mean_min_mbps:g} Mb/s",
                part=_part(profile, criterion_id),
                statistic=mean,
                unit="Mb/s",
                comparison=">=",
                threshold=target.mean_min_mbps,
            )
        )
    if target.share_min_mbps is not None and target.share_required is not None:
        criterion_id = f"{direction}.share"
        found.append(
            Criterion(
                id=criterion_id,
                name=(
                    f"share of {direction} samples >= {target.share_min_mbps:g} Mb/s"
                    f" is >= {target.share_required:.0%}"
                ),
                part=_part(profile, criterion_id),
                statistic=share,
                unit="share",
                comparison=">=",
                threshold=target.share_required,
                share_min_mbps=target.share_min_mbps,
            )
        )
    if target.plan_ratio is not None:
        criterion_id = f"{direction}.plan"
        name = f"{direction} mean >= {target.plan_ratio:g} x plan"
        threshold = None if plan_mbps is None else target.plan_ratio * plan_mbps
        found.append(
            Criterion(
                id=criterion_id,
                name=name if threshold is None else f"{name} ({threshold:g} Mb/s)",
                part=_part(profile, criterion_id),
                statistic=mean,
                unit="Mb/s",
                comparison=">=",
                threshold=threshold,
                note=""
                if threshold is not None
                else "not judged: no single subscribed plan, so QCVN 34 plan conformity cannot be",
            )
        )
    return found


# A criterion as people read it, by its id; the figures are filled in formatted.
_CRITERION_NAMES: Final[dict[str, str]] = {
    "download.mean": N_("download mean ≥ {threshold} Mb/s"),
    "upload.mean": N_("upload mean ≥ {threshold} Mb/s"),
    "download.share": N_("share of download samples ≥ {rate} Mb/s is ≥ {share}"),
    "upload.share": N_("share of upload samples ≥ {rate} Mb/s is ≥ {share}"),
    "download.plan": N_("download mean ≥ {ratio} x plan"),
    "upload.plan": N_("upload mean ≥ {ratio} x plan"),
    "access_failure": N_("access failure rate ≤ {share}"),
    "latency.mean": N_("latency mean ≤ {threshold} ms"),
}
_QUANTITY_NAMES: Final[dict[str, str]] = {
    ">=": N_("{quantity} mean ≥ {threshold} {unit}"),
    "<=": N_("{quantity} mean ≤ {threshold} {unit}"),
}


def stated(value: float) -> str:
    """A threshold as a profile states it: 40, 0,8, 1.000 (no trailing zeros)."""
    return number(value, 3).rstrip("0").rstrip(",.") if value % 1 else number(value, 0)


def criterion_name(criterion: Criterion, profile: Profile) -> str:
    """The criterion in the chosen language, with the profile's figures (`name` is the engine's
    English, stored with verdicts)."""
    threshold = criterion.threshold
    quantity = declared_quantities().get(criterion.statistic.removesuffix(".mean"))
    if criterion.id in _CRITERION_NAMES:
        template = _(_CRITERION_NAMES[criterion.id])
    elif quantity is not None:
        template = _(_QUANTITY_NAMES[quantity.comparison])
    else:
        return criterion.name  # a criterion without words yet: the engine's own
    direction = profile.download if criterion.id.startswith("download") else profile.upload
    ratio = direction.plan_ratio if direction is not None else None
    name = template.format(
        threshold="" if threshold is None else stated(threshold),
        share="" if threshold is None else percent(threshold),
        rate="" if criterion.share_min_mbps is None else stated(criterion.share_min_mbps),
        ratio="" if ratio is None else stated(ratio),
        quantity=_(quantity.title) if quantity is not None else "",
        unit=criterion.unit,
    )
    if criterion.id.endswith(".plan") and threshold is not None:
        return _("{name} ({threshold} Mb/s)").format(name=name, threshold=stated(threshold))
    return name
