"""`qos-agent check`: measure one link now, show the result, optionally publish it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import NamedTuple, get_args

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.daemon import probe_meta
from agent.engine import LinkLabels, link_for, measure_link, speed_settings, target_for
from agent.envelope import build_result
from agent.keys import load_key
from agent.measurements.base import Progress, SpeedSettings
from agent.measurements.kind import MeasureOptions, registered_kinds
from agent.measurements.latency import Method
from agent.measurements.speed import RUNNERS
from agent.publish import publish_result
from agent.state import ensure_state_dir, require_writable
from agent.verdict import TONE_STYLES, sample_lines
from contract import names
from contract.addresses import parse_url
from contract.errors import ConfigError, QosfleetError, ServiceError
from contract.fleet import ProbeMeta
from contract.mqtt import BrokerConfig, broker_endpoint
from contract.quantities import declared_quantities
from contract.result import (
    LatencyStats,
    Measurements,
    Plan,
    Provenance,
    Receipt,
    Result,
    Setting,
    Throughput,
    encode_result,
)
from contract.signing import sign_result

CHECK_ACCOUNT_HINT = (
    "give the URL without the account; the account goes in the config's [broker] username and "
    "password (qos-agent check --config FILE)"
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
        help="what the link is, to judge the sample against its QCVN profile: "
        f"{', '.join(names.canonical_names('technologies'))} or an alias such as LTE (default: "
        "the config's link; without a config, unknown)",
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
        choices=RUNNERS,
        default="http",
        help="speed test engine (default http; iperf3 needs `qos-target serve --iperf3-port`, "
        "speedtest needs speedtest-cli installed)",
    )
    check.add_argument(
        "--tests",
        help="comma-separated measurement kinds to run (default: every installed kind, e.g. "
        "latency,download,latency_loaded,upload,ipv6)",
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


def _options(args: argparse.Namespace) -> MeasureOptions:
    kinds = None
    if args.tests is not None:
        installed = registered_kinds().kinds
        kinds = tuple(word.strip() for word in args.tests.split(","))
        for word in kinds:
            if word not in installed:
                raise ConfigError(
                    "--tests",
                    f"{word!r} is not a measurement",
                    f"choose from {','.join(installed)}",
                )
    try:
        # convert(), unlike the constructor, checks the fields' bounds.
        speed = msgspec.convert(
            msgspec.to_builtins(
                speed_settings(SpeedSettings(), duration_s=args.duration, flows=args.max_flows)
            ),
            SpeedSettings,
        )
    except msgspec.ValidationError as exc:
        raise ConfigError("--duration/--max-flows", str(exc), "see qos-agent check --help") from exc
    return MeasureOptions(
        kinds=kinds,
        runner=args.runner,
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
    parse_url(target_url, option="--target", schemes=("http", "https"))
    options = _options(args)
    # One spelling per technology and operator (contract/data/names.toml): "LTE" is 4g.
    labels = LinkLabels(
        technology=None
        if args.technology is None
        else names.technology(args.technology, field="--technology"),
        operator=None
        if args.operator is None
        else names.operator(args.operator, field="--operator"),
        plan=args.plan,
        setting=args.setting,
    )
    budget = None if args.budget_mb is None else max(1, int(args.budget_mb * 1e6))
    if config is not None:
        # The result's sequence number is written there: say so now, not after measuring.
        ensure_state_dir(Path(config.state_dir))
        require_writable(Path(config.state_dir))
    plan = _publication(args, config) if args.publish else None
    if plan is not None and plan.warning is not None:
        _warn(console, plan.warning)
    link, bind_to = link_for(config, args.interface, labels)
    with console.status(f"measuring {escape(target_url)} ...", spinner="dots") as status:
        measured = await measure_link(
            target_url, bind_to, budget_bytes=budget, options=options, progress=_show(status)
        )
    result = build_result(
        config, link=link, target=target_for(target_url, config), measured=measured
    )
    published = await _publish(plan, result, args, console) if plan is not None else None
    if args.json:
        sys.stdout.write(encode_result(result).decode() + "\n")
    else:
        _print_table(Console(), result, published)
    if published is not None and published.failure is not None:
        _warn(console, published.failure, colour="red")
        return 2
    return 1 if result.errors else 0


class _Publication(NamedTuple):
    """How a check's result will be sent, decided before measuring."""

    broker: BrokerConfig
    key: Ed25519PrivateKey | None  # None: sent unsigned
    meta: ProbeMeta | None  # the enrollment, published first
    warning: QosfleetError | None  # said before measuring
    refused: bool  # cannot be sent at all: measured and shown only


class _Published(NamedTuple):
    receipt: Receipt | None
    failure: QosfleetError | None


