"""`qos-agent check`: measure one link now, show the result, optionally publish it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import get_args

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from agent.check import ALL_TESTS, CheckOptions, LinkLabels, RunnerName, TestName, run_check
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.publish import publish_result
from agent.runners.base import Progress, SpeedSettings
from agent.runners.latency import Method
from agent.verdict import TONE_STYLES, sample_lines
from contract.errors import ConfigError
from contract.mqtt import BrokerConfig
from contract.result import (
    LatencyStats,
    Plan,
    Receipt,
    Result,
    Setting,
    Technology,
    Throughput,
    encode_result,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="measure one link now and show the result",
        description="Download, upload, latency (idle and under load) and IPv6 on one link.",
    )
    check.set_defaults(run=run)
    check.add_argument("--target", help="target URL, e.g. http://198.18.0.1:8080 (default: config)")
    check.add_argument(
        "--config", type=Path, help=f"agent TOML (default {DEFAULT_PATH} when it exists)"
    )
    check.add_argument(
        "--interface",
        help="bind every test to this interface and its address, e.g. wwan0 "
        "(default: the config's first link; without a config, no binding)",
    )
    check.add_argument(
        "--technology",
        choices=[t for t in get_args(Technology) if t != "unknown"],
        help="what the link is, to judge the sample against its QCVN profile (default: the "
        "config's link; without a config, unknown)",
    )
    check.add_argument("--operator", help="the link's operator, e.g. Viettel (default: config)")
    check.add_argument(
        "--plan",
        type=_plan,
        metavar="DOWN/UP",
        help="the subscribed plan in Mb/s, e.g. 100/100: fixed links are judged against 0.8 x it",
    )
    check.add_argument(
        "--setting",
        choices=get_args(Setting),
        help="where this sample is taken (QCVN 81/126 sample mix); outdoor_moving for a drive "
        "test (default: the config's link)",
    )
    check.add_argument(
        "--runner",
        choices=get_args(RunnerName),
        default="http",
        help="speed test engine (default http; iperf3 needs `qos-target serve --iperf3-port`, "
        "speedtest needs speedtest-cli installed)",
    )
    check.add_argument(
        "--tests",
        default=",".join(ALL_TESTS),
        help="comma-separated subset of %(default)s",
    )
    check.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="longest a speed direction may take, warm-up included (default 10 s; "
        "the http runner usually stops earlier, once its estimate is stable)",
    )
    check.add_argument(
        "--max-flows", type=int, default=8, help="most parallel TCP flows (default 8)"
    )
    check.add_argument(
        "--budget-mb",
        type=float,
        help="megabytes the whole check may use (default: no cap; each direction gets half)",
    )
    check.add_argument(
        "--latency-method",
        choices=get_args(Method),
        default="auto",
        help="auto: ICMP when raw sockets are allowed, else TCP connect (default auto)",
    )
    check.add_argument(
        "--ipv6-target",
        help="target URL for the IPv6 checks when --target is an IPv4 address, "
        "e.g. http://[fd00:7166::2]:8080",
    )
    check.add_argument("--dns-name", help="name to look up AAAA for (default: the target's name)")
    check.add_argument(
        "--iperf3-port", type=int, default=5201, help="the target's iperf3 port (default 5201)"
    )
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


def _options(args: argparse.Namespace) -> CheckOptions:
    tests: list[TestName] = []
    for word in args.tests.split(","):
        if word.strip() not in ALL_TESTS:
            raise ConfigError("--tests", f"{word!r} is not a test", f"choose from {ALL_TESTS}")
        tests.append(word.strip())
    try:
        # convert(), unlike the constructor, checks the fields' bounds.
        speed = msgspec.convert(
            {
                "max_duration_s": args.duration,
                "max_flows": args.max_flows,
                "initial_flows": min(SpeedSettings().initial_flows, args.max_flows),
            },
            SpeedSettings,
        )
    except msgspec.ValidationError as exc:
        raise ConfigError("--duration/--max-flows", str(exc), "see qos-agent check --help") from exc
    return CheckOptions(
        tests=tuple(tests),
        speed=speed,
        latency_method=args.latency_method,
        iperf3_port=args.iperf3_port,
        ipv6_target_url=args.ipv6_target,
        dns_name=args.dns_name,
    )


async def _check(args: argparse.Namespace, console: Console) -> int:
    config = _config(args.config)
    target_url = args.target or (config.targets[0].url if config else None)
    if target_url is None:
        console.print("[bold red]qos-agent:[/] no target: pass --target URL or --config FILE")
        return 2
    options = _options(args)
    budget = None if args.budget_mb is None else max(1, int(args.budget_mb * 1e6))
    with console.status(f"measuring {escape(target_url)} ...", spinner="dots") as status:
        result = await run_check(
            target_url=target_url,
            config=config,
            interface=args.interface,
            runner=args.runner,
            budget_bytes=budget,
            options=options,
            progress=_show(status),
            labels=LinkLabels(
                technology=args.technology,
                operator=args.operator,
                plan=args.plan,
                setting=args.setting,
            ),
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


def _plan(text: str) -> Plan:
    """--plan DOWN/UP in Mb/s (one number: the same both ways)."""
    down, _, up = text.partition("/")
    try:
        plan = Plan(download_mbps=float(down), upload_mbps=float(up or down))
        msgspec.convert(msgspec.to_builtins(plan), Plan)  # the contract's bounds
    except (ValueError, msgspec.ValidationError) as exc:
        message = f"{text!r} is not DOWN/UP in Mb/s, e.g. 100/100 or 1000/1000 ({exc})"
        raise argparse.ArgumentTypeError(message) from exc
    return plan


def _show(status: Status) -> Progress:
    def progress(stage: str, mbps: float | None) -> None:
        rate = f" — {mbps:,.1f} Mb/s" if mbps is not None else ""
        status.update(f"{stage}{rate}")

    return progress


def _config(path: Path | None) -> AgentConfig | None:
    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_PATH) if DEFAULT_PATH.exists() else None


def _speed_text(speed: Throughput) -> str:
    confidence = f", ±{speed.confidence:.1%}" if speed.confidence is not None else ""
    return (
        f"[bold]{speed.mbps:,.1f} Mb/s[/] over {speed.duration_s:.1f} s, {speed.flows} flows, "
        f"warm-up {speed.warmup_s:.1f} s excluded, stopped: {speed.stop_reason or '-'}{confidence}"
    )


def _latency_text(stats: LatencyStats) -> str:
    return (
        f"median [bold]{stats.median_ms:.1f} ms[/], P95 {stats.p95_ms:.1f} ms, jitter "
        f"{stats.jitter_ms:.1f} ms, loss {stats.loss:.0%} ({stats.count} probes, {stats.method})"
    )


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
    measured = result.measurements
    for name, speed in (("download", measured.download), ("upload", measured.upload)):
        if speed:
            table.add_row(name, _speed_text(speed))
    if measured.latency:
        for name, stats in (
            ("latency idle", measured.latency.idle),
            ("under load", measured.latency.loaded),
        ):
            if stats:
                table.add_row(name, _latency_text(stats))
    if measured.ipv6:
        evidence = ", ".join(f"{key} {value}" for key, value in measured.ipv6.evidence.items())
        table.add_row("IPv6", f"[bold]{measured.ipv6.status}[/] [dim]({escape(evidence)})[/]")
    for line in sample_lines(result):
        table.add_row(line.heading, f"[{TONE_STYLES[line.tone]}]{escape(line.text)}[/]")
    provenance = result.provenance
    cpu = f", CPU peak {provenance.cpu_peak_percent:.0f} %" if provenance.cpu_peak_percent else ""
    limited = (
        " — [red]probe-limited[/] (its CPU, not the link, set the rate)"
        if provenance.probe_limited
        else ""
    )
    tool = f" ({provenance.tool_version})" if provenance.tool_version else ""
    table.add_row("runner", f"{provenance.runner}{tool}{cpu}{limited}")
    table.add_row("data used", f"{provenance.bytes_used / 1e6:.1f} MB")
    for error in result.errors:
        table.add_row("[red]error[/]", escape(f"{error.stage}: {error.code} — {error.message}"))
    if published:
        status = (
            f"[green]{receipt.status}[/] by the collector" if receipt else "sent (no receipt asked)"
        )
        table.add_row("published", status)
    console.print(table)
