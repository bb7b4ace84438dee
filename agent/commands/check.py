"""`qos-agent check`: measure one link now, show the result, optionally publish it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple, get_args
from urllib.parse import urlsplit

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from agent import history
from agent.config import DEFAULT_PATH, AgentConfig, load_config
from agent.daemon import probe_meta
from agent.engine import LinkLabels, link_for, measure_link, speed_settings, target_for
from agent.envelope import build_result
from agent.keys import load_key
from agent.measurements.base import SpeedSettings
from agent.measurements.kind import MeasureOptions, registered_kinds
from agent.measurements.latency import Method
from agent.measurements.speed import RUNNERS
from agent.net.counters import LiveRate, interface_towards, live_rates
from agent.publish import publish_result
from agent.screen import Row, fit, table
from agent.state import ensure_state_dir, require_writable
from agent.summary import HEADLINE_STYLES, csv_rows, headline_text, json_with_verdict, mbps_text
from agent.verdict import TONE_STYLES, sample_lines
from contract import names
from contract.addresses import parse_url
from contract.errors import ConfigError, QosfleetError, ServiceError
from contract.fleet import ProbeMeta
from contract.i18n import N_, _, ngettext, number, percent, significant
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
)
from contract.signing import sign_result

CHECK_ACCOUNT_HINT = N_(
    "give the URL without the account; the account goes in the config's [broker] username and "
    "password (qos-agent check --config FILE)"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help=_("measure one link now and show the result"),
        description=_("Download, upload, latency (idle and under load) and IPv6 on one link."),
    )
    check.set_defaults(run=run)
    check.add_argument(
        "--target", help=_("target URL, e.g. http://198.18.0.1:8080 (default: config)")
    )
    check.add_argument(
        "--config",
        type=Path,
        help=_("agent TOML (default {path} when it exists)").format(path=DEFAULT_PATH),
    )
    check.add_argument(
        "--interface",
        help=_(
            "bind every test to this interface and its address, e.g. wwan0 (default: the "
            "config's first link; without a config, no binding)"
        ),
    )
    check.add_argument(
        "--technology",
        help=_(
            "what the link is, to judge the sample against its QCVN profile: {names} or an alias "
            "such as LTE (default: the config's link; without a config, unknown)"
        ).format(names=", ".join(names.canonical_names("technologies"))),
    )
    check.add_argument("--operator", help=_("the link's operator, e.g. Viettel (default: config)"))
    check.add_argument(
        "--plan",
        type=_plan,
        metavar="DOWN/UP",
        help=_(
            "the subscribed plan in Mb/s, e.g. 100/100: fixed links are judged against 0.8 x it"
        ),
    )
    check.add_argument(
        "--setting",
        choices=get_args(Setting),
        help=_(
            "where this sample is taken (QCVN 81/126 sample mix); outdoor_moving for a drive "
            "test (default: the config's link)"
        ),
    )
    check.add_argument(
        "--runner",
        choices=RUNNERS,
        default="http",
        help=_(
            "speed test engine (default http; iperf3 needs `qos-target serve --iperf3-port`, "
            "speedtest needs speedtest-cli installed)"
        ),
    )
    check.add_argument(
        "--tests",
        help=_(
            "comma-separated measurement kinds to run (default: every installed kind, e.g. "
            "latency,download,latency_loaded,upload,ipv6)"
        ),
    )
    check.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help=_(
            "longest a speed direction may take, warm-up included (default 10 s; the http "
            "runner usually stops earlier, once its estimate is stable, and on a long path runs "
            "on to twice this until it is)"
        ),
    )
    check.add_argument(
        "--max-flows", type=int, default=8, help=_("most parallel TCP flows (default 8)")
    )
    check.add_argument(
        "--budget-mb",
        type=float,
        help=_("megabytes the whole check may use (default: no cap; each direction gets half)"),
    )
    check.add_argument(
        "--latency-method",
        choices=get_args(Method),
        default="auto",
        help=_("auto: ICMP when raw sockets are allowed, else TCP connect (default auto)"),
    )
    check.add_argument(
        "--ipv6-target",
        help=_(
            "target URL for the IPv6 checks when --target is an IPv4 address, e.g. "
            "http://[fd00:7166::2]:8080"
        ),
    )
    check.add_argument(
        "--dns-name", help=_("name to look up AAAA for (default: the target's name)")
    )
    check.add_argument(
        "--iperf3-port",
        type=int,
        default=5201,
        help=_("the target's iperf3 port (default 5201)"),
    )
    output = check.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help=_("print the result envelope as JSON, with this sample's verdict in `verdict`"),
    )
    output.add_argument(
        "--simple", action="store_true", help=_("print a few plain lines, without colour")
    )
    output.add_argument(
        "--csv",
        action="store_true",
        help=_("print a CSV header and one row (dot decimals, for scripts and spreadsheets)"),
    )
    check.add_argument("--publish", action="store_true", help=_("send the result to the broker"))
    check.add_argument("--broker", help=_("broker URL, overrides the config (mqtt://HOST:PORT)"))
    check.add_argument(
        "--receipt-timeout",
        type=float,
        default=15.0,
        help=_("with --publish: seconds to wait for the collector's receipt (0: do not wait)"),
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
                    _("{word!r} is not a measurement").format(word=word),
                    _("choose from {kinds}").format(kinds=",".join(installed)),
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
        raise ConfigError(
            "--duration/--max-flows", str(exc), _("see qos-agent check --help")
        ) from exc
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
        console.print(
            "[bold red]qos-agent:[/] " + _("no target: pass --target URL or --config FILE")
        )
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
    measuring = _("measuring {target} ...").format(target=escape(target_url))
    # Off a terminal (a script, a log) the spinner draws nothing, and nothing needs sampling.
    watched = None
    if console.is_terminal:
        watched = bind_to or interface_towards(urlsplit(target_url).hostname or "")
    with console.status(measuring, spinner="dots") as status:
        line = LiveLine(status.update, measuring)
        async with live_rates(watched, line.rate):
            measured = await measure_link(
                target_url, bind_to, budget_bytes=budget, options=options, progress=line.progress
            )
    result = build_result(
        config, link=link, target=target_for(target_url, config), measured=measured
    )
    if config is not None:
        history.record(Path(config.state_dir), "check", result)
    published = await _publish(plan, result, args, console) if plan is not None else None
    if args.json:
        sys.stdout.write(json_with_verdict(result) + "\n")
    elif args.csv:
        sys.stdout.write(csv_rows(result))
    elif args.simple:
        sys.stdout.write("".join(line + "\n" for line in simple_lines(result, published)))
    else:
        show(Console(), result, published)
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
        broker_endpoint(args.broker, option="--broker", credentials_hint=_(CHECK_ACCOUNT_HINT))
        broker = msgspec.structs.replace(broker, url=args.broker)
    if config is None:
        not_enrolled = ConfigError(
            "--publish",
            _(
                "this probe is not enrolled (no config at {path}): no collector stores a result "
                "of a probe it does not know, so this one is measured and shown, not sent"
            ).format(path=DEFAULT_PATH),
            _(
                "enroll the probe first (`sudo qos-agent enroll ...`, docs/install-probe.md "
                "section 4), then `qos-agent check --publish`; or pass --config FILE"
            ),
        )
        return _Publication(broker=broker, key=None, meta=None, warning=not_enrolled, refused=True)
    if not config.key_path.exists():
        unsigned = ConfigError(
            "key_file",
            _(
                "no signing key at {path}: the result goes unsigned, which only a collector "
                "accepting unsigned results (the lab's) stores"
            ).format(path=config.key_path),
            _("run `qos-agent enroll` to make the probe's key"),
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
        publishing = _("publishing to {broker} ...").format(broker=escape(plan.broker.url))
        with console.status(publishing, spinner="dots"):
            receipt = await publish_result(
                plan.broker, signed, meta=plan.meta, receipt_timeout_s=timeout
            )
    except QosfleetError as exc:
        return _Published(receipt=None, failure=exc)
    if receipt is not None and receipt.status == "rejected":
        refusal = ServiceError(
            _("the collector refused result {id}: {reason}").format(
                id=receipt.id, reason=receipt.reason or _("no reason given")
            ),
            _("fix what the reason names (the probe's clock, key or config) and check again"),
        )
        return _Published(receipt=receipt, failure=refusal)
    return _Published(receipt=receipt, failure=None)


def _warn(console: Console, problem: QosfleetError, *, colour: str = "yellow") -> None:
    console.print(
        f"[bold {colour}]qos-agent:[/] {escape(str(problem))}", highlight=False, soft_wrap=True
    )


def _plan(text: str) -> Plan:
    """--plan DOWN/UP in Mb/s (one number: the same both ways)."""
    down, _slash, up = text.partition("/")
    try:
        plan = Plan(download_mbps=float(down), upload_mbps=float(up or down))
        msgspec.convert(msgspec.to_builtins(plan), Plan)  # the contract's bounds
    except (ValueError, msgspec.ValidationError) as exc:
        message = _("{text!r} is not DOWN/UP in Mb/s, e.g. 100/100 or 1000/1000 ({reason})")
        message = message.format(text=text, reason=exc)
        raise argparse.ArgumentTypeError(message) from exc
    return plan


class LiveLine:
    """The line under the spinner: the runner's stage (and its own estimate, when it has one)
    and the link's live rate from the interface's counters, whatever the runner."""

    def __init__(self, update: Callable[[str], None], stage: str) -> None:
        self.update = update
        self.stage = stage
        self.estimate = ""
        self.link = ""

    def progress(self, stage: str, mbps: float | None) -> None:
        self.stage = escape(stage)
        self.estimate = (
            _(" (estimate {rate})").format(rate=mbps_text(mbps)) if mbps is not None else ""
        )
        self._show()

    def rate(self, live: LiveRate) -> None:
        self.link = f" — ↓ {mbps_text(live.down_mbps)} ↑ {mbps_text(live.up_mbps)}"
        self._show()

    def _show(self) -> None:
        self.update(f"{self.stage}{self.estimate}{self.link}")


def _config(path: Path | None) -> AgentConfig | None:
    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_PATH) if DEFAULT_PATH.exists() else None


# How a speed direction stopped (contract.result.StopReason), as the screen says it.
STOP_REASONS: Final[dict[str, str]] = {
    "duration": N_("its time was up"),
    "stable": N_("the rate was stable"),
    "budget": N_("its data budget was spent"),
    "error": N_("an error"),
}
# The IPv6 check's outcome (contract.result.Ipv6Status).
IPV6_STATUSES: Final[dict[str, str]] = {
    "works": N_("works"),
    "no-v6": N_("no IPv6 on this link"),
    "broken-route": N_("an IPv6 address but no route out"),
    "dns-only": N_("names resolve to IPv6, connections fail"),
    "pmtud-blackhole": N_("large IPv6 packets are lost (path MTU black hole)"),
}
# The IPv6 checks' evidence (wire data, in codes) as the screen names it: each check, and the
# values that are words; an address, a figure or a tool's message is shown as it is.
IPV6_EVIDENCE: Final[dict[str, str]] = {
    "global_address": N_("global address"),
    "ula": N_("ULA address"),
    "default_route": N_("default route"),
    "aaaa": N_("AAAA lookup"),
    "v6_target": N_("IPv6 target"),
    "tcp": "TCP",
    "tcp_connect_ms": N_("TCP connect"),
    "http": "HTTP",
    "large": N_("large packets"),
    "happy_eyeballs": "Happy Eyeballs",
    "happy_eyeballs_ms": "Happy Eyeballs",
}
IPV6_EVIDENCE_WORDS: Final[dict[str, str]] = {
    "none": N_("none"),
    "no-dns": N_("no DNS server"),
    "not-tested: no addresses": N_("not tested: no addresses"),
    "not-tested: no dual-stack target": N_("not tested: no target with both IPv4 and IPv6"),
}
# What to do about a measurement error, by its code (the message is the tool's, kept on the wire
# as the probe said it; this is the screen's advice).
ERROR_HINTS: Final[dict[str, str]] = {
    "connect-failed": N_(
        "the target did not answer: is it up (`qos-target serve`), and are the address and port "
        "in --target right? Try `ping` to its address, or another target"
    ),
    "resolve-failed": N_(
        "the target's name did not resolve: check the name in --target and the probe's DNS "
        "(`resolvectl status`)"
    ),
    "timeout": N_(
        "the link stopped carrying data: check the signal or the cable, then check again"
    ),
    "no-answer": N_(
        "nothing answered the latency probes: is the target up, and does the link carry "
        "traffic (`ping` its address)?"
    ),
    "bad-answer": N_("the target answered, but not as a qos-target does: check the --target URL"),
    "latency-method": N_(
        "ICMP is not allowed to this user: latency was measured by TCP connect; run as root or "
        "as the agent's unit (it has CAP_NET_RAW) for ICMP"
    ),
    "bind-failed": N_("binding to an interface needs root or CAP_NET_RAW: run with sudo"),
    "interface-missing": N_(
        "check --interface against `ip link` (a USB modem may be unplugged or renamed)"
    ),
    "tool-missing": N_(
        "the measurement tool is not installed: reinstall the agent (`sudo apt install "
        "--reinstall qosfleet-agent`)"
    ),
    "tool-failed": N_("the measurement tool failed: its message says why; check again"),
    "transfer-failed": N_(
        "the transfer broke off after it had started: the link dropped or the target stopped; "
        "check the signal or the cable, then check again"
    ),
    "server-busy": N_(
        "the target's iperf3 serves one test at a time and another was running: wait a minute "
        "and check again, or use --runner http"
    ),
    "no-data": N_(
        "nothing was moved: the link carries no traffic to the target, or the data budget is "
        "too small (--budget-mb)"
    ),
    "too-little-data": N_(
        "too little was moved to make a rate: raise --budget-mb or --duration, or check the link"
    ),
    "invalid-block": N_("a bug in a measurement kind: report it with this screen (`--json`)"),
    "kind-unusable": N_(
        "an installed measurement kind cannot be loaded: reinstall the agent or remove the "
        "package that adds it"
    ),
    "internal": N_("a bug in the agent: report it with this screen (`--json` adds the details)"),
}


def _speed_row(label: str, speed: Throughput) -> Row:
    rate = mbps_text(speed.mbps)
    text = _(
        "{rate} over {duration} s, {flows}, warm-up {warmup} s excluded, stopped: {reason}"
    ).format(
        rate=rate,
        duration=number(speed.duration_s),
        flows=ngettext("{count} flow", "{count} flows", speed.flows).format(count=speed.flows),
        warmup=number(speed.warmup_s),
        reason=_(STOP_REASONS[speed.stop_reason]) if speed.stop_reason else "-",
    )
    if speed.confidence is not None:
        text += f", ±{percent(speed.confidence, 1)}"
    if not speed.converged:
        text += " — " + _("still climbing when the test ended: a lower bound, not the link's rate")
        return Row(label, text, bold=rate, style="red")
    return Row(label, text, bold=rate)


def _latency_row(label: str, stats: LatencyStats) -> Row:
    median = f"{number(stats.median_ms)} ms"
    text = _(
        "median {median}, P95 {p95} ms, jitter {jitter} ms, loss {loss} ({count}, {method})"
    ).format(
        median=median,
        p95=number(stats.p95_ms),
        jitter=number(stats.jitter_ms),
        loss=percent(stats.loss),
        count=ngettext("{count} probe", "{count} probes", stats.count).format(count=stats.count),
        method=stats.method,
    )
    return Row(label, text, bold=median)


def _runner_row(provenance: Provenance) -> Row:
    text = provenance.runner
    if provenance.tool_version:
        text += f" ({provenance.tool_version})"
    if provenance.cpu_peak_percent:
        text += ", " + _("CPU peak {percent} %").format(
            percent=number(provenance.cpu_peak_percent, 0)
        )
    if provenance.probe_limited:
        text += " — " + _("probe-limited (its CPU, not the link, set the rate)")
    return Row(_("runner"), text, style="red" if provenance.probe_limited else "")


def _published_row(published: _Published) -> Row:
    receipt = published.receipt
    if receipt is not None:
        if receipt.status == "stored":
            return Row(_("published"), _("stored by the collector"), style="green")
        return Row(_("published"), _("rejected by the collector"), style="red")
    if published.failure is not None:
        return Row(_("published"), _("not published (see below)"), style="red")
    return Row(_("published"), _("sent (no receipt asked)"))


def _evidence_label(key: str) -> str:
    return _(IPV6_EVIDENCE[key]) if key in IPV6_EVIDENCE else key


def _evidence_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return f"{number(value)} ms" if key.endswith("_ms") else number(value)
    text = str(value)
    return _(IPV6_EVIDENCE_WORDS[text]) if text in IPV6_EVIDENCE_WORDS else text


def _kind_rows(measured: Measurements) -> list[Row]:
    """The blocks of kinds added as plugins: each declared quantity in its unit."""
    quantities = declared_quantities()
    rows = []
    for kind, block in measured.kinds.items():
        for name, value in block.values.items():
            quantity = quantities.get(name)
            label = _(quantity.title) if quantity is not None else name.replace("_", " ")
            unit = quantity.unit if quantity is not None else ""
            shown = f"{significant(value) if abs(value) < 1 else number(value, 0)} {unit}".strip()
            rows.append(Row(label, shown, bold=shown))
        if not block.values:
            rows.append(Row(kind.replace("_", " "), _("not measured (see errors)"), style="red"))
    return rows


def rows(result: Result, published: _Published | None) -> list[Row]:
    """Every row of the technician's table, in the order they read it."""
    shown: list[Row] = []
    if result.location:
        where = _("{village} (commune {commune}, province {province})").format(
            village=result.location.village,
            commune=result.location.commune_code,
            province=result.location.province_code,
        )
        shown.append(Row(_("location"), where))
    else:
        shown.append(Row(_("location"), _("not enrolled (no config)"), style="yellow"))
    link = result.link
    shown.append(
        Row(_("link"), f"{link.interface} · {link.access} · {link.technology} · {link.operator}")
    )
    shown.append(Row(_("target"), f"{result.target.id} ({result.target.address})"))
    measured = result.measurements
    if measured.download:
        shown.append(_speed_row(_("download"), measured.download))
    if measured.upload:
        shown.append(_speed_row(_("upload"), measured.upload))
    if measured.latency and measured.latency.idle:
        shown.append(_latency_row(_("latency idle"), measured.latency.idle))
    if measured.latency and measured.latency.loaded:
        shown.append(_latency_row(_("under load"), measured.latency.loaded))
    if measured.ipv6:
        evidence = ", ".join(
            _evidence_label(key) + " " + _evidence_value(key, value)
            for key, value in measured.ipv6.evidence.items()
        )
        status = _(IPV6_STATUSES[measured.ipv6.status])
        shown.append(Row("IPv6", f"{status} ({evidence})", bold=status))
    shown += _kind_rows(measured)
    shown += [
        Row(line.heading, line.text, style=TONE_STYLES[line.tone]) for line in sample_lines(result)
    ]
    shown.append(_runner_row(result.provenance))
    shown.append(Row(_("data used"), f"{number(result.provenance.bytes_used / 1e6)} MB"))
    for error in result.errors:
        text = f"{error.stage}: {error.code} — {error.message}"
        if error.code in ERROR_HINTS:
            text += "\n→ " + _(ERROR_HINTS[error.code])
        shown.append(Row(_("error"), text, style="red"))
    if published is not None:
        shown.append(_published_row(published))
    return shown


