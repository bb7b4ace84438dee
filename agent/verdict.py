"""What one result says against its link's QCVN profile, for the technician on site.

One sample is never a verdict: a regulation judges the mean of n samples (1,500 for 4G), so each
line says whether *this sample* meets a target, and the last says what a formal verdict needs.
"""

from __future__ import annotations

from typing import NamedTuple

from contract.profiles import DirectionTarget, Profile, profile_for
from contract.result import Plan, Result, Throughput


class SampleLine(NamedTuple):
    meets: bool | None  # None: information, not a comparison
    text: str


def sample_lines(result: Result, profiles: dict[str, Profile] | None = None) -> list[SampleLine]:
    profile = profile_for(result.link.technology, profiles)
    if profile is None:
        return [SampleLine(None, f"no QCVN profile for technology {result.link.technology!r}")]
    measurements = result.measurements
    lines: list[SampleLine] = []
    if measurements.download is None and result.errors:
        lines.append(
            SampleLine(
                meets=False,
                text="this attempt failed: it counts as an access failure"
                + (
                    f" (at most {profile.access_failure_max:.0%} allowed)"
                    if profile.access_failure_max
                    else ""
                ),
            )
        )
    for direction, measured, target in (
        ("download", measurements.download, profile.download),
        ("upload", measurements.upload, profile.upload),
    ):
        if measured is not None and target is not None:
            lines += _direction_lines(profile, direction, measured, target, result.link.plan)
    latency = measurements.latency.idle if measurements.latency else None
    if latency is not None and profile.latency_mean_max_ms is not None:
        limit = profile.latency_mean_max_ms
        meets = latency.median_ms <= limit
        lines.append(
            SampleLine(
                meets,
                f"this sample's latency {latency.median_ms:.0f} ms "
                f"{'meets' if meets else 'misses'} the {profile.name} limit of {limit:g} ms",
            )
        )
    lines.append(
        SampleLine(
            None,
            f"one sample is not a verdict: a formal {profile.name} verdict needs "
            f"n ≥ {profile.n_required:,} samples",
        )
    )
    return lines


def _direction_lines(
    profile: Profile,
    direction: str,
    measured: Throughput,
    target: DirectionTarget,
    plan: Plan | None,
) -> list[SampleLine]:
    lines = []
    rate = measured.mbps
    if target.mean_min_mbps is not None:
        floor = target.mean_min_mbps
        meets = rate >= floor
        lines.append(
            SampleLine(
                meets,
                f"this sample's {direction} {rate:.1f} Mb/s {'meets' if meets else 'misses'} "
                f"the {profile.name} target of {floor:g} Mb/s",
            )
        )
    if target.share_min_mbps is not None and target.share_required is not None:
        floor = target.share_min_mbps
        meets = rate >= floor
        lines.append(
            SampleLine(
                meets,
                f"this sample is {'at or above' if meets else 'below'} the {floor:g} Mb/s "
                f"{direction} minimum ({target.share_required:.0%} of samples must be)",
            )
        )
    if target.plan_ratio is not None and plan is not None:
        advertised = plan.download_mbps if direction == "download" else plan.upload_mbps
        floor = target.plan_ratio * advertised
        meets = rate >= floor
        lines.append(
            SampleLine(
                meets,
                f"this sample's {direction} {rate:.1f} Mb/s {'meets' if meets else 'misses'} "
                f"{target.plan_ratio:.0%} of the plan's {advertised:g} Mb/s ({floor:g} Mb/s)",
            )
        )
    return lines
