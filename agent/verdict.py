"""What one result says against its link's QCVN profile, for the technician on site.

One sample is never a verdict: a regulation judges the mean of n samples (1,500 for 4G). So each
line holds *this sample* against one criterion of the profile — the criteria the collector judges
an area with (contract.criteria), the regulation's before the programme's — then says whether the
method would count the sample at all and where it was taken, and last what a formal verdict needs.
A fixed line shows its two parts apart: QCVN 34 plan conformity (the regulation) and the national
target (a programme indicator, which never reads as a failure of a line that conforms to its plan).

The headline sums the lines up for a technician on a ladder: this sample passes (ĐẠT) when it meets
every criterion of the regulation it can be held against, fails (KHÔNG ĐẠT) when it misses one, and
is not judged when its technology has no profile, nothing of it could be held against one, or
its rate is not the link's (probe-limited, still climbing, above the physical ceiling).
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from contract.criteria import Criterion, Statistic, criteria, criterion_name, stated
from contract.i18n import N_, _, number, percent
from contract.profiles import Profile, ceiling_mbps, profile_for
from contract.quantities import declared_quantities, value_in
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
# The screen's row label of each part (the regulations' names are not translated).
REGULATION: Final = "QCVN"
PLAN_CONFORMITY: Final = "QCVN 34"
PROGRAMME: Final = N_("programme")
SAMPLE: Final = N_("sample")
# This sample against the regulation: what the headline says first, and `--json`'s verdict.
Outcome = Literal["pass", "fail", "not_judged"]
# Sample classes whose rate is not the link's: the headline judges none of them.
RATE_NOT_THE_LINKS: Final = frozenset({"probe_limited", "unconverged", "implausible"})
OUTCOMES: Final[dict[Outcome, str]] = {
    "pass": N_("PASS"),
    "fail": N_("FAIL"),
    "not_judged": N_("NOT JUDGED"),
}
# What the headline's figure names, by the statistic's first part.
_MEASURED: Final[dict[str, str]] = {
    "download": N_("download"),
    "upload": N_("upload"),
    "latency": N_("latency"),
}


class SampleLine(NamedTuple):
    heading: str
    tone: Tone
    text: str


class Judgement(NamedTuple):
    """This sample against one criterion; `meets` None: not judged (no plan, nothing measured)."""

    criterion: Criterion
    value: float | None
    meets: bool | None


class Headline(NamedTuple):
    outcome: Outcome
    profile: str | None
    # The figure that decided, as the screen says it: the first criterion missed, or else the first
    # met; empty when nothing was judged.
    figure: str


def sample_lines(result: Result, profiles: dict[str, Profile] | None = None) -> list[SampleLine]:
    profile = profile_for(result.link.technology, profiles)
    if profile is None:
        text = _("no QCVN profile for technology {technology!r}")
        return [SampleLine(REGULATION, "info", text.format(technology=result.link.technology))]
    lines = [
        line
        for judgement in judgements(result, profile)
        if (line := _criterion_line(judgement, result, profile)) is not None
    ]
    method = _method_line(result, profile)
    if method is not None:
        lines.append(method)
    lines.append(_setting_line(result, profile))
    lines.append(SampleLine(REGULATION, "info", _formal_verdict(profile)))
    return lines


def judgements(result: Result, profile: Profile) -> list[Judgement]:
    """This sample against each criterion of the profile: the regulation's first, then the
    programme's (two parts, shown apart)."""
    ordered = sorted(criteria(profile, result.link.plan), key=lambda c: c.part == "programme")
    return [_judge(criterion, result) for criterion in ordered]


def headline(result: Result, profiles: dict[str, Profile] | None = None) -> Headline:
    profile = profile_for(result.link.technology, profiles)
    if profile is None:
        return Headline("not_judged", None, "")
    if sample_class(result, profile) in RATE_NOT_THE_LINKS:
        # The probe, the path or an absurd figure set this rate, not the link: ĐẠT or KHÔNG ĐẠT
        # on it would tell the technician something the method itself refuses to count.
        return Headline("not_judged", profile.name, "")
    judged = [
        judgement
        for judgement in judgements(result, profile)
        if judgement.criterion.part == "regulation" and judgement.meets is not None
    ]
    missed = [judgement for judgement in judged if not judgement.meets]
    if missed:
        return Headline("fail", profile.name, _figure(missed[0]))
    if judged:
        # A measured figure says more than "connected": the access criterion comes last.
        judged.sort(key=lambda judgement: judgement.value is None)
        return Headline("pass", profile.name, _figure(judged[0]))
    return Headline("not_judged", profile.name, "")


