"""What one result says against its link's QCVN profile, for the technician on site.

One sample is never a verdict: a regulation judges the mean of n samples (1,500 for 4G). So each
line holds *this sample* against one criterion of the profile — the criteria the collector judges
an area with (contract.criteria), the regulation's before the programme's — then says whether the
method would count the sample at all and where it was taken, and last what a formal verdict needs.
A fixed line shows its two parts apart: QCVN 34 plan conformity (the regulation) and the national
target (a programme indicator, which never reads as a failure of a line that conforms to its plan).
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from contract.criteria import Criterion, Statistic, criteria
from contract.profiles import Profile, ceiling_mbps, profile_for
from contract.quantities import value_in
from contract.result import Result
from contract.sampling import attempt_failed, sample_class

# How the screen shows a line: meets / misses a criterion of the regulation, a warning (a
# programme indicator missed, a sample the method would not count), or information.
Tone = Literal["meets", "misses", "warning", "info"]
# Rich styles: a programme indicator missed is yellow, never the red of the regulation.
TONE_STYLES: Final[dict[Tone, str]] = {
    "meets": "green",
    "misses": "red",
    "warning": "yellow",
    "info": "dim",
}
# The screen's row label of each part.
REGULATION: Final = "QCVN"
PLAN_CONFORMITY: Final = "QCVN 34"
PROGRAMME: Final = "programme"
SAMPLE: Final = "sample"


class SampleLine(NamedTuple):
    heading: str
    tone: Tone
    text: str


def sample_lines(result: Result, profiles: dict[str, Profile] | None = None) -> list[SampleLine]:
    profile = profile_for(result.link.technology, profiles)
    if profile is None:
        return [
            SampleLine(
                REGULATION, "info", f"no QCVN profile for technology {result.link.technology!r}"
            )
        ]
    # The regulation's criteria first, then the programme's: two parts, shown apart.
    ordered = sorted(criteria(profile, result.link.plan), key=lambda c: c.part == "programme")
    lines = [
        line for criterion in ordered if (line := _criterion_line(criterion, result)) is not None
    ]
    method = _method_line(result, profile)
    if method is not None:
        lines.append(method)
    lines.append(_setting_line(result, profile))
    lines.append(SampleLine(REGULATION, "info", _formal_verdict(profile)))
    return lines


def _value(statistic: Statistic, result: Result) -> float | None:
    """This sample's value of what the statistic averages or counts."""
    measurements = result.measurements
    if statistic.startswith("download."):
        return measurements.download.mbps if measurements.download else None
    if statistic.startswith("upload."):
        return measurements.upload.mbps if measurements.upload else None
    if statistic == "latency.mean":
        latency = measurements.latency
        return latency.idle.median_ms if latency and latency.idle else None
    # A quantity a measurement kind declares: `<name>.mean`.
    return value_in(measurements, statistic.removesuffix(".mean"))


def _criterion_line(criterion: Criterion, result: Result) -> SampleLine | None:
    heading, name = REGULATION, criterion.name
    if criterion.id.endswith(".plan"):
        heading, name = PLAN_CONFORMITY, f"plan conformity, {name}"
    elif criterion.part == "programme":
        heading, name = PROGRAMME, f"national target, {name}"
    if criterion.threshold is None:
        return SampleLine(
            heading,
            "info",
            f"{name}: not judged, the link has no subscribed plan "
            "(give --plan DOWN/UP to judge it)",
        )
    if criterion.statistic == "access_failure":
        return _access_line(heading, name, result)
    value = _value(criterion.statistic, result)
    if value is None:
        return None
    return _measured_line(criterion, heading, name, value, criterion.threshold)


