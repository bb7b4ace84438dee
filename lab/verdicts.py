"""The demos' view of the collector's verdicts: profiles a few rounds can judge, and the table.

The table reads what the running collector stored (`qos_compliance_*`, dashboards/SERIES.md) and
invents nothing. A fixed line shows its two parts in two columns: the regulation (for fixed lines
QCVN 34 plan conformity, `qos_compliance_status` with `qos_compliance_plan_status`) and the
national target (`qos_compliance_national_target_status`), a programme indicator that is never
shown as a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rich.table import Table

from contract.i18n import N_, _, number
from contract.profiles import BUNDLED

# What each demo row needs from the store (series names after `qos_compliance_`).
SERIES = (
    "status",
    "plan_status",
    "national_target_status",
    "n",
    "n_probe_limited",
    "n_unconverged",
    "n_implausible",
    "n_too_close",
    "mean_download_mbps",
    "ci_low_mbps",
    "ci_high_mbps",
    "target_download_mbps",
    "national_target_download_mbps",
)
# Speed attempts the method keeps as evidence but leaves out of every statistic.
NOT_COUNTED = ("n_probe_limited", "n_unconverged", "n_implausible", "n_too_close")
MEAN_SERIES = ("mean_download_mbps", "ci_low_mbps", "ci_high_mbps")
_STATUS = {
    1.0: ("green", N_("pass")),
    0.0: ("red", N_("fail")),
    -1.0: ("yellow", N_("insufficient data")),
}

COLUMNS = (
    N_("village"),
    N_("link"),
    N_("plan"),
    "n",
    N_("mean ↓ Mb/s [95 % CI]"),
    N_("QCVN verdict (regulation)"),
    N_("national target (programme)"),
)
Values = Mapping[str, float | None]
# Reads one `qos_compliance_<series>` value of a row's area (None: the collector stored none).
Reader = Callable[[str], float | None]


class VerdictRow(NamedTuple):
    village: str
    technology: str
    operator: str
    # How the lab made the link, e.g. "1100/1100" (shaped ↓/↑ Mb/s) or "loopback".
    link: str
    plan_mbps: float | None


def demo_profiles(path: Path, n_required: int) -> Path:
    """The bundled profiles with n_required lowered, so a few minutes of tests reach a verdict.

    Everything else (targets, the sample rules, the statistics) is the regulation's; the titles
    say it is a demo.
    """

    def demo_line(line: str) -> str:
        if line.startswith("n_required = "):
            return f"n_required = {n_required}  # demo only: the regulation asks for far more"
        if line.startswith("title = "):
            return line[:-1] + f' (demo: n_required lowered to {n_required})"'
        if line.startswith("title_vi = "):
            return line[:-1] + f' (trình diễn: n_required hạ xuống {n_required})"'
        return line

    text = BUNDLED.read_text(encoding="utf-8")
    path.write_text("\n".join(map(demo_line, text.splitlines())) + "\n", encoding="utf-8")
    return path


def regulation_cell(values: Values) -> str:
    """The regulation's verdict; for a fixed line, QCVN 34 plan conformity."""
    status, target = values.get("status"), values.get("target_download_mbps")
    if status is None:
        return "-"
    word = _status_word(status)
    if values.get("national_target_status") is not None and values.get("plan_status") is None:
        return "[yellow]" + _("not judged") + "[/] " + _("(QCVN 34 needs the plan)")
    if target is None:
        return word
    if values.get("plan_status") is not None:
        return f"{word} (QCVN 34: ≥ {number(target, 0)})"
    return f"{word} (≥ {number(target, 0)})"


def _status_word(status: float) -> str:
    if status not in _STATUS:
        return "-"
    colour, word = _STATUS[status]
    return f"[{colour}]" + _(word) + "[/]"


def programme_cell(values: Values) -> str:
    """The national target: met, or a warning — never a failure of the regulation."""
    status, line = values.get("national_target_status"), values.get("national_target_download_mbps")
    if status is None:
        return "-"
    target = number(line, 0) if line is not None else _("the target")
    if status == 1.0:
        return "[green]" + _("meets") + f"[/] {target}"
    if status == 0.0:
        below = _("below {target}").format(target=target)
        return f"[yellow]{below}[/] " + _("(warning)")
    return _status_word(-1.0)


def count_cell(values: Values) -> str:
    n = values.get("n")
    if n is None:
        return "-"
    excluded = sum(values.get(name) or 0.0 for name in NOT_COUNTED)
    if not excluded:
        return number(n, 0)
    return number(n, 0) + " " + _("(+{count} excluded)").format(count=number(excluded, 0))


def mean_cell(values: Values) -> str:
    mean, low, high = (values.get(name) for name in MEAN_SERIES)
    if mean is None:
        return "-"
    if low is None or high is None:
        return number(mean, 0)
    return f"{number(mean, 0)} [{number(low, 0)}, {number(high, 0)}]"


def verdict_table(rows: Sequence[VerdictRow], read: Callable[[VerdictRow], Reader]) -> Table:
    table = Table(title=_("Per-village verdicts (the collector's qos_compliance_* series)"))
    for column in COLUMNS:
        table.add_column(_(column))
    for row in rows:
        reader = read(row)
        values = {name: reader(name) for name in SERIES}
        table.add_row(
            row.village,
            f"{row.technology} {row.operator}, {row.link}",
            number(row.plan_mbps, 0) if row.plan_mbps else "-",
            count_cell(values),
            mean_cell(values),
            regulation_cell(values),
            programme_cell(values),
        )
    return table


def store_reader(query: Callable[[str], list[dict[str, Any]]]) -> Callable[[VerdictRow], Reader]:
    """A row's village verdict series, read with instant queries (VictoriaMetrics.query)."""

    def read(row: VerdictRow) -> Reader:
        selector = (
            f'level="village", village="{row.village}", '
            f'technology="{row.technology}", operator="{row.operator}"'
        )

        def value(series: str) -> float | None:
            found = query(f"last_over_time(qos_compliance_{series}{{{selector}}}[1m])")
            return float(found[0]["value"][1]) if found else None

        return value

    return read