def _judge(criterion: Criterion, result: Result) -> Judgement:
    threshold = criterion.threshold
    if threshold is None:
        return Judgement(criterion, None, None)
    if criterion.statistic == "access_failure":
        if attempt_failed(result):
            return Judgement(criterion, None, meets=False)
        # No speed attempt: nothing to say about access.
        connected = result.measurements.download is not None
        return Judgement(criterion, None, True if connected else None)
    value = _value(criterion.statistic, result)
    if value is None:
        return Judgement(criterion, None, None)
    if criterion.share_min_mbps is not None:
        # One sample is in the share or not; the share itself is judged over n samples.
        return Judgement(criterion, value, value >= criterion.share_min_mbps)
    meets = value >= threshold if criterion.comparison == ">=" else value <= threshold
    return Judgement(criterion, value, meets)


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


def _shown(criterion: Criterion, value: float) -> str:
    # A share criterion's sample is a rate too.
    if criterion.unit in {"Mb/s", "share"}:
        return f"{number(value)} Mb/s"
    return f"{number(value, 0)} {criterion.unit}"


def _figure(judgement: Judgement) -> str:
    """The headline's figure: what was measured and what the criterion asks, e.g.
    "download 25.0 Mb/s (≥ 40 Mb/s)"."""
    criterion, value = judgement.criterion, judgement.value
    if value is None:
        return _("access: connected") if judgement.meets else _("access: the attempt failed")
    first = criterion.statistic.partition(".")[0]
    quantity = declared_quantities().get(criterion.statistic.removesuffix(".mean"))
    measured = (
        _(_MEASURED[first]) if first in _MEASURED else _(quantity.title) if quantity else first
    )
    if criterion.share_min_mbps is not None:
        asked = f"≥ {stated(criterion.share_min_mbps)} Mb/s"
    else:
        comparison = "≥" if criterion.comparison == ">=" else "≤"
        unit = "Mb/s" if criterion.unit == "share" else criterion.unit
        asked = f"{comparison} {stated(criterion.threshold or 0.0)} {unit}"
    return f"{measured} {_shown(criterion, value)} ({asked})"


def _criterion_line(judgement: Judgement, result: Result, profile: Profile) -> SampleLine | None:
    criterion, value = judgement.criterion, judgement.value
    heading, name = REGULATION, criterion_name(criterion, profile)
    if criterion.id.endswith(".plan"):
        heading, name = PLAN_CONFORMITY, _("plan conformity, {name}").format(name=name)
    elif criterion.part == "programme":
        heading, name = _(PROGRAMME), _("national target, {name}").format(name=name)
    if criterion.threshold is None:
        text = _(
            "{name}: not judged, the link has no subscribed plan (give --plan DOWN/UP to judge it)"
        )
        return SampleLine(heading, "info", text.format(name=name))
    if criterion.statistic == "access_failure":
        return _access_line(heading, name, judgement, result)
    if value is None:
        return None
    return _measured_line(judgement, heading, name, value)


def _measured_line(judgement: Judgement, heading: str, name: str, value: float) -> SampleLine:
    criterion = judgement.criterion
    shown = _shown(criterion, value)
    if criterion.share_min_mbps is not None:
        text = (
            _("{name}: this sample's {shown} is at or above {rate} Mb/s")
            if judgement.meets
            else _("{name}: this sample's {shown} is below {rate} Mb/s")
        )
        rate = stated(criterion.share_min_mbps)
        tone: Tone = "meets" if judgement.meets else "misses"
        return SampleLine(heading, tone, text.format(name=name, shown=shown, rate=rate))
    if judgement.meets:
        text = _("{name}: this sample's {shown} meets it")
        return SampleLine(heading, "meets", text.format(name=name, shown=shown))
    if criterion.part == "programme":
        text = _(
            "{name}: this sample's {shown} is below it (a programme indicator, not a failure of "
            "the regulation)"
        )
        return SampleLine(heading, "warning", text.format(name=name, shown=shown))
    text = _("{name}: this sample's {shown} misses it")
    return SampleLine(heading, "misses", text.format(name=name, shown=shown))


