"""A report's words and tables, in the chosen language, once for both the PDF and the HTML.

Every figure goes through Babel (contract.i18n: 1.234,5 and 95 % in Vietnamese); every word is a
gettext message. The verdict's parts are the engine's own (collector/compliance.py), named as
`evaluate` names them (contract.criteria).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_date, format_datetime

from collector.compliance import Judgement, Verdict
from collector.evaluate import METHODS, VERDICT_STATUSES, headline
from collector.report.findings import Finding, Report
from collector.report.scope import LEVEL_NAMES
from contract.criteria import criteria, criterion_name
from contract.i18n import N_, _, current, measured, number
from contract.profiles import shown_title

VIETNAM_ZONE: Final = ZoneInfo("Asia/Ho_Chi_Minh")
PARTS: Final = {"regulation": N_("regulation"), "programme": N_("programme indicator")}
# Why a class of attempts is left out of the means (docs/qcvn-method.md, section 3).
EXCLUSIONS: Final = (
    ("n_too_close", N_("too close"), N_("under the minimum gap after the device's last sample")),
    ("n_failed", N_("failed"), N_("could not connect: counts toward access failure, in no mean")),
    (
        "n_probe_limited",
        N_("probe-limited"),
        N_("the probe's CPU may have set the rate: in no mean"),
    ),
    ("n_unconverged", N_("unconverged"), N_("the rate was still climbing when the test ended")),
    ("n_implausible", N_("implausible"), N_("above the technology's physical ceiling")),
    ("n_duplicates", N_("duplicate"), N_("the same device and time as another sample")),
)
# The method in brief (docs/qcvn-method.md says it in full).
METHOD: Final = (
    N_(
        "A verdict is about one area, one access technology and one operator over the period, "
        "against the profile of that technology (the figures of one regulation or target)."
    ),
    N_(
        "One sample is one speed test of one probe's link: the bytes of its measured phase "
        "divided by that phase's duration, after a warm-up, over several parallel connections, "
        "to a test server inside Vietnam. Rates are taken to 0.01 Mb/s."
    ),
    N_(
        "The statistic is the arithmetic mean of the per-sample rates, with its 95 % Student-t "
        "interval; a share of samples has a 95 % Wilson interval."
    ),
    N_(
        "Samples of one device closer than the minimum gap count once; failed attempts count "
        "toward the access failure rate only; probe-limited, unconverged and implausible samples "
        "enter no mean. Each is counted and shown."
    ),
    N_(
        "PASS or FAIL is said only once the number of samples reaches the regulation's minimum, "
        "judging the statistic itself against the target; the interval is reported beside it. "
        "With fewer samples the verdict is NOT ENOUGH DATA, with an early warning when the whole "
        "interval lies on the failing side."
    ),
    N_(
        "Fixed probes stand at fixed points: unless the indoor, outdoor and moving mix the "
        "regulation asks for is met, the verdict is monitoring per the QCVN method."
    ),
    N_(
        "The evidence file holds every sample behind a verdict; `qos-collector evaluate` judges "
        "it offline to the same figures, and its SHA-256 is the fingerprint printed here."
    ),
)

COMPARISONS: Final = {">=": "≥", "<=": "≤"}

Kind = Literal["heading", "subheading", "text", "strong", "mono"]


class Text(msgspec.Struct, frozen=True):
    kind: Kind
    text: str


class Table(msgspec.Struct, frozen=True):
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...]  # shares of the page's width


class Chart(msgspec.Struct, frozen=True):
    kind: Literal["daily", "distribution"]
    finding: int
    title: str


Block = Text | Table | Chart


def status(value: str | None) -> str:
    return _(VERDICT_STATUSES[value]) if value in VERDICT_STATUSES else _("NOT JUDGED")


def day(moment: object) -> str:
    return format_date(moment, format="medium", locale=current())  # type: ignore[arg-type]


def _utc(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _interval(low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return "-"
    return f"[{measured(low, unit)}; {measured(high, unit)}]"


def _result(judged: Judgement, required: int) -> str:
    if judged.skipped:
        return _("not applicable")
    if judged.passed is None:
        return _("not judged: n {n} < {required}").format(
            n=number(judged.n, 0), required=number(required, 0)
        )
    return status("pass" if judged.passed else "fail")


def _criteria(finding: Finding) -> Table:
    verdict = finding.verdict
    names = {
        c.id: criterion_name(c, finding.profile) for c in criteria(finding.profile, finding.plan)
    }
    rows = tuple(
        (
            names.get(judged.id, judged.name),
            _(PARTS[judged.part]),
            "-"
            if judged.threshold is None
            else f"{COMPARISONS[judged.comparison]} {measured(judged.threshold, judged.unit)}",
            measured(judged.statistic, judged.unit),
            _interval(judged.ci_low, judged.ci_high, judged.unit),
            number(judged.n, 0),
            _result(judged, verdict.n_required),
        )
        for judged in verdict.criteria
    )
    return Table(
        header=(
            _("criterion"),
            _("part"),
            _("limit"),
            _("figure"),
            _("interval (95%)"),
            "n",
            _("result"),
        ),
        rows=rows,
        widths=(0.25, 0.12, 0.14, 0.12, 0.17, 0.07, 0.13),
    )


def _exclusions(verdict: Verdict) -> Table:
    rows = [
        (_("counted"), number(verdict.n, 0), _("in the means")),
        *((_(name), number(getattr(verdict, field), 0), _(why)) for field, name, why in EXCLUSIONS),
    ]
    return Table(
        header=(_("samples"), _("number"), _("why")), rows=tuple(rows), widths=(0.22, 0.12, 0.66)
    )


def _mix(verdict: Verdict) -> Table:
    mix, required = verdict.sample_mix, verdict.sample_mix_required
    rows = tuple(
        (
            _(name),
            number(getattr(mix, field), 0),
            "-" if required is None else number(getattr(required, field), 0),
        )
        for field, name in (
            ("indoor", "indoor"),
            ("outdoor_fixed", "outdoor fixed"),
            ("outdoor_moving", "moving"),
        )
    )
    unset = verdict.n - mix.indoor - mix.outdoor_fixed - mix.outdoor_moving
    rows += ((_("no setting declared"), number(unset, 0), "-"),)
    return Table(
        header=(_("setting"), _("counted"), _("required")),
        rows=rows,
        widths=(0.4, 0.3, 0.3),
    )


def _probes(finding: Finding) -> Table:
    return Table(
        header=(_("probe"), _("village"), _("commune"), _("attempts"), _("counted")),
        rows=tuple(
            (
                share.probe,
                share.village or "-",
                share.commune or "-",
                number(share.attempts, 0),
                number(share.counted, 0),
            )
            for share in finding.probes
        ),
        widths=(0.3, 0.3, 0.14, 0.13, 0.13),
    )


def _finding_blocks(index: int, finding: Finding) -> list[Block]:
    verdict = finding.verdict
    operator = finding.operator or "-"
    blocks: list[Block] = [
        Text(
            kind="heading",
            text=_("{technology} · {operator} · profile {profile}").format(
                technology=finding.technology, operator=operator, profile=finding.profile_name
            ),
        ),
        Text(kind="strong", text=headline(verdict, finding.profile)),
        Text(kind="text", text=shown_title(finding.profile)),
        Text(
            kind="text",
            text=_("method: {method}; window {start} .. {end}").format(
                method=_(METHODS.get(verdict.method, verdict.method)),
                start=_utc(verdict.window_start),
                end=_utc(verdict.window_end),
            ),
        ),
    ]
    if verdict.national_target is not None:
        blocks.append(
            Text(
                kind="strong",
                text=_("national target (programme indicator): {outcome}").format(
                    outcome=status(verdict.national_target)
                ),
            )
        )
    if verdict.early_warning:
        blocks.append(
            Text(
                kind="strong",
                text=_(
                    "early warning (regulation): the whole interval (95%) lies on the failing "
                    "side (provisional)"
                ),
            )
        )
    blocks += [
        Text(kind="subheading", text=_("The verdict, part by part")),
        _criteria(finding),
        Text(kind="subheading", text=_("Which samples count, and why not")),
        _exclusions(verdict),
        Text(kind="subheading", text=_("Sample mix")),
        _mix(verdict),
        Chart(kind="daily", finding=index, title=_("Mean download per day, and the target")),
        Chart(
            kind="distribution", finding=index, title=_("Counted download samples, and the target")
        ),
        Text(kind="subheading", text=_("Probes that contributed")),
        _probes(finding),
        Text(kind="subheading", text=_("The data")),
        Text(
            kind="text",
            text=_("evidence file {file}: {rows} rows; SHA-256 fingerprint:").format(
                file=finding.evidence_file, rows=number(finding.rows, 0)
            ),
        ),
        Text(kind="mono", text=finding.fingerprint),
        Text(kind="text", text=_("to judge it again offline:")),
        Text(kind="mono", text=finding.evaluate_command),
    ]
    if finding.offline_agrees is not None:
        blocks.append(
            Text(
                kind="strong" if not finding.offline_agrees else "text",
                text=_("judged again offline from the evidence file: the same verdict")
                if finding.offline_agrees
                else _("judged again offline from the evidence file: a DIFFERENT verdict"),
            )
        )
    return blocks


def _breakdown(report: Report) -> list[Block]:
    level = _(LEVEL_NAMES[report.breakdown_level or "nation"])
    return [
        Text(
            kind="subheading",
            text=_("The verdict of each {level} inside the area").format(level=level),
        ),
        Table(
            header=(level, _("technology"), _("operator"), _("verdict"), "n", _("mean")),
            rows=tuple(
                (
                    row.name,
                    row.technology,
                    row.operator or "-",
                    _verdict_status(row.verdict),
                    f"{number(row.verdict.n, 0)} / {number(row.verdict.n_required, 0)}",
                    measured(row.verdict.mean_download_mbps, "Mb/s"),
                )
                for row in report.breakdown
            ),
            widths=(0.28, 0.13, 0.14, 0.19, 0.13, 0.13),
        ),
    ]


def _verdict_status(verdict: Verdict) -> str:
    """The regulation's verdict: for a fixed line, QCVN 34's plan conformity."""
    if verdict.national_target is not None:
        return status(verdict.plan_conformity)
    return status(verdict.status)


def title() -> str:
    return _("Broadband quality report")


def blocks_of(report: Report) -> list[Block]:
    """The whole report, in reading order."""
    period = report.period
    summary = Table(
        header=(_("technology"), _("operator"), _("profile"), _("verdict"), "n", _("mean")),
        rows=tuple(
            (
                f.technology,
                f.operator or "-",
                f.profile_name,
                _verdict_status(f.verdict),
                f"{number(f.verdict.n, 0)} / {number(f.verdict.n_required, 0)}",
                measured(f.verdict.mean_download_mbps, "Mb/s"),
            )
            for f in report.findings
        ),
        widths=(0.14, 0.18, 0.14, 0.22, 0.16, 0.16),
    )
    blocks: list[Block] = [
        Text(kind="heading", text=title()),
        Text(
            kind="strong",
            text=_("{area} ({level}), {first} to {last} ({days} days)").format(
                area=report.area_name,
                level=_(LEVEL_NAMES[report.scope.level]),
                first=day(period.first_day),
                last=day(period.last_day),
                days=period.days,
            ),
        ),
        Text(
            kind="text",
            text=_("made {when} (Vietnam time) by qosfleet {version} from {source}").format(
                when=format_datetime(
                    report.generated_at, format="medium", tzinfo=VIETNAM_ZONE, locale=current()
                ),
                version=report.tool_version,
                source=report.source,
            ),
        ),
        Text(
            kind="text",
            text=_("targets: {file}, SHA-256 {digest}").format(
                file=report.profiles_file, digest=report.profiles_sha256
            ),
        ),
        Text(kind="subheading", text=_("Verdicts")),
        summary,
    ]
    if report.breakdown_level is not None:
        blocks += _breakdown(report)
    for index, finding in enumerate(report.findings):
        blocks += _finding_blocks(index, finding)
    blocks.append(Text(kind="heading", text=_("The method in brief")))
    blocks += [Text(kind="text", text=_(paragraph)) for paragraph in METHOD]
    blocks.append(Text(kind="text", text=_("In full: docs/qcvn-method.md and docs/report.md.")))
    return blocks
