"""`qos-agent check`: measure one link now, show the result, optionally publish it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from agent.check import run_check
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.publish import publish_result
from contract.mqtt import BrokerConfig
from contract.profiles import profile_for
from contract.result import Receipt, Result, encode_result


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser("check", help="measure one link now and show the result")
    check.set_defaults(run=run)
    check.add_argument("--target", help="target URL, e.g. http://198.18.0.1:8080 (default: config)")
    check.add_argument(
        "--config", type=Path, help=f"agent TOML (default {DEFAULT_PATH} when it exists)"
    )
    check.add_argument("--interface", help="link to test, by interface name (default: first)")
    check.add_argument("--duration", type=float, default=5.0, help="seconds measured (default 5)")
    check.add_argument("--flows", type=int, default=4, help="parallel TCP flows (default 4)")
    check.add_argument("--json", action="store_true", help="print the result envelope as JSON")
    check.add_argument("--publish", action="store_true", help="send the result to the broker")
    check.add_argument("--broker", help="broker URL, overrides the config (mqtt://HOST:PORT)")
    check.add_argument(
        "--receipt-timeout",
        type=float,
        default=15.0,
        help="with --publish: seconds to wait for the collector's receipt (0: do not wait)",
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_check(args, Console(stderr=True)))


async def _check(args: argparse.Namespace, console: Console) -> int:
    config = _config(args.config)
    target_url = args.target or (config.targets[0].url if config else None)
    if target_url is None:
        console.print("[bold red]qos-agent:[/] no target: pass --target URL or --config FILE")
        return 2
    with console.status(f"measuring download from {target_url} ...", spinner="dots"):
        result = await run_check(
            target_url=target_url,
            config=config,
            interface=args.interface,
            duration_s=args.duration,
            flows=args.flows,
        )
    receipt: Receipt | None = None
    if args.publish:
        broker = config.broker if config else BrokerConfig()
        if args.broker:
            broker = msgspec.structs.replace(broker, url=args.broker)
        timeout = args.receipt_timeout or None
        with console.status(f"publishing to {broker.url} ...", spinner="dots"):
            receipt = await publish_result(broker, result, receipt_timeout_s=timeout)
    if args.json:
        sys.stdout.write(encode_result(result).decode() + "\n")
    else:
        _print_table(Console(), result, receipt, published=args.publish)
    return 1 if result.errors else 0


def _config(path: Path | None) -> AgentConfig | None:
    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_PATH) if DEFAULT_PATH.exists() else None


def _print_table(
    console: Console, result: Result, receipt: Receipt | None, *, published: bool
) -> None:
    table = Table(title=f"qos-agent check — probe {result.probe_id}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    where = (
        f"{result.location.village} (commune {result.location.commune_code}, "
        f"province {result.location.province_code})"
        if result.location
        else "[yellow]not enrolled[/] (no config)"
    )
    table.add_row("location", where)
    link = result.link
    table.add_row("link", f"{link.interface} · {link.access} · {link.technology} · {link.operator}")
    table.add_row("target", f"{result.target.id} ({result.target.address})")
    download = result.measurements.download
    if download:
        table.add_row(
            "download",
            f"[bold]{download.mbps:.1f} Mb/s[/] over {download.duration_s:.1f} s, "
            f"{download.flows} flows, warm-up {download.warmup_s:g} s excluded",
        )
        profile = profile_for(link.technology)
        if profile and profile.download and profile.download.mean_min_mbps:
            floor = profile.download.mean_min_mbps
            mark = "[green]meets[/]" if download.mbps >= floor else "[red]below[/]"
            table.add_row(
                "QCVN", f"{mark} the {profile.name} target of {floor:g} Mb/s (one sample only)"
            )
    table.add_row("data used", f"{result.provenance.bytes_used / 1e6:.1f} MB")
    for error in result.errors:
        table.add_row("[red]error[/]", f"{error.stage}: {error.code} — {error.message}")
    if published:
        status = (
            f"[green]{receipt.status}[/] by the collector" if receipt else "sent (no receipt asked)"
        )
        table.add_row("published", status)
    console.print(table)
