"""`qos-collector evaluate`: judge a campaign CSV against a QCVN profile, offline (the file's
format: DESCRIPTION, which --help shows in the reader's language).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from importlib.metadata import version
from pathlib import Path
from typing import Final, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from collector.compliance import (
    INTERVAL_METHOD,
    MONITORING_METHOD,
    QCVN_METHOD,
    STATISTIC_METHOD,
    Judgement,
    Sample,
    SampleStatus,
    Verdict,
    evaluate_compliance,
    sample_classes,
)
from contract.commandline import Parser, add_language_option, choose_language
from contract.criteria import criteria, criterion_name
from contract.errors import QosfleetError
from contract.i18n import N_, _, figure, measured, ngettext, number, percent, utc_time
from contract.profiles import (
    Profile,
    bundled_profiles,
    ceiling_mbps,
    default_technology,
    load_profiles,
    shown_title,
)
from contract.quantities import declared_quantities
from contract.result import MAX_MBPS, Plan, Setting

PROG = "qos-collector evaluate"
REQUIRED_COLUMNS: Final = ("timestamp", "download_mbps")
QUANTITIES: Final = tuple(declared_quantities().values())
OPTIONAL_COLUMNS: Final = (
    "upload_mbps",
    "rtt_ms",
    "status",
    "setting",
    "probe",
    *(quantity.field for quantity in QUANTITIES),
)
# The contract's bound on a measured quantity's value (contract.result.MeasuredValue).
MAX_QUANTITY = 1e9
# An RTT beyond ten minutes is a broken clock or a unit mix-up, not a latency.
MAX_RTT_MS = 600_000.0
STATUSES: Final[tuple[str, ...]] = get_args(SampleStatus)
SETTINGS: Final[tuple[str, ...]] = get_args(Setting)
_MARK = {True: "✓", False: "✗", None: "?"}
DESCRIPTION: Final = N_(
    """`qos-collector evaluate`: judge a campaign CSV against a QCVN profile, offline.

