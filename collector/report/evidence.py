"""The samples behind a report, as the campaign CSV `qos-collector evaluate` reads.

Live, the area's results are read back from the store (the export API's path) and written as that
CSV, one file per technology x operator; offline, the CSV given is the evidence. Either way the
samples are parsed by `evaluate`'s own parser, and the data's fingerprint is the SHA-256 of the
file's bytes: the figure `evaluate --json` prints as `input.sha256`, so a reader holding the file
checks that it is the one the report was made from, and re-judges it with `evaluate`.

The file also carries, for each device, the attempts of the `min_gap_s` before the window that
the collector did not find too close: they fall outside the window (they count in no figure) but
set the device's gap chain, so the first samples of the window are classed offline as they were
live (docs/qcvn-method.md, section 3).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import msgspec

from collector.api import FORMULA_STARTS, result_rows, selector
from collector.evaluate import QUANTITIES, Campaign, parse_campaign, read_campaign
from collector.export import export_series
from collector.series import plan_label, plan_of_label
from contract.result import Plan
from contract.sampling import CLASS_CODES

# The columns `evaluate` reads, then the place and link of each row (evaluate ignores them).
JUDGED_COLUMNS: Final = (
    "timestamp",
    "download_mbps",
    "upload_mbps",
    "rtt_ms",
    "status",
    "setting",
    "probe",
    *(quantity.field for quantity in QUANTITIES),
)
PLACE_COLUMNS: Final = ("technology", "operator", "province", "commune", "village")
# The stored fields a row is made of (collector/series.py).
STORED_FIELDS: Final = (
    "download_mbps",
    "upload_mbps",
    "latency_idle_median_ms",
    "attempt_failed",
    "probe_limited",
    "unconverged",
    "sample_class",
    *(quantity.field for quantity in QUANTITIES),
)
TOO_CLOSE: Final = float(CLASS_CODES["too_close"])


class Place(msgspec.Struct, frozen=True, kw_only=True):
    province: str
    commune: str
    village: str


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """One technology x operator's samples: the CSV's bytes, parsed as `evaluate` parses them."""

    technology: str
    operator: str
    csv: bytes
    campaign: Campaign
    plans: frozenset[str]
    places: dict[str, Place]  # probe -> where it stands (live only)
    source: str = ""  # the file given offline

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.csv).hexdigest()

    @property
    def plan(self) -> Plan | None:
        """The subscribed plan, where the samples share one (QCVN 34 compares with it)."""
        if len(self.plans) != 1:
            return None
        return plan_of_label(next(iter(self.plans)))


def evidence_name(stem: str, technology: str, operator: str) -> str:
    """The evidence file beside the report: safe on any file system."""
    safe = "".join(c if c.isascii() and c.isalnum() else "-" for c in f"{technology}-{operator}")
    return f"{stem}-{safe.lower()}.csv"


def evidence_of_file(
    path: Path, *, technology: str, operator: str, plan: Plan | None = None
) -> Evidence:
    """A campaign CSV given offline (read as `evaluate` reads it; errors say which line)."""
    campaign = read_campaign(path)
    return Evidence(
        technology=technology,
        operator=operator,
        csv=path.read_bytes(),
        campaign=campaign,
        plans=frozenset({plan_label(plan)}),
        places={},
        source=path.name,
    )


def _status(fields: Mapping[str, Any]) -> str:
    # One status a row: the class rules' precedence (contract.sampling.classify).
    for flag, status in (
        ("attempt_failed", "failed"),
        ("probe_limited", "probe_limited"),
        ("unconverged", "unconverged"),
    ):
        if fields.get(flag):
            return status
    return "ok"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    # A name from a probe ("=HYPERLINK(...)") is text in a spreadsheet too.
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def evidence_csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows of the store (api.result_rows) as the campaign CSV, in a canonical order, so the
    same samples always make the same bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*JUDGED_COLUMNS, *PLACE_COLUMNS))
    lines = [
        (
            _time(row["time"]),
            row.get("download_mbps"),
            row.get("upload_mbps"),
            row.get("latency_idle_median_ms"),
            _status(row),
            row.get("setting") or None,
            row.get("probe"),
            *(row.get(quantity.field) for quantity in QUANTITIES),
            *(row.get(column) or None for column in PLACE_COLUMNS),
        )
        for row in rows
    ]
    lines.sort(key=lambda line: tuple(_cell(value) for value in line))
    writer.writerows(tuple(_cell(value) for value in line) for line in lines)
    return out.getvalue().encode()


async def read_evidence(
    session: aiohttp.ClientSession,
    store_url: str,
    labels: Mapping[str, str],
    *,
    start: datetime,
    end: datetime,
    lead_in: timedelta,
) -> dict[tuple[str, str], Evidence]:
    """The area's speed attempts in (start - lead_in, end], per technology x operator."""
    series = await export_series(
        session, store_url, selector(STORED_FIELDS, labels), start - lead_in, end
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in result_rows(series):
        sample_class = row.get("sample_class")
        if sample_class is None:
            continue  # no speed attempt (latency or IPv6 only)
        if row["time"] <= start and sample_class == TOO_CLOSE:
            continue  # before the window and outside the gap chain
        groups.setdefault((row["technology"] or "", row["operator"] or ""), []).append(row)
    found: dict[tuple[str, str], Evidence] = {}
    for (technology, operator), rows in groups.items():
        data = evidence_csv(rows)
        found[technology, operator] = Evidence(
            technology=technology,
            operator=operator,
            csv=data,
            campaign=parse_campaign(io.StringIO(data.decode(), newline="")),
            plans=frozenset(row["plan"] or "" for row in rows),
            places={
                row["probe"]: Place(
                    province=row["province"] or "",
                    commune=row["commune"] or "",
                    village=row["village"] or "",
                )
                for row in rows
            },
        )
    return found