def show(console: Console, result: Result, published: _Published | None) -> None:
    outcome, text = headline_text(result)
    console.print(Text(fit(text, console.width), style=HEADLINE_STYLES[outcome]))
    title = _("qos-agent check — probe {probe}").format(probe=result.probe_id)
    console.print(table(title, rows(result, published), console))


def simple_lines(result: Result, published: _Published | None) -> list[str]:
    """A few plain lines, no colour: the headline, the rates, the errors."""
    lines = [headline_text(result)[1]]
    measured = result.measurements
    for label, speed in ((_("download"), measured.download), (_("upload"), measured.upload)):
        if speed is not None:
            lines.append(f"{label}: {mbps_text(speed.mbps)}")
    if measured.latency and measured.latency.idle:
        label = _("latency idle")
        lines.append(f"{label}: {number(measured.latency.idle.median_ms)} ms")
    if measured.ipv6:
        lines.append("IPv6: " + _(IPV6_STATUSES[measured.ipv6.status]))
    for error in result.errors:
        label = _("error")
        lines.append(f"{label}: {error.stage}: {error.code} — {error.message}")
        if error.code in ERROR_HINTS:
            lines.append("  → " + _(ERROR_HINTS[error.code]))
    if published is not None:
        row = _published_row(published)
        lines.append(f"{row.label}: {row.text}")
    return lines