The CSV has a header line; `timestamp` and `download_mbps` are required; `upload_mbps`, `rtt_ms`,
`status` (ok | failed | probe_limited | unconverged), `setting` (indoor | outdoor_fixed |
outdoor_moving), `probe` (the device: the minimum gap between samples is per device; without it the
file is one device) and a column `<name>_<unit>` per quantity a measurement kind declares
(access_delay_ms) are optional. Times are ISO 8601 or dd/mm/yyyy [HH:MM[:SS]] (day first, as
written in Vietnam); a time without zone is UTC unless --timezone names another (+07:00 for Vietnam
time). Commas or semicolons separate fields; with semicolons a decimal comma is read too (41,5). A
bad row is reported by line number and skipped; a rate above its technology's physical ceiling is
reported by line and counted as implausible. The verdict is the one the live collector gives on the
same samples (docs/qcvn-method.md).
"""
)


class BadRow(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    reason: str


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    samples: tuple[Sample, ...]
    bad_rows: tuple[BadRow, ...]
    rows: int = 0
    # The file line of each sample, in order (for rows the method later excludes).
    lines: tuple[int, ...] = ()


# A DictReader row: surplus fields go under the key None as a list, short rows hold None.
_Row = Mapping[str | None, str | list[str] | None]


class _RowError(QosfleetError):
    """Why one CSV row cannot become a sample (the bad row's reason the user reads); the row is
    skipped, the file goes on."""


def _text(row: _Row, column: str) -> str | None:
    value = row.get(column)
    if not isinstance(value, str):
        return None
    return value.strip() or None


_THOUSANDS = re.compile(r"[1-9]\d{0,2}(\.\d{3})+")


def _number(row: _Row, column: str, ceiling: float, *, decimal_comma: bool = False) -> float | None:
    text = _text(row, column)
    if text is None:
        return None
    if decimal_comma:
        # Where the comma is the decimal mark, a point is a thousands separator: "1.234" may be
        # 1234 or 1.234 Mb/s, so a number written with both, or grouped in thousands, is refused.
        if "." in text and ("," in text or _THOUSANDS.fullmatch(text)):
            raise _RowError(
                _(
                    "{column} {text!r} has a thousands separator; write the number without it "
                    "(1234,5)"
                ).format(column=column, text=text)
            )
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        said = _("{column} {text!r} is not a number").format(column=column, text=text)
        if "," in text:
            said += " " + _("(a decimal comma needs ; between fields)")
        raise _RowError(said) from None
    if not math.isfinite(value):
        raise _RowError(
            _("{column} {text!r} is not a finite number").format(column=column, text=text)
        )
    if value < 0:
        raise _RowError(_("{column} {text!r} is negative").format(column=column, text=text))
    if value > ceiling:
        raise _RowError(
            _("{column} {text!r} is above {ceiling}, not believable").format(
                column=column, text=text, ceiling=figure(ceiling)
            )
        )
    return value


# The store keeps no time before the epoch, and a window must fit before the time it ends.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
BEFORE_EPOCH: Final = N_("no measurement is that old; check the year")
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def parse_time(text: str, zone: tzinfo = UTC) -> datetime:
    """ISO 8601 or dd/mm/yyyy [HH:MM[:SS]] to an aware UTC time; a time without zone is in
    `zone` (--timezone)."""
    day_first = _DAY_FIRST.fullmatch(text)
    if day_first:
        day, month, year, hour, minute, second = (int(g or 0) for g in day_first.groups())
        moment = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - zone below
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC
        raise ValueError(text) from None


def parse_zone(text: str) -> tzinfo:
    """'UTC', an offset like +07:00, or an IANA name like Asia/Ho_Chi_Minh."""
    offset = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a time zone (UTC, +07:00 or Asia/Ho_Chi_Minh)").format(text=text)
        ) from None


def _choice(row: _Row, column: str, allowed: tuple[str, ...]) -> str | None:
    text = _text(row, column)
    if text is not None and text not in allowed:
        raise _RowError(
            _("{column} {text!r} is not one of {allowed}").format(
                column=column, text=text, allowed=", ".join(allowed)
            )
        )
    return text


def _sample(row: _Row, *, decimal_comma: bool, zone: tzinfo) -> Sample:
    # Surplus fields are most likely an unquoted comma inside a value.
    if None in row:
        raise _RowError(_("has more fields than the header"))
    stamp = _text(row, "timestamp")
    if stamp is None:
        raise _RowError(_("timestamp is missing"))
    try:
        timestamp = parse_time(stamp, zone)
    except ValueError:
        raise _RowError(
            _("timestamp {text!r} is not a time (ISO 8601, or dd/mm/yyyy HH:MM)").format(text=stamp)
        ) from None
    if timestamp < EPOCH:
        raise _RowError(
            _("timestamp {text!r} is before 1970: {why}").format(text=stamp, why=_(BEFORE_EPOCH))
        )
    status = _choice(row, "status", STATUSES) or "ok"
    setting = _choice(row, "setting", SETTINGS)
    probe = _text(row, "probe") or ""
    download = _number(row, "download_mbps", MAX_MBPS, decimal_comma=decimal_comma)
    if download is None and status != "failed":
        raise _RowError(_("download_mbps is missing; only a failed row may leave it empty"))
    values = {
        quantity.name: _number(row, quantity.field, MAX_QUANTITY, decimal_comma=decimal_comma)
        for quantity in QUANTITIES
    }
    return msgspec.convert(
        {
            "timestamp": timestamp,
            "download_mbps": download,
            "upload_mbps": _number(row, "upload_mbps", MAX_MBPS, decimal_comma=decimal_comma),
            "rtt_ms": _number(row, "rtt_ms", MAX_RTT_MS, decimal_comma=decimal_comma),
            "status": status,
            "setting": setting,
            "device": probe,
            "values": {name: value for name, value in values.items() if value is not None},
        },
        Sample,
    )


class _NumberedLines:
    """A file's lines, numbered, so that a row whose quoted field spans several lines is
    reported at its first line (csv's line_num is its last); the csv reader reads no further
    than the row it returns."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.number = 0
        # The first line holding something since the last row (the reader skips empty ones).
        self.record_start = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        if not self.record_start and line.strip("\r\n"):
            self.record_start = self.number
        return line


def _empty_file() -> QosfleetError:
    return QosfleetError(
        _("the file is empty"),
        _("start it with a header line: {columns}").format(
            columns=",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        ),
    )


def parse_campaign(lines: Iterable[str], zone: tzinfo = UTC) -> Campaign:
    """Rows of a campaign CSV to samples; bad rows are kept aside with their line numbers."""
    rows = _NumberedLines(lines)
    header = next(rows, None)
    if header is None or not header.strip():
        raise _empty_file()
    # A spreadsheet set to Vietnamese (or most of Europe) writes ; between fields and a decimal
    # comma; the header line tells which separator the file uses.
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(itertools.chain([header], rows), delimiter=delimiter)
    if reader.fieldnames is None:
        raise _empty_file()
    reader.fieldnames = [name.strip() for name in reader.fieldnames]
    missing = [column for column in REQUIRED_COLUMNS if column not in reader.fieldnames]
    if missing:
        raise QosfleetError(
            _("the header has no {columns} column").format(columns=", ".join(missing)),
            _("the header line must name at least {columns}").format(
                columns=",".join(REQUIRED_COLUMNS)
            ),
        )
    samples: list[Sample] = []
    sample_lines: list[int] = []
    bad_rows: list[BadRow] = []
    rows_read = 0
    rows.record_start = 0
    try:
        for row in reader:
            rows_read += 1
            line, rows.record_start = rows.record_start, 0
            try:
                samples.append(_sample(row, decimal_comma=delimiter == ";", zone=zone))
                sample_lines.append(line)
            except _RowError as exc:
                bad_rows.append(BadRow(line=line, reason=str(exc)))
    except csv.Error as exc:
        raise QosfleetError(
            _("line {line}: not valid CSV ({error})").format(line=rows.number, error=exc),
            _("fix the quoting on that line"),
        ) from exc
    return Campaign(
        samples=tuple(samples),
        bad_rows=tuple(bad_rows),
        rows=rows_read,
        lines=tuple(sample_lines),
    )


def read_campaign(path: Path, zone: tzinfo = UTC) -> Campaign:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return parse_campaign(handle, zone)
    except FileNotFoundError:
        raise QosfleetError(
            _("{path}: no such file").format(path=path), _("check the --input path")
        ) from None
    except UnicodeDecodeError:
        raise QosfleetError(
            _("{path}: not UTF-8 text").format(path=path), _("save the CSV as UTF-8")
        ) from None
    except OSError as exc:
        raise QosfleetError(
            _("{path}: cannot read ({error})").format(path=path, error=exc.strerror),
            _("check the path"),
        ) from exc
    except QosfleetError as exc:
        raise QosfleetError(f"{path}: {exc.message}", exc.hint) from exc


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("{text!r} is not a number").format(text=text)) from None
    if not (math.isfinite(value) and 0 < value <= MAX_MBPS):
        raise argparse.ArgumentTypeError(
            _("{text!r} must be above 0 and at most {most}").format(
                text=text, most=figure(MAX_MBPS)
            )
        )
    return value


def _window_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a whole number of days").format(text=text)
        ) from None
    if days < 1:
        raise argparse.ArgumentTypeError(_("{text!r} must be at least 1").format(text=text))
    return days


def _now(text: str) -> datetime:
    try:
        moment = parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not an ISO 8601 time").format(text=text)
        ) from None
    if moment < EPOCH:
        raise argparse.ArgumentTypeError(
            _("{text!r} is before 1970: {why}").format(text=text, why=_(BEFORE_EPOCH))
        )
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description=_(DESCRIPTION), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", required=True, help=_("profile name, e.g. 4g, 5g, fixed"))
    parser.add_argument(
        "--profiles", type=Path, help=_("a profiles TOML file instead of the bundled one")
    )
    parser.add_argument("--input", type=Path, required=True, help=_("the campaign CSV file"))
    add_plan_options(parser)
    parser.add_argument(
        "--now",
        type=_now,
        help=_("end of the window, ISO 8601 (default: the latest timestamp in the file)"),
    )
    parser.add_argument(
        "--window-days",
        type=_window_days,
        default=30,
        help=_("length of the window in days (default {days})").format(days=30),
    )
    parser.add_argument(
        "--timezone",
        type=parse_zone,
        default=UTC,
        help=_(
            "zone of the file's times that name none: UTC (default), +07:00 or "
            "Asia/Ho_Chi_Minh for a spreadsheet in Vietnam time"
        ),
    )
    parser.add_argument("--json", action="store_true", help=_("print the verdict record as JSON"))
    add_language_option(parser)
    return parser


