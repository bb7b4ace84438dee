"""`qos-agent status`: is the daemon up, is it connected, what waits in the spool, what is left."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.budget import link_budgets, month_of
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.health import clock_status, cpu_temperature_c, disk_free_bytes
from agent.screen import Row, table
from agent.spool import RESERVE_NAME, SpoolReport, recent_results, spool_report
from agent.state import (
    DAMAGED,
    DaemonState,
    Quarantine,
    error_code,
    open_state_db,
    read_daemon_state,
    read_quarantine,
)
from contract.errors import ConfigError
from contract.fleet import LinkBudget
from contract.i18n import _, ago, number
from contract.result import Clock, Result

# The daemon rewrites its state at least every status interval; twice that and it is stale.
STALE_FACTOR = 2.0


class RecentResult(msgspec.Struct, frozen=True, kw_only=True):
    finished_at: datetime
    interface: str
    target: str
    download_mbps: float | None
    errors: tuple[str, ...]
    delivered: bool


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    probe_id: str
    daemon: DaemonState | None
    daemon_running: bool
    # Connected now: the running daemon's word. A stopped daemon's last word is history, not a
    # connection (`daemon.broker_connected` keeps what it last said).
    broker_connected: bool
    clock: Clock
    disk_free_bytes: int | None
    # False once a full disk made the spool release its reserve (agent/spool.py); None: no reserve.
    disk_reserve_held: bool | None
    cpu_temperature_c: float | None
    spool: SpoolReport
    budgets: tuple[LinkBudget, ...]
    recent: tuple[RecentResult, ...]
    # The damaged state database the daemon last set aside at a start, if ever.
    quarantine: Quarantine | None = None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help=_("daemon, broker connection, spool, budgets and the last results")
    )
    status.set_defaults(run=run)
    status.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        help=_("agent TOML (default {path})").format(path=DEFAULT_PATH),
    )
    status.add_argument("--json", action="store_true", help=_("print the report as JSON"))


def run(args: argparse.Namespace) -> int:
    report = gather(load_config(args.config))
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        show(Console(), report)
    return 0 if report.daemon_running else 1


def gather(config: AgentConfig, now: datetime | None = None) -> StatusReport:
    now = now or datetime.now(UTC)
    state_dir = Path(config.state_dir)
    try:
        db = open_state_db(state_dir, read_only=True)
    except PermissionError as exc:
        raise ConfigError(
            "state_dir",
            _("cannot read {path}").format(path=state_dir),
            _("run as root: sudo qos-agent status"),
        ) from exc
    try:
        daemon = read_daemon_state(db)
        spool = spool_report(db)
        caps = {link.interface: link.budget_bytes for link in config.links}
        budgets = link_budgets(db, caps, month_of(now))
        recent = tuple(_summary(payload, delivered) for payload, delivered in recent_results(db))
        quarantine = read_quarantine(db)
    except sqlite3.DatabaseError as exc:
        if error_code(exc) in DAMAGED:
            raise ConfigError(
                "state_dir",
                _("the state database in {path} is damaged ({reason})").format(
                    path=state_dir, reason=exc
                ),
                _(
                    "the daemon sets it aside for recovery and starts afresh when it starts: "
                    "`systemctl restart qos-agent`, then `qos-agent status` again"
                ),
            ) from exc
        raise ConfigError(
            "state_dir",
            _("cannot read the state database in {path} ({reason})").format(
                path=state_dir, reason=exc
            ),
            _(
                "run as root or as the daemon's user (sudo qos-agent status); on the daemon's "
                "very first start, try again in a moment"
            ),
        ) from exc
    finally:
        db.close()
    running = _running(daemon, config, now)
    return StatusReport(
        probe_id=config.probe_id,
        daemon=daemon,
        daemon_running=running,
        broker_connected=running and daemon is not None and daemon.broker_connected,
        clock=clock_status(),
        disk_free_bytes=disk_free_bytes(state_dir),
        disk_reserve_held=(
            (state_dir / RESERVE_NAME).exists() if config.spool.reserve_bytes > 0 else None
        ),
        cpu_temperature_c=cpu_temperature_c(),
        spool=spool,
        budgets=budgets,
        recent=recent,
        quarantine=quarantine,
    )


def _running(daemon: DaemonState | None, config: AgentConfig, now: datetime) -> bool:
    if daemon is None:
        return False
    try:
        os.kill(daemon.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and owned by the service user
    age = (now - daemon.updated_at).total_seconds()
    return age <= STALE_FACTOR * config.publish.status_interval_s


def _summary(payload: bytes, delivered: bool) -> RecentResult:
    result = msgspec.json.decode(payload, type=Result)
    download = result.measurements.download
    return RecentResult(
        finished_at=result.finished_at,
        interface=result.link.interface,
        target=result.target.id,
        download_mbps=download.mbps if download else None,
        errors=tuple(f"{e.stage}: {e.code}" for e in result.errors),
        delivered=delivered,
    )


def _ago(then: datetime, now: datetime) -> str:
    return ago((now - then).total_seconds())


def show(console: Console, report: StatusReport) -> None:
    now = datetime.now(UTC)
    title = _("qos-agent status — probe {probe}").format(probe=report.probe_id)
    console.print(table(title, rows(report, now), console))
    if report.recent:
        console.print(_recent_table(report.recent, now))


def rows(report: StatusReport, now: datetime) -> list[Row]:
    """The report as the technician reads it: the daemon first, the machine last."""
    shown: list[Row] = []
    daemon = report.daemon
    if daemon is None:
        text = _("has never run (systemctl enable --now qos-agent)")
        shown.append(Row(_("daemon"), text, style="red"))
    else:
        state = _("running") if report.daemon_running else _("not running")
        text = _("{state} (pid {pid}, started {started}, last word {updated})").format(
            state=state,
            pid=daemon.pid,
            started=_ago(daemon.started_at, now),
            updated=_ago(daemon.updated_at, now),
        )
        shown.append(
            Row(_("daemon"), text, bold=state, style="" if report.daemon_running else "red")
        )
        shown.append(_broker(report, daemon, now))
        text = _(
            "{run} run, {skipped} skipped for budget, {failed} failed in the agent (since it "
            "started)"
        ).format(
            run=daemon.tests_run, skipped=daemon.tests_skipped_budget, failed=daemon.tests_failed
        )
        warn = daemon.tests_skipped_budget or daemon.tests_failed
        shown.append(Row(_("tests"), text, style="yellow" if warn else ""))
    shown.append(_spool(report.spool, now))
    for budget in report.budgets:
        left = max(budget.cap_bytes - budget.used_bytes, 0)
        share = left / budget.cap_bytes if budget.cap_bytes else 0.0
        colour = "green" if share > 0.25 else "yellow" if share > 0 else "red"  # noqa: PLR2004
        left_text = _("{left} MB left").format(left=number(left / 1e6, 0))
        text = _("{left} of {cap} MB this month, {skipped} tests skipped").format(
            left=left_text, cap=number(budget.cap_bytes / 1e6, 0), skipped=budget.skipped_tests
        )
        label = _("budget {interface}").format(interface=budget.interface)
        shown.append(Row(label, text, style=colour, bold=left_text))
    if report.quarantine is not None:
        damaged = report.quarantine
        text = _(
            "the state database was damaged ({reason}); the daemon set it aside {when} as {path} "
            "and started afresh (its unsent results are in that file)"
        ).format(reason=damaged.reason, when=_ago(damaged.at, now), path=damaged.moved_to)
        shown.append(Row(_("state"), text, style="red"))
    shown.append(_clock(report.clock))
    if report.disk_free_bytes is not None:
        disk = _("{free} GB free").format(free=number(report.disk_free_bytes / 1e9))
        released = report.disk_reserve_held is False and report.daemon is not None
        if released:
            disk += " - " + _("the spool released its reserve: the disk is or was full; free space")
        shown.append(Row(_("disk"), disk, style="red" if released else ""))
    if report.cpu_temperature_c is not None:
        hot = report.cpu_temperature_c >= 80  # noqa: PLR2004 - a Pi throttles at 80-85 °C
        text = f"{number(report.cpu_temperature_c, 0)} °C"
        shown.append(Row("CPU", text, style="red" if hot else "green"))
    return shown


def _spool(spool: SpoolReport, now: datetime) -> Row:
    waiting = _("{count} waiting for a receipt").format(count=spool.depth)
    size = f"{number(spool.bytes / 1e3, 0)} kB"
    if spool.oldest_created is not None:
        oldest = _ago(datetime.fromtimestamp(spool.oldest_created, UTC), now)
        size = _("{size}, oldest {oldest}").format(size=size, oldest=oldest)
    text = _(
        "{waiting} ({size}); {delivered} delivered, {rejected} rejected, {lost} lost (since "
        "enrollment)"
    ).format(
        waiting=waiting,
        size=size,
        delivered=spool.delivered,
        rejected=spool.rejected,
        lost=spool.lost,
    )
    troubled = spool.depth or spool.rejected or spool.lost
    return Row(_("spool"), text, style="yellow" if troubled else "green", bold=waiting)


def _recent_table(recent: tuple[RecentResult, ...], now: datetime) -> Table:
    shown = Table(title=_("last results"))
    for column in (_("when"), _("link"), _("target")):
        shown.add_column(column)
    # A value column never breaks a rate.
    shown.add_column(_("download"), no_wrap=True)
    shown.add_column(_("delivered"), no_wrap=True)
    for item in recent:
        download = (
            f"{number(item.download_mbps)} Mb/s"
            if item.download_mbps is not None
            else f"[red]{escape(', '.join(item.errors)) or '—'}[/]"
        )
        delivered = (
            "[green]" + _("stored") + "[/]"
            if item.delivered
            else "[yellow]" + _("in spool") + "[/]"
        )
        shown.add_row(
            _ago(item.finished_at, now), item.interface, escape(item.target), download, delivered
        )
    return shown


def _broker(report: StatusReport, daemon: DaemonState, now: datetime) -> Row:
    if not report.daemon_running:
        text = _(
            "not connected to {broker}: the daemon is not running (sudo systemctl restart "
            "qos-agent; journalctl -u qos-agent says why it stopped)"
        ).format(broker=daemon.broker_url)
        return Row(_("broker"), text, style="red")
    since = (
        " " + _("since {when}").format(when=_ago(daemon.broker_since, now))
        if daemon.broker_since
        else ""
    )
    if report.broker_connected:
        text = _("connected to {broker}").format(broker=daemon.broker_url) + since
        return Row(_("broker"), text, style="green")
    text = _("not connected to {broker}").format(broker=daemon.broker_url)
    if daemon.broker_error:
        text += f": {daemon.broker_error}"
    return Row(_("broker"), text + since, style="red")


def _clock(clock: Clock) -> Row:
    offset = (
        ", " + _("offset {offset} ms").format(offset=f"{clock.offset_ms:+.1f}")
        if clock.offset_ms is not None
        else ""
    )
    if clock.synced is None:
        text = _("unknown (timedatectl could not tell)")
        return Row(_("clock"), text + offset, style="yellow")
    if clock.synced:
        return Row(_("clock"), _("synchronised") + offset, style="green")
    return Row(_("clock"), _("not synchronised") + offset, style="red")
