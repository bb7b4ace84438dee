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
        "status", help="daemon, broker connection, spool, budgets and the last results"
    )
    status.set_defaults(run=run)
    status.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"agent TOML (default {DEFAULT_PATH})"
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")


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
            "state_dir", f"cannot read {state_dir}", "run as root: sudo qos-agent status"
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
                f"the state database in {state_dir} is damaged ({exc})",
                "the daemon sets it aside for recovery and starts afresh when it starts: "
                "`systemctl restart qos-agent`, then `qos-agent status` again",
            ) from exc
        raise ConfigError(
            "state_dir",
            f"cannot read the state database in {state_dir} ({exc})",
            "run as root or as the daemon's user (sudo qos-agent status); on the daemon's very "
            "first start, try again in a moment",
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
    seconds = max((now - then).total_seconds(), 0.0)
    if seconds < 120:  # noqa: PLR2004
        return f"{seconds:.0f} s ago"
    if seconds < 7200:  # noqa: PLR2004
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def show(console: Console, report: StatusReport) -> None:
    now = datetime.now(UTC)
    table = Table(title=f"qos-agent status — probe {report.probe_id}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    daemon = report.daemon
    if daemon is None:
        table.add_row("daemon", "[red]has never run[/] (systemctl enable --now qos-agent)")
    else:
        state = "[green]running[/]" if report.daemon_running else "[red]not running[/]"
        table.add_row(
            "daemon",
            f"{state} (pid {daemon.pid}, started {_ago(daemon.started_at, now)}, "
            f"last word {_ago(daemon.updated_at, now)})",
        )
        table.add_row("broker", _broker(report, daemon, now))
        table.add_row(
            "tests",
            f"{daemon.tests_run} run, {_warn(daemon.tests_skipped_budget)} skipped for budget, "
            f"{_warn(daemon.tests_failed)} failed in the agent (since it started)",
        )
    spool = report.spool
    oldest = (
        f", oldest {_ago(datetime.fromtimestamp(spool.oldest_created, UTC), now)}"
        if spool.oldest_created is not None
        else ""
    )
    depth_colour = "green" if spool.depth == 0 else "yellow"
    table.add_row(
        "spool",
        f"[{depth_colour}]{spool.depth} waiting for a receipt[/] ({spool.bytes / 1e3:.0f} kB"
        f"{oldest}); {spool.delivered} delivered, {_warn(spool.rejected)} rejected, "
        f"{_warn(spool.lost)} lost (since enrollment)",
    )
    for budget in report.budgets:
        left = max(budget.cap_bytes - budget.used_bytes, 0)
        share = left / budget.cap_bytes if budget.cap_bytes else 0.0
        colour = "green" if share > 0.25 else "yellow" if share > 0 else "red"  # noqa: PLR2004
        table.add_row(
            f"budget {budget.interface}",
            f"[{colour}]{left / 1e6:,.0f} MB left[/] of {budget.cap_bytes / 1e6:,.0f} MB "
            f"this month, {_warn(budget.skipped_tests)} tests skipped",
        )
    if report.quarantine is not None:
        damaged = report.quarantine
        table.add_row(
            "state",
            f"[red]the state database was damaged[/] ({escape(damaged.reason)}); the daemon set "
            f"it aside {_ago(damaged.at, now)} as {escape(damaged.moved_to)} and started afresh "
            "(its unsent results are in that file)",
        )
    table.add_row("clock", _clock(report.clock))
    if report.disk_free_bytes is not None:
        disk = f"{report.disk_free_bytes / 1e9:.1f} GB free"
        if report.disk_reserve_held is False and report.daemon is not None:
            disk += " [red]- the spool released its reserve: the disk is or was full; free space[/]"
        table.add_row("disk", disk)
    if report.cpu_temperature_c is not None:
        hot = report.cpu_temperature_c >= 80  # noqa: PLR2004 - a Pi throttles at 80-85 °C
        colour = "red" if hot else "green"
        table.add_row("CPU", f"[{colour}]{report.cpu_temperature_c:.0f} °C[/]")
    console.print(table)
    if report.recent:
        console.print(_recent_table(report.recent, now))


def _recent_table(recent: tuple[RecentResult, ...], now: datetime) -> Table:
    table = Table(title="last results")
    for column in ("when", "link", "target", "download", "delivered"):
        table.add_column(column)
    for item in recent:
        download = (
            f"{item.download_mbps:.1f} Mb/s"
            if item.download_mbps is not None
            else f"[red]{escape(', '.join(item.errors)) or '—'}[/]"
        )
        delivered = "[green]stored[/]" if item.delivered else "[yellow]in spool[/]"
        table.add_row(
            _ago(item.finished_at, now), item.interface, escape(item.target), download, delivered
        )
    return table


def _broker(report: StatusReport, daemon: DaemonState, now: datetime) -> str:
    if not report.daemon_running:
        return (
            f"[red]not connected[/] to {escape(daemon.broker_url)}: the daemon is not running "
            "(sudo systemctl restart qos-agent; journalctl -u qos-agent says why it stopped)"
        )
    since = f" since {_ago(daemon.broker_since, now)}" if daemon.broker_since else ""
    if report.broker_connected:
        return f"[green]connected[/] to {escape(daemon.broker_url)}{since}"
    error = f": {escape(daemon.broker_error)}" if daemon.broker_error else ""
    return f"[red]not connected[/] to {escape(daemon.broker_url)}{error}{since}"


def _warn(count: int) -> str:
    return f"[yellow]{count}[/]" if count else "0"


def _clock(clock: Clock) -> str:
    offset = f", offset {clock.offset_ms:+.1f} ms" if clock.offset_ms is not None else ""
    if clock.synced is None:
        return f"[yellow]unknown[/] (timedatectl could not tell){offset}"
    return ("[green]synchronised[/]" if clock.synced else "[red]not synchronised[/]") + offset