def _choose_profile(args: argparse.Namespace) -> Profile:
    profiles = load_profiles(args.profiles) if args.profiles else bundled_profiles()
    profile = profiles.get(args.profile)
    if profile is None:
        raise QosfleetError(
            _("unknown profile {profile!r}").format(profile=args.profile),
            _("choose one of: {profiles}").format(profiles=", ".join(sorted(profiles))),
        )
    return profile


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The subscribed plan's rates, which QCVN 34 compares a fixed line with (`plan_of`)."""
    parser.add_argument(
        "--plan-download-mbps",
        type=_positive,
        help=_("the plan's advertised download rate (Vd)"),
    )
    parser.add_argument(
        "--plan-upload-mbps", type=_positive, help=_("the plan's advertised upload rate (Vu)")
    )


def plan_of(args: argparse.Namespace) -> Plan | None:
    download, upload = args.plan_download_mbps, args.plan_upload_mbps
    if download is None and upload is None:
        return None
    if download is None or upload is None:
        raise QosfleetError(
            _("--plan-download-mbps and --plan-upload-mbps go together"),
            _("give both advertised rates of the subscribed plan (QCVN 34 judges both directions)"),
        )
    return Plan(download_mbps=download, upload_mbps=upload)


# How a verdict was reached (stored in English with it), as people read it.
METHODS: Final[dict[str, str]] = {
    QCVN_METHOD: N_("QCVN method"),
    MONITORING_METHOD: N_("monitoring per the QCVN method"),
}
# A verdict's status (collector.compliance.VerdictStatus) as people read it.
VERDICT_STATUSES: Final[dict[str, str]] = {
    "pass": N_("PASS"),
    "fail": N_("FAIL"),
    "insufficient-data": N_("NOT ENOUGH DATA"),
}