def _access_line(
    heading: str, name: str, judgement: Judgement, result: Result
) -> SampleLine | None:
    if judgement.meets is None:
        return None
    if attempt_failed(result):
        text = _("{name}: this attempt failed and counts as an access failure")
        return SampleLine(heading, "misses", text.format(name=name))
    return SampleLine(heading, "meets", _("{name}: this attempt connected").format(name=name))


def _method_line(result: Result, profile: Profile) -> SampleLine | None:
    chosen = sample_class(result, profile)
    gap = result.provenance.gap_s
    if chosen is None:
        return None
    if chosen == "counted":
        if gap is not None and profile.min_gap_s > 0:
            text = _(
                "the method counts this sample ({gap} s after this link's previous counted "
                "sample; at least {min_gap} s needed)"
            ).format(gap=number(gap, 0), min_gap=stated(profile.min_gap_s))
        else:
            text = _("the method counts this sample")
        return SampleLine(_(SAMPLE), "info", text)
    if chosen == "too_close":
        text = _(
            "the method would not count this sample: {gap} s after this link's previous counted "
            "sample, closer than the {profile} minimum gap of {min_gap} s (counted as too close)"
        ).format(gap=number(gap or 0.0), profile=profile.name, min_gap=stated(profile.min_gap_s))
    elif chosen == "failed":
        text = _("a failed attempt: it enters no mean")
    elif chosen == "probe_limited":
        text = _(
            "the method would not count this sample: probe-limited (the probe's CPU, not the "
            "link, may have set the rate); kept and counted apart"
        )
    elif chosen == "unconverged":
        text = _(
            "the method would not count this sample: the rate was still climbing when the test "
            "ended (a long path); a lower bound, not the link's rate: kept and counted apart"
        )
    else:
        ceiling = ceiling_mbps(profile, result.link.technology)
        download, upload = result.measurements.download, result.measurements.upload
        fastest = max(t.mbps for t in (download, upload) if t is not None)
        text = _(
            "the method would not count this sample: {fastest} Mb/s is above the {technology} "
            "physical ceiling of {ceiling} Mb/s (implausible); kept as evidence"
        ).format(
            fastest=number(fastest),
            technology=result.link.technology,
            ceiling=number(ceiling, 0),
        )
    return SampleLine(_(SAMPLE), "warning", text)


def _setting_line(result: Result, profile: Profile) -> SampleLine:
    setting = result.link.setting
    mix = profile.sample_mix
    if setting is None:
        if mix is None:
            return SampleLine(_(SAMPLE), "info", _("setting not declared"))
        text = _(
            "setting not declared: this sample counts in no part of the QCVN sample mix (pass "
            "--setting, or enroll the link with --setting IF:SETTING)"
        )
        return SampleLine(_(SAMPLE), "warning", text)
    if mix is None:
        return SampleLine(_(SAMPLE), "info", _("setting {setting}").format(setting=setting))
    needed: int = getattr(mix, setting)
    text = _(
        "setting {setting}: one of the {needed} {setting} samples the QCVN method asks for"
    ).format(setting=setting, needed=number(needed, 0))
    return SampleLine(_(SAMPLE), "info", text)


def _formal_verdict(profile: Profile) -> str:
    text = _(
        "one sample is not a verdict: a formal {profile} verdict needs n ≥ {n} counted samples"
    ).format(profile=profile.name, n=number(profile.n_required, 0))
    mix = profile.sample_mix
    if mix is not None:
        text += _(
            "; it follows the QCVN method with at least {indoor} indoor, {outdoor_fixed} "
            "outdoor_fixed and {outdoor_moving} outdoor_moving among them"
        ).format(
            indoor=number(mix.indoor, 0),
            outdoor_fixed=number(mix.outdoor_fixed, 0),
            outdoor_moving=number(mix.outdoor_moving, 0),
        )
    if profile.day_part_min_share is not None:
        text += _(
            "; it follows the QCVN method when each six-hour part of the day (Vietnam time) "
            "holds at least {share} of them"
        ).format(share=percent(profile.day_part_min_share))
    return text
