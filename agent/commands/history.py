"""`qos-agent history`: this probe's past checks and daemon results, newest first."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec
from rich.console import Console
from rich.text import Text

from agent.config import DEFAULT_PATH, DEFAULT_STATE_DIR, load_config
from agent.history import MAX_AGE, MAX_BYTES, MAX_ENTRIES, Entry, History, read
from agent.screen import fit
from agent.summary import (
    CSV_COLUMNS,
    HEADLINE_STYLES,
    csv_row,
    csv_text,
    headline_text,
    mbps_text,
    verdict_of,
)
from contract.errors import ConfigError
from contract.i18n import N_, _, moment, ngettext, number
from contract.result import encode_result

SOURCES: Final[dict[str, str]] = {"check": N_("check"), "daemon": N_("daemon")}
HISTORY_CSV_COLUMNS: Final = ("source", *CSV_COLUMNS)
_RELATIVE: Final = re.compile(r"^(?P<count>\d{1,5})(?P<unit>[mhd])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days"}
# Under an entry's headline: its details, indented.
_INDENT: Final = "   "


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser(
        "history",
        help=_("this probe's past checks and daemon results, newest first"),
        description=_(
            "Kept in the agent's state directory: at most {entries} results, none older than "
            "{days} days, never more than {megabytes} MB."
        ).format(entries=MAX_ENTRIES, days=MAX_AGE.days, megabytes=MAX_BYTES // 1024**2),
    )
    history.set_defaults(run=run)
    history.add_argument(
        "--config",
        type=Path,
        help=_("agent TOML, for its state_dir (default {path} when it exists)").format(
            path=DEFAULT_PATH
        ),
    )
    history.add_argument(
        "--state-dir", type=Path, help=_("read this state directory instead of the config's")
    )
    history.add_argument(
        "--limit", type=_positive, default=20, help=_("show at most this many (default 20)")
    )
    history.add_argument("--link", metavar="IF", help=_("only this interface, e.g. wwan0"))
    history.add_argument(
        "--since",
        type=_since,
        help=_(
            "only results since then: 2026-12-01, 2026-12-01T08:00 (the probe's time), or 30m, "
            "24h, 7d ago"
        ),
    )
    output = history.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help=_("print the entries as JSON, with their verdicts")
    )
    output.add_argument(
        "--csv", action="store_true", help=_("print a CSV header and one row per entry")
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a whole number above 0").format(text=text)
        )
    return value


def _since(text: str) -> datetime:
    relative = _RELATIVE.match(text.strip())
    if relative:
        span = timedelta(**{_UNITS[relative["unit"]]: int(relative["count"])})
        return datetime.now(UTC) - span
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{text!r} is not a date, a time or an age: e.g. 2026-12-01, 24h, 7d").format(
                text=text
            )
        ) from None
    # Without a zone, the time the screen shows: the probe's clock.
    return when if when.tzinfo else when.astimezone()


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.config is not None:
        return Path(load_config(args.config).state_dir)
    if DEFAULT_PATH.exists():
        return Path(load_config(DEFAULT_PATH).state_dir)
    return DEFAULT_STATE_DIR


def chosen(history: History, args: argparse.Namespace) -> list[Entry]:
    """The entries asked for, newest (last appended) first."""
    picked = [
        entry
        for entry in reversed(history.entries)
        if (args.link is None or entry.result.link.interface == args.link)
        and (args.since is None or entry.result.finished_at >= args.since)
    ]
    return picked[: args.limit]


def run(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if not state_dir.is_dir():
        raise ConfigError(
            "state_dir",
            _("{path} does not exist: no check or daemon has run with it").format(path=state_dir),
            _("pass --config FILE or --state-dir DIR of the probe's agent"),
        )
    history = read(state_dir)
    entries = chosen(history, args)
    if args.json:
        sys.stdout.write(json_text(entries, history.skipped) + "\n")
    elif args.csv:
        rows = [{"source": entry.source, **csv_row(entry.result)} for entry in entries]
        sys.stdout.write(csv_text(HISTORY_CSV_COLUMNS, rows))
    else:
        show(Console(), entries)
    if history.skipped:
        message = ngettext(
            "{count} unreadable entry in the history was skipped",
            "{count} unreadable entries in the history were skipped",
            history.skipped,
        ).format(count=history.skipped)
        Console(stderr=True, soft_wrap=True).print(f"[yellow]qos-agent:[/] {message}")
    return 0


def json_text(entries: list[Entry], skipped: int) -> str:
    shown: list[dict[str, Any]] = []
    for entry in entries:
        envelope: dict[str, Any] = msgspec.json.decode(encode_result(entry.result))
        shown.append(
            {"source": entry.source, "verdict": verdict_of(entry.result), "result": envelope}
        )
    return msgspec.json.encode({"entries": shown, "skipped": skipped}).decode()


def details(entry: Entry) -> str:
    """An entry's second line: where it came from, the link, the figures, the errors."""
    result = entry.result
    measured = result.measurements
    link = result.link
    parts = [_(SOURCES[entry.source]), link.interface, link.technology, link.operator]
    if measured.download is not None:
        parts.append("↓ " + mbps_text(measured.download.mbps))
    if measured.upload is not None:
        parts.append("↑ " + mbps_text(measured.upload.mbps))
    if measured.latency is not None and measured.latency.idle is not None:
        parts.append(f"{number(measured.latency.idle.median_ms)} ms")
    if result.errors:
        count = len(result.errors)
        parts.append(ngettext("{count} error", "{count} errors", count).format(count=count))
    return " · ".join(parts)


def show(console: Console, entries: list[Entry]) -> None:
    if not entries:
        console.print(_("no results in the history (yet)"))
        return
    width = console.width
    for entry in entries:
        outcome, headline = headline_text(entry.result)
        first = f"{moment(entry.result.finished_at)}  {headline}"
        console.print(Text(fit(first, width), style=HEADLINE_STYLES[outcome]), soft_wrap=True)
        lines = fit(details(entry), width - len(_INDENT)).split("\n")
        console.print(Text("\n".join(_INDENT + line for line in lines)), soft_wrap=True)