def _interval(low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return ""
    interval = _("95 % CI [{low}, {high}]").format(low=_bound(low, unit), high=_bound(high, unit))
    return ", " + interval


def _bound(value: float, unit: str) -> str:
    """An interval's bound: the figure alone (the unit is the statistic's), a share with its %."""
    return measured(value, unit) if unit == "share" else number(value, 2)


def _criterion_line(judged: Judgement, names: Mapping[str, str]) -> str:
    mark = "-" if judged.skipped else _MARK[judged.passed]
    name = names.get(judged.id, judged.name)
    line = f"  {mark} {name}: {measured(judged.statistic, judged.unit)}"
    line += _interval(judged.ci_low, judged.ci_high, judged.unit)
    if judged.note:
        line += f" ({_note(judged.note)})"
    return line


# A criterion's note (collector.compliance, contract.criteria: stored in English with the
# verdict), as people read it.
NOTES: Final[dict[str, str]] = {
    "not judged: no sample in the window measured it": N_(
        "not judged: no sample in the window measured it"
    ),
    "no samples to compute it from": N_("no samples to compute it from"),
    "not judged: no single subscribed plan, so QCVN 34 plan conformity cannot be": N_(
        "not judged: no single subscribed plan, so QCVN 34 plan conformity cannot be"
    ),
}
_TOO_FEW = re.compile(r"not judged: n (\d+) < (\d+) required")


def _note(note: str) -> str:
    too_few = _TOO_FEW.fullmatch(note)
    if too_few:
        return _("not judged: n {n} < {required} required").format(
            n=number(int(too_few.group(1)), 0), required=number(int(too_few.group(2)), 0)
        )
    return _(NOTES[note]) if note in NOTES else note


def _status(status: str | None) -> str:
    return _(VERDICT_STATUSES[status]) if status in VERDICT_STATUSES else _("NOT JUDGED")


def headline(verdict: Verdict, profile: Profile) -> str:
    """The first line: the verdict, its profile, the mean and n."""
    if verdict.national_target is not None:
        # Fixed lines: the regulation (QCVN 34 plan conformity) comes first; the programme
        # indicator (national target) is a verdict of its own, on a line of its own.
        return _(
            "{outcome} — {profile} profile: QCVN 34 plan conformity (the regulation), "
            "n {n} / {required}"
        ).format(
            outcome=_status(verdict.plan_conformity),
            profile=profile.name,
            n=number(verdict.n, 0),
            required=number(verdict.n_required, 0),
        )
    return _("{outcome} — {profile} profile: download mean {mean}, n {n} / {required}").format(
        outcome=_status(verdict.status),
        profile=profile.name,
        mean=measured(verdict.mean_download_mbps, "Mb/s"),
        n=number(verdict.n, 0),
        required=number(verdict.n_required, 0),
    )


def summary(verdict: Verdict, profile: Profile, bad_rows: int, plan: Plan | None = None) -> str:
    """A few plain lines: the verdict, n, the mean with its interval, each check, the method."""
    lines = [headline(verdict, profile), shown_title(profile)]
    if verdict.national_target is not None:
        if not verdict.plan_conformity:
            lines.append(_("give the plan with --plan-download-mbps and --plan-upload-mbps"))
        lines.append(
            _("national target (programme indicator): {outcome}").format(
                outcome=_status(verdict.national_target)
            )
        )
    if verdict.early_warning:
        lines.append(
            _(
                "early warning (regulation): the whole interval (95%) lies on the failing side "
                "(provisional)"
            )
        )
    if verdict.national_target_early_warning:
        lines.append(
            _(
                "early warning (national target): the whole interval (95%) lies below it "
                "(provisional)"
            )
        )
    lines.append(
        _(
            "n {n} / {required} required ({failed} failed, {limited} probe-limited, {unconverged} "
            "unconverged, {implausible} implausible, {close} too close, {duplicates} duplicate); "
            "window {start} .. {end}"
        ).format(
            n=number(verdict.n, 0),
            required=number(verdict.n_required, 0),
            failed=number(verdict.n_failed, 0),
            limited=number(verdict.n_probe_limited, 0),
            unconverged=number(verdict.n_unconverged, 0),
            implausible=number(verdict.n_implausible, 0),
            close=number(verdict.n_too_close, 0),
            duplicates=number(verdict.n_duplicates, 0),
            start=utc_time(verdict.window_start),
            end=utc_time(verdict.window_end),
        )
    )
    mean = _("download mean {mean}").format(mean=measured(verdict.mean_download_mbps, "Mb/s"))
    lines.append(mean + _interval(verdict.ci_low, verdict.ci_high, "Mb/s"))
    names = {c.id: criterion_name(c, profile) for c in criteria(profile, plan)}
    lines.extend(_criterion_line(judged, names) for judged in verdict.criteria)
    mix, required = verdict.sample_mix, verdict.sample_mix_required
    counts = {
        _("indoor"): (mix.indoor, required.indoor if required else None),
        _("outdoor fixed"): (mix.outdoor_fixed, required.outdoor_fixed if required else None),
        _("moving"): (mix.outdoor_moving, required.outdoor_moving if required else None),
    }
    mix_text = ", ".join(
        f"{name} {number(count, 0)}" + (f"/{number(need, 0)}" if need is not None else "")
        for name, (count, need) in counts.items()
    )
    if verdict.day_part_min_share is not None:
        mix_text += _(
            "; samples per part of the day 00-06/06-12/12-18/18-24: {counts}, each needs {share}"
        ).format(
            counts="/".join(number(c, 0) for c in verdict.day_parts),
            share=percent(verdict.day_part_min_share),
        )
    method = _(METHODS.get(verdict.method, verdict.method))
    lines.append(_("method: {method} (sample mix: {mix})").format(method=method, mix=mix_text))
    if bad_rows:
        lines.append(
            ngettext(
                "{count} row skipped or excluded, listed on stderr",
                "{count} rows skipped or excluded, listed on stderr",
                bad_rows,
            ).format(count=number(bad_rows, 0))
        )
    return "\n".join(lines)


class InputRecord(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    sha256: str
    rows: int
    bad_rows: tuple[BadRow, ...]


class VerdictRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a regulator files with a verdict: what was judged, by which rule, from which file."""

    generated_at: datetime
    tool: str
    tool_version: str
    profile: dict[str, object]
    statistic_method: str
    interval_method: str
    input: InputRecord
    verdict: Verdict


def _implausible_rows(campaign: Campaign, profile: Profile) -> list[BadRow]:
    """Rows the method found above the physical ceiling: kept as evidence, excluded, counted."""
    technology = default_technology(profile)
    ceiling = ceiling_mbps(profile, technology)
    classes = sample_classes(campaign.samples, profile)
    return [
        BadRow(
            line=line,
            reason=_(
                "a rate above the {technology} ceiling of {ceiling} Mb/s: not believable, "
                "excluded and counted as implausible"
            ).format(technology=technology or _("profile"), ceiling=figure(ceiling)),
        )
        for line, sample_class in zip(campaign.lines, classes, strict=True)
        if sample_class == "implausible"
    ]


def _evaluate(args: argparse.Namespace) -> tuple[Verdict, Profile, Campaign, list[BadRow]]:
    profile = _choose_profile(args)
    plan = plan_of(args)
    campaign = read_campaign(args.input, args.timezone)
    bad_rows = sorted([*campaign.bad_rows, *_implausible_rows(campaign, profile)], key=_line)
    for bad in bad_rows:
        print(_("line {line}: {reason}").format(line=bad.line, reason=bad.reason), file=sys.stderr)
    if not campaign.samples:
        raise QosfleetError(
            _("{path}: no valid rows ({bad} bad)").format(
                path=args.input, bad=len(campaign.bad_rows)
            ),
            _("see the lines listed above; the format is in `qos-collector evaluate --help`"),
        )
    # A historic campaign is judged over its own window, not the one ending today.
    now = args.now or max(sample.timestamp for sample in campaign.samples)
    verdict = evaluate_compliance(
        campaign.samples,
        profile,
        now=now,
        window=timedelta(days=args.window_days),
        plan=plan,
    )
    return verdict, profile, campaign, bad_rows


def _line(row: BadRow) -> int:
    return row.line


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(
    verdict: Verdict, profile: Profile, campaign: Campaign, bad_rows: list[BadRow], path: Path
) -> VerdictRecord:
    return VerdictRecord(
        generated_at=datetime.now(UTC),
        tool=PROG,
        tool_version=version("qosfleet"),
        profile={
            "name": profile.name,
            "title": profile.title,
            "source": profile.source,
            "verify": profile.verify,
        },
        statistic_method=STATISTIC_METHOD,
        interval_method=INTERVAL_METHOD,
        input=InputRecord(
            path=str(path.resolve()),
            sha256=_sha256(path),
            rows=campaign.rows,
            bad_rows=tuple(bad_rows),
        ),
        verdict=verdict,
    )


def run_evaluate(argv: Sequence[str] | None = None) -> int:
    """Evaluate one campaign; 0 whatever the verdict, 2 when it could not be evaluated."""
    args = build_parser().parse_args(choose_language(PROG, sys.argv[1:] if argv is None else argv))
    try:
        verdict, profile, campaign, bad_rows = _evaluate(args)
    except QosfleetError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        report = record(verdict, profile, campaign, bad_rows, args.input)
        print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    else:
        print(summary(verdict, profile, len(bad_rows), plan_of(args)))
    return 0
