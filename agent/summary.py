"""What one result says in a line, the same on the check screen and in the history: its headline
verdict, its CSV row and its JSON with the verdict."""

from __future__ import annotations

import csv
import io
from typing import Any, Final

import msgspec

from agent.verdict import OUTCOMES, Outcome, headline, judgements
from contract.i18n import _, number, significant
from contract.profiles import profile_for
from contract.result import Result, encode_result

HEADLINE_STYLES: Final[dict[Outcome, str]] = {
    "pass": "bold green",
    "fail": "bold red",
    "not_judged": "bold yellow",
}
# --csv's columns: names for scripts, the same in every language.
CSV_COLUMNS: Final = (
    "probe_id",
    "finished_at",
    "interface",
    "technology",
    "operator",
    "profile",
    "verdict",
    "download_mbps",
    "upload_mbps",
    "latency_idle_ms",
    "latency_loaded_ms",
    "ipv6",
    "bytes_used",
    "errors",
)


def mbps_text(value: float) -> str:
    """A rate as read: one decimal, or three significant digits below 1 Mb/s (never "0.0")."""
    return f"{number(value) if value >= 1 else significant(value)} Mb/s"


def headline_text(result: Result) -> tuple[Outcome, str]:
    """The first line: this sample's verdict, its profile and the figure that decided."""
    verdict = headline(result)
    outcome = _(OUTCOMES[verdict.outcome])
    if verdict.profile is None:
        text = _("{outcome} — no QCVN profile for technology {technology}")
        return verdict.outcome, text.format(outcome=outcome, technology=result.link.technology)
    if not verdict.figure:
        text = _("{outcome} — {profile} profile: nothing measured to judge")
        return verdict.outcome, text.format(outcome=outcome, profile=verdict.profile)
    text = _("{outcome} — {profile} profile: {figure}")
    return verdict.outcome, text.format(
        outcome=outcome, profile=verdict.profile, figure=verdict.figure
    )


def _csv_figure(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}".rstrip("0").rstrip(".")


def csv_rows(result: Result) -> str:
    """A header and one row: names and dot decimals that read the same in every language, so a
    script or a spreadsheet's import takes the file whatever the technician's locale."""
    return csv_text(CSV_COLUMNS, [csv_row(result)])


def csv_text(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    written = io.StringIO()
    writer = csv.DictWriter(written, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return written.getvalue()


def csv_row(result: Result) -> dict[str, str]:
    """The CSV columns of one result."""
    measured = result.measurements
    latency = measured.latency
    verdict = headline(result)
    row: dict[str, str] = {
        "probe_id": result.probe_id,
        "finished_at": result.finished_at.isoformat(),
        "interface": result.link.interface,
        "technology": result.link.technology,
        "operator": result.link.operator,
        "profile": verdict.profile or "",
        "verdict": verdict.outcome,
        "download_mbps": _csv_figure(measured.download.mbps if measured.download else None),
        "upload_mbps": _csv_figure(measured.upload.mbps if measured.upload else None),
        "latency_idle_ms": _csv_figure(
            latency.idle.median_ms if latency and latency.idle else None
        ),
        "latency_loaded_ms": _csv_figure(
            latency.loaded.median_ms if latency and latency.loaded else None
        ),
        "ipv6": measured.ipv6.status if measured.ipv6 else "",
        "bytes_used": str(result.provenance.bytes_used),
        "errors": "; ".join(f"{error.stage}: {error.code}" for error in result.errors),
    }
    return row


def verdict_of(result: Result) -> dict[str, Any]:
    """`--json`'s `verdict`: this sample against its profile, in codes, not words."""
    verdict = headline(result)
    profile = profile_for(result.link.technology)
    judged = [] if profile is None else judgements(result, profile)
    return {
        "outcome": verdict.outcome,
        "profile": verdict.profile,
        "criteria": [
            {
                "id": judgement.criterion.id,
                "part": judgement.criterion.part,
                "value": judgement.value,
                "threshold": judgement.criterion.threshold,
                "meets": judgement.meets,
            }
            for judgement in judged
        ],
    }


def json_with_verdict(result: Result) -> str:
    """The result envelope, as published, with one field added: readers of the envelope's
    fields read it as before."""
    envelope: dict[str, Any] = msgspec.json.decode(encode_result(result))
    envelope["verdict"] = verdict_of(result)
    return msgspec.json.encode(envelope).decode()