def _measured_line(
    criterion: Criterion, heading: str, name: str, value: float, threshold: float
) -> SampleLine:
    # A share criterion's sample is a rate too.
    rate = criterion.unit in {"Mb/s", "share"}
    shown = f"{value:,.1f} Mb/s" if rate else f"{value:,.0f} {criterion.unit}"
    if criterion.share_min_mbps is not None:
        # One sample is in the share or not; the share itself is judged over n samples.
        inside = value >= criterion.share_min_mbps
        where = "at or above" if inside else "below"
        return SampleLine(
            heading,
            "meets" if inside else "misses",
            f"{name}: this sample's {shown} is {where} {criterion.share_min_mbps:g} Mb/s",
        )
    meets = value >= threshold if criterion.comparison == ">=" else value <= threshold
    if meets:
        return SampleLine(heading, "meets", f"{name}: this sample's {shown} meets it")
    if criterion.part == "programme":
        return SampleLine(
            heading,
            "warning",
            f"{name}: this sample's {shown} is below it (a programme indicator, "
            "not a failure of the regulation)",
        )
    return SampleLine(heading, "misses", f"{name}: this sample's {shown} misses it")


def _access_line(heading: str, name: str, result: Result) -> SampleLine | None:
    if attempt_failed(result):
        return SampleLine(
            heading, "misses", f"{name}: this attempt failed and counts as an access failure"
        )
    if result.measurements.download is None:
        return None  # no speed attempt: nothing to say about access
    return SampleLine(heading, "meets", f"{name}: this attempt connected")


def _method_line(result: Result, profile: Profile) -> SampleLine | None:
    chosen = sample_class(result, profile)
    gap = result.provenance.gap_s
    not_counted = "the method would not count this sample:"
    if chosen is None:
        return None
    if chosen == "counted":
        since = ""
        if gap is not None and profile.min_gap_s > 0:
            since = (
                f" ({gap:,.0f} s after this link's previous counted sample; "
                f"at least {profile.min_gap_s:g} s needed)"
            )
        return SampleLine(SAMPLE, "info", f"the method counts this sample{since}")
    if chosen == "too_close":
        text = (
            f"{not_counted} {gap:,.1f} s after this link's previous counted sample, closer than "
            f"the {profile.name} minimum gap of {profile.min_gap_s:g} s (counted as too close)"
        )
    elif chosen == "failed":
        text = "a failed attempt: it enters no mean"
    elif chosen == "probe_limited":
        text = (
            f"{not_counted} probe-limited (the probe's CPU, not the link, may have set the rate);"
            " kept and counted apart"
        )
    else:
        ceiling = ceiling_mbps(profile, result.link.technology)
        download, upload = result.measurements.download, result.measurements.upload
        fastest = max(t.mbps for t in (download, upload) if t is not None)
        text = (
            f"{not_counted} {fastest:,.1f} Mb/s is above the {result.link.technology} physical "
            f"ceiling of {ceiling:,.0f} Mb/s (implausible); kept as evidence"
        )
    return SampleLine(SAMPLE, "warning", text)


def _setting_line(result: Result, profile: Profile) -> SampleLine:
    setting = result.link.setting
    mix = profile.sample_mix
    if setting is None:
        if mix is None:
            return SampleLine(SAMPLE, "info", "setting not declared")
        return SampleLine(
            SAMPLE,
            "warning",
            "setting not declared: this sample counts in no part of the QCVN sample mix "
            "(pass --setting, or enroll the link with --setting IF:SETTING)",
        )
    if mix is None:
        return SampleLine(SAMPLE, "info", f"setting {setting}")
    needed: int = getattr(mix, setting)
    return SampleLine(
        SAMPLE,
        "info",
        f"setting {setting}: one of the {needed:,} {setting} samples the QCVN method asks for",
    )


def _formal_verdict(profile: Profile) -> str:
    text = (
        f"one sample is not a verdict: a formal {profile.name} verdict needs "
        f"n ≥ {profile.n_required:,} counted samples"
    )
    mix = profile.sample_mix
    if mix is not None:
        text += (
            f"; it follows the QCVN method with at least {mix.indoor:,} indoor, "
            f"{mix.outdoor_fixed:,} outdoor_fixed and {mix.outdoor_moving:,} outdoor_moving among "
            "them"
        )
    if profile.day_part_min_share is not None:
        text += (
            "; it follows the QCVN method when each six-hour part of the day (Vietnam time) "
            f"holds at least {profile.day_part_min_share:.0%} of them"
        )
    return text