def _publication(args: argparse.Namespace, config: AgentConfig | None) -> _Publication:
    """Who sends the result, to which broker, signed or not; problems said before measuring."""
    broker = config.broker if config else BrokerConfig()
    if args.broker:
        broker_endpoint(args.broker, option="--broker", credentials_hint=CHECK_ACCOUNT_HINT)
        broker = msgspec.structs.replace(broker, url=args.broker)
    if config is None:
        not_enrolled = ConfigError(
            "--publish",
            f"this probe is not enrolled (no config at {DEFAULT_PATH}): no collector stores a "
            "result of a probe it does not know, so this one is measured and shown, not sent",
            "enroll the probe first (`sudo qos-agent enroll ...`, docs/install-probe.md "
            "section 4), then `qos-agent check --publish`; or pass --config FILE",
        )
        return _Publication(broker=broker, key=None, meta=None, warning=not_enrolled, refused=True)
    if not config.key_path.exists():
        unsigned = ConfigError(
            "key_file",
            f"no signing key at {config.key_path}: the result goes unsigned, which only a "
            "collector accepting unsigned results (the lab's) stores",
            "run `qos-agent enroll` to make the probe's key",
        )
        return _Publication(broker=broker, key=None, meta=None, warning=unsigned, refused=False)
    try:
        key = load_key(config.key_path)
    except ConfigError as exc:
        return _Publication(broker=broker, key=None, meta=None, warning=exc, refused=True)
    meta = probe_meta(config, key)
    return _Publication(broker=broker, key=key, meta=meta, warning=None, refused=False)


async def _publish(
    plan: _Publication, result: Result, args: argparse.Namespace, console: Console
) -> _Published:
    """Send the result (signed, after the enrollment) and wait for the receipt; never raises."""
    if plan.refused:
        return _Published(receipt=None, failure=plan.warning)
    signed = sign_result(result, plan.key) if plan.key is not None else result
    timeout = args.receipt_timeout or None
    try:
        with console.status(f"publishing to {escape(plan.broker.url)} ...", spinner="dots"):
            receipt = await publish_result(
                plan.broker, signed, meta=plan.meta, receipt_timeout_s=timeout
            )
    except QosfleetError as exc:
        return _Published(receipt=None, failure=exc)
    if receipt is not None and receipt.status == "rejected":
        refusal = ServiceError(
            f"the collector refused result {receipt.id}: {receipt.reason or 'no reason given'}",
            "fix what the reason names (the probe's clock, key or config) and check again",
        )
        return _Published(receipt=receipt, failure=refusal)
    return _Published(receipt=receipt, failure=None)


def _warn(console: Console, problem: QosfleetError, *, colour: str = "yellow") -> None:
    console.print(
        f"[bold {colour}]qos-agent:[/] {escape(str(problem))}", highlight=False, soft_wrap=True
    )


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


def _mbps(value: float) -> str:
    """A rate as read: one decimal, or three significant digits below 1 Mb/s (never "0.0")."""
    return f"{value:,.1f}" if value >= 1 else f"{value:.3g}"


def _speed_text(speed: Throughput) -> str:
    confidence = f", ±{speed.confidence:.1%}" if speed.confidence is not None else ""
    return (
        f"[bold]{_mbps(speed.mbps)} Mb/s[/] over {speed.duration_s:.1f} s, {speed.flows} flows, "
        f"warm-up {speed.warmup_s:.1f} s excluded, stopped: {speed.stop_reason or '-'}{confidence}"
    )


def _latency_text(stats: LatencyStats) -> str:
    return (
        f"median [bold]{stats.median_ms:.1f} ms[/], P95 {stats.p95_ms:.1f} ms, jitter "
        f"{stats.jitter_ms:.1f} ms, loss {stats.loss:.0%} ({stats.count} probes, {stats.method})"
    )


def _runner_text(provenance: Provenance) -> str:
    cpu = f", CPU peak {provenance.cpu_peak_percent:.0f} %" if provenance.cpu_peak_percent else ""
    limited = (
        " — [red]probe-limited[/] (its CPU, not the link, set the rate)"
        if provenance.probe_limited
        else ""
    )
    tool = f" ({provenance.tool_version})" if provenance.tool_version else ""
    return f"{provenance.runner}{tool}{cpu}{limited}"


def _published_text(published: _Published) -> str:
    receipt = published.receipt
    if receipt is not None:
        colour = "green" if receipt.status == "stored" else "red"
        return f"[{colour}]{receipt.status}[/] by the collector"
    if published.failure is not None:
        return "[red]not published[/] (see below)"
    return "sent (no receipt asked)"


def _add_kind_rows(table: Table, measured: Measurements) -> None:
    """The blocks of kinds added as plugins: each declared quantity in its unit."""
    quantities = declared_quantities()
    for kind, block in measured.kinds.items():
        for name, value in block.values.items():
            unit = quantities[name].unit if name in quantities else ""
            table.add_row(escape(name.replace("_", " ")), f"[bold]{value:,.4g} {unit}[/]")
        if not block.values:
            table.add_row(escape(kind.replace("_", " ")), "[red]not measured[/] (see errors)")


def _print_table(console: Console, result: Result, published: _Published | None) -> None:
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
    _add_kind_rows(table, measured)
    for line in sample_lines(result):
        table.add_row(line.heading, f"[{TONE_STYLES[line.tone]}]{escape(line.text)}[/]")
    table.add_row("runner", _runner_text(result.provenance))
    table.add_row("data used", f"{result.provenance.bytes_used / 1e6:.1f} MB")
    for error in result.errors:
        table.add_row("[red]error[/]", escape(f"{error.stage}: {error.code} — {error.message}"))
    if published is not None:
        table.add_row("published", _published_text(published))
    console.print(table)
