"""`qos-collector report`: the verdicts of an area over whole days, as PDF and HTML to file.

Live, from the store the collector writes (--store); offline, from a campaign CSV in the format
`qos-collector evaluate` reads (--input, with --profile). Beside the PDF and HTML go the evidence
files (live: one campaign CSV per technology x operator) whose SHA-256 the report prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

# The plan options exactly as `evaluate` reads them, so both refuse the same way.
from collector.evaluate import add_plan_options, plan_of
from collector.report.content import blocks_of
from collector.report.document import pages_of, render_html, write_page_png, write_pdf
from collector.report.evidence import evidence_of_file
from collector.report.findings import (
    AreaVerdict,
    Finding,
    live_findings,
    offline_finding,
    report_of,
)
from collector.report.scope import LEVELS, VIETNAM, choose_breakdown, choose_period, choose_scope
from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import QosfleetError
from contract.i18n import _, current
from contract.profiles import Profile, bundled_profiles, default_technology, load_profiles

PROG: Final = "qos-collector report"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=_("a verdict report to file: PDF and HTML"))
    parser.add_argument(
        "--area",
        help=_(
            "a province code (08), a commune code (00700) or COMMUNE/VILLAGE (00700/Bản Ná); "
            "default: the whole country"
        ),
    )
    parser.add_argument(
        "--level",
        choices=LEVELS,
        help=_("also list the verdict of every commune or village inside the area"),
    )
    parser.add_argument(
        "--from", dest="first", metavar="DAY", help=_("first day, 2026-11-01 or 01/11/2026")
    )
    parser.add_argument(
        "--to",
        dest="last",
        metavar="DAY",
        help=_("last day, included (default: yesterday; the period: 30 days)"),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--store",
        default="http://127.0.0.1:8428",
        help=_("the VictoriaMetrics the collector writes; default {url}").format(
            url="http://127.0.0.1:8428"
        ),
    )
    source.add_argument(
        "--input", type=Path, help=_("a campaign CSV (as `evaluate` reads) instead of the store")
    )
    parser.add_argument("--profile", help=_("with --input: the profile to judge it against"))
    add_plan_options(parser)  # as `evaluate` takes them
    parser.add_argument(
        "--profiles", type=Path, help=_("a profiles TOML file instead of the bundled one")
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("qos-report"),
        help=_(
            "where to write: OUTPUT.pdf, OUTPUT.html and the evidence CSVs (default {path})"
        ).format(path="qos-report"),
    )
    parser.add_argument(
        "--page-png", type=Path, metavar="FILE", help=_("also write the first page as a PNG")
    )
    add_language_option(parser)
    return parser


def _profiles(args: argparse.Namespace) -> dict[str, Profile]:
    return load_profiles(args.profiles) if args.profiles else bundled_profiles()


def _offline(args: argparse.Namespace, profiles: dict[str, Profile], now: datetime) -> Finding:
    """The campaign CSV judged as `evaluate` judges it; by default over the 30 days up to its
    latest sample's day."""
    if args.profile not in profiles:
        raise QosfleetError(
            _("unknown profile {profile!r}").format(profile=args.profile)
            if args.profile
            else _("--input needs --profile"),
            _("choose one of: {profiles}").format(profiles=", ".join(sorted(profiles))),
        )
    profile = profiles[args.profile]
    evidence = evidence_of_file(
        args.input, technology=default_technology(profile), operator="", plan=plan_of(args)
    )
    latest = max((sample.timestamp for sample in evidence.campaign.samples), default=now)
    period = choose_period(
        args.first, args.last, today=(now + VIETNAM).date(), latest=(latest + VIETNAM).date()
    )
    return offline_finding(evidence, profile, args.profile, period)


def run_report(argv: Sequence[str] | None = None) -> int:
    """Write the report; 0 when written, 2 when it could not be (said on stderr, with a hint)."""
    args = build_parser().parse_args(choose_language(PROG, sys.argv[1:] if argv is None else argv))
    try:
        return _write(args)
    except QosfleetError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _write(args: argparse.Namespace) -> int:
    profiles = _profiles(args)
    scope = choose_scope(args.area)
    breakdown_level = choose_breakdown(scope, args.level)
    now = datetime.now(UTC)
    output: Path = args.output
    breakdown: tuple[AreaVerdict, ...] = ()
    if args.input is not None:
        if breakdown_level is not None:
            raise QosfleetError(
                _("--level needs the store: a campaign CSV names no areas"),
                _("leave out --level, or make the report from the store (--store)"),
            )
        findings = [_offline(args, profiles, now)]
        period = findings[0].period
        source = str(args.input)
    else:
        period = choose_period(args.first, args.last, today=(now + VIETNAM).date())
        live, breakdown = asyncio.run(
            live_findings(
                args.store, profiles, scope, period, stem=output.name, breakdown=breakdown_level
            )
        )
        findings = [finding for finding, _evidence in live]
        output.parent.mkdir(parents=True, exist_ok=True)
        for finding, evidence in live:
            (output.parent / finding.evidence_file).write_bytes(evidence.csv)
        source = args.store
    report = report_of(
        findings,
        scope=scope,
        period=period,
        language=current(),
        generated_at=now,
        source=source,
        profiles_path=args.profiles,
        breakdown_level=breakdown_level,
        breakdown=breakdown,
    )
    pages = pages_of(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    pdf, html = (output.parent / f"{output.name}.{suffix}" for suffix in ("pdf", "html"))
    write_pdf(pages, pdf)
    html.write_text(render_html(report, blocks_of(report)), encoding="utf-8")
    if args.page_png is not None:
        write_page_png(pages[0], args.page_png)
    print(_("wrote {pdf} and {html}").format(pdf=pdf, html=html))
    return 0
