"""`qos-lab stack`: the central stack of deploy/compose.yaml as local processes, until Ctrl-C
(DESCRIPTION says what runs, in the reader's language)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import QosfleetError, ServiceError
from contract.i18n import N_, _
from lab.alerting import RULE_FILES, VMAGENT_CONFIG, alertmanager, vmalert
from lab.services import (
    Endpoint,
    Service,
    free_port,
    http_ok,
    mosquitto,
    qos_collector,
    require_binary,
    victoria_metrics,
)

# The compose stack scrapes every 15 s, and Grafana's datasource assumes it (timeInterval).
SCRAPE_INTERVAL_S = 15.0
# The verdicts are refreshed every minute: evaluating the rules more often finds nothing new.
EVALUATION_INTERVAL = "1m"
LAB_POLICY = ("--signatures", "optional", "--enrollment", "optional")
STATE_FILE = "stack.json"
# Bearer tokens of the export API's raw results (one, made at start).
API_TOKENS_FILE = "api-tokens"
POLL_S = 0.5

DESCRIPTION: Final = N_(
    """`qos-lab stack`: the central stack of deploy/compose.yaml as local processes, until Ctrl-C.

mosquitto, VictoriaMetrics, vmagent (scraping every service that has metrics, as
deploy/vmagent.yml), qos-collector, vmalert and Alertmanager run on free loopback ports with the
rule files the compose stack mounts and its Alertmanager routes (receivers that notify nobody).
Grafana is not packaged for Debian, so it is the one piece missing here:
`python -m lab.dashboard_png --store URL` draws the same panels.

The broker is the lab's (anonymous, loopback only) and the collector stores unsigned results of
probes it has no enrollment for unless `--production-policy` is given, so `qos-agent check
--publish` works against it at once.
"""
)


@dataclass(frozen=True)
class StackUrls:
    """Where each service of the running stack answers."""

    broker: str
    store: str
    vmui: str
    collector_metrics: str
    collector_api: str
    vmagent: str
    vmalert: str
    alertmanager: str


@dataclass(frozen=True)
class RunningStack:
    urls: StackUrls
    services: tuple[Service, ...]
    workdir: Path

    def pids(self) -> dict[str, int]:
        return {
            service.name: service.process.pid
            for service in self.services
            if service.process is not None
        }

    def exited(self) -> list[Service]:
        """Services whose process has ended on its own."""
        return [
            service
            for service in self.services
            if service.process is None or service.process.poll() is not None
        ]


def scrape_config(
    targets: dict[str, str], scrape_interval_s: float, *, source: Path = VMAGENT_CONFIG
) -> dict[str, Any]:
    """deploy/vmagent.yml with each job's target replaced (job name -> host:port); jobs without
    one here (Grafana, not packaged for Debian) are left out."""
    import yaml  # noqa: PLC0415 - read once at start

    shipped = yaml.safe_load(source.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    unknown = sorted(targets.keys() - jobs.keys())
    if unknown:
        raise ServiceError(
            f"no scrape job {', '.join(unknown)} in {source}", f"jobs there: {', '.join(jobs)}"
        )
    return {
        "global": shipped.get("global", {}) | {"scrape_interval": f"{scrape_interval_s:g}s"},
        "scrape_configs": [
            job | {"static_configs": [{"targets": [targets[name]]}]}
            for name, job in jobs.items()
            if name in targets
        ],
    }


@contextmanager
def vmagent(
    workdir: Path,
    *,
    remote_write_url: str,
    scrape_targets: dict[str, str],
    scrape_interval_s: float = SCRAPE_INTERVAL_S,
) -> Iterator[Endpoint]:
    """vmagent scraping the jobs of deploy/vmagent.yml at `scrape_targets` (job -> host:port),
    and itself as job `vmagent`, into the store.

    Its buffer (results of scrapes the store could not take yet) lives in `workdir`.
    """
    binary = require_binary("vmagent")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    config = scrape_config({**scrape_targets, "vmagent": f"127.0.0.1:{port}"}, scrape_interval_s)
    config_path = workdir / "scrape.yml"
    # JSON is YAML: no YAML writer is needed at run time.
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    argv = [
        binary,
        f"-promscrape.config={config_path}",
        f"-remoteWrite.url={remote_write_url}",
        f"-remoteWrite.tmpDataPath={workdir / 'buffer'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-loggerLevel=WARN",
    ]
    service = Service("vmagent", argv, workdir / "vmagent.log")
    with service.running(lambda: http_ok(f"{url}/health")):
        yield Endpoint(service, url)


def _host_port(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@contextmanager
def central_stack(
    workdir: Path,
    *,
    scrape_interval_s: float = SCRAPE_INTERVAL_S,
    evaluation_interval: str = EVALUATION_INTERVAL,
    production_policy: bool = False,
) -> Iterator[RunningStack]:
    """Start every service in dependency order; stop them in reverse, also on error."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as started:
        broker = started.enter_context(mosquitto(workdir / "mosquitto"))
        store = started.enter_context(victoria_metrics(workdir / "victoria-metrics"))
        notifier = started.enter_context(alertmanager(workdir / "alertmanager"))
        api_url = f"http://127.0.0.1:{free_port()}"
        tokens = workdir / API_TOKENS_FILE
        tokens.touch(mode=0o600)
        tokens.write_text(secrets.token_urlsafe(32) + "\n", encoding="ascii")
        collector = started.enter_context(
            qos_collector(
                workdir,
                broker_url=broker.url,
                store_url=store.url,
                extra_args=(
                    *(() if production_policy else LAB_POLICY),
                    "--api-listen",
                    _host_port(api_url),
                    "--api-token-file",
                    str(tokens),
                ),
            )
        )
        rules = started.enter_context(
            vmalert(
                workdir / "vmalert",
                datasource_url=store.url,
                notifier_url=notifier.url,
                rule_files=list(RULE_FILES),
                remote_write_url=store.url,
                eval_interval=evaluation_interval,
            )
        )
        scraper = started.enter_context(
            vmagent(
                workdir / "vmagent",
                remote_write_url=f"{store.url}/api/v1/write",
                scrape_targets={
                    "qos-collector": _host_port(collector.url),
                    "victoria-metrics": _host_port(store.url),
                    "vmalert": _host_port(rules.url),
                    "alertmanager": _host_port(notifier.url),
                },
                scrape_interval_s=scrape_interval_s,
            )
        )
        urls = StackUrls(
            broker=broker.url,
            store=store.url,
            vmui=f"{store.url}/vmui",
            collector_metrics=collector.url,
            collector_api=f"{api_url}/api/v1",
            vmagent=scraper.url,
            vmalert=rules.url,
            alertmanager=notifier.url,
        )
        services = (
            broker.service,
            store.service,
            notifier.service,
            collector.service,
            rules.service,
            scraper.service,
        )
        yield RunningStack(urls, services, workdir)


def run_stack(
    workdir: Path,
    *,
    stop: threading.Event,
    out: TextIO = sys.stdout,
    scrape_interval_s: float = SCRAPE_INTERVAL_S,
    evaluation_interval: str = EVALUATION_INTERVAL,
    production_policy: bool = False,
    on_ready: Callable[[RunningStack], None] | None = None,
) -> int:
    """Run the stack until `stop` is set; 0 on a requested stop, 1 when a service died."""
    with central_stack(
        workdir,
        scrape_interval_s=scrape_interval_s,
        evaluation_interval=evaluation_interval,
        production_policy=production_policy,
    ) as running:
        state = {"urls": asdict(running.urls), "pids": running.pids(), "parent": os.getpid()}
        (workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        _print_urls(running, out)
        if on_ready is not None:
            on_ready(running)
        while not stop.wait(POLL_S):
            dead = running.exited()
            if dead:
                for service in dead:
                    said = _("{service} stopped on its own: {tail}").format(
                        service=service.name, tail=service.tail()
                    )
                    print(f"qos-lab: {said}", file=sys.stderr)
                print("qos-lab: " + _("stopping the rest of the stack"), file=sys.stderr)
                return 1
        print("qos-lab: " + _("stopping the stack ..."), file=out, flush=True)
    print("qos-lab: " + _("stopped; nothing left running"), file=out, flush=True)
    return 0


def _print_urls(running: RunningStack, out: TextIO) -> None:
    urls = running.urls
    rows = (
        (_("MQTT broker"), urls.broker, "qos-agent check --publish --broker ..."),
        ("VictoriaMetrics", urls.store, _("Prometheus API; UI at /vmui")),
        ("VictoriaMetrics UI", urls.vmui, ""),
        (_("collector metrics"), urls.collector_metrics, _("scraped by vmagent")),
        (
            _("export API"),
            urls.collector_api,
            _("raw results need the bearer token in {path}").format(
                path=running.workdir / API_TOKENS_FILE
            ),
        ),
        ("vmagent", urls.vmagent, ""),
        ("vmalert", urls.vmalert, _("rules: deploy/alerts/*.rules.yml")),
        (
            "Alertmanager",
            urls.alertmanager,
            _("routes of deploy/alertmanager.yml, nobody notified"),
        ),
    )
    width = max(len(name) for name, _url, _note in rows)
    print("qos-lab: " + _("the central stack is up (loopback only)"), file=out)
    for name, url, note in rows:
        print(f"  {name:<{width}}  {url}" + (f"  ({note})" if note else ""), file=out)
    print(
        "  "
        + _("workdir: {path} (logs, data, {state})").format(path=running.workdir, state=STATE_FILE)
        + "\n  "
        + _("Grafana is not packaged here: {command}").format(
            command=f"python -m lab.dashboard_png --store {urls.store} --out DIR"
        )
        + "\n"
        + _("Ctrl-C stops everything."),
        file=out,
        flush=True,
    )


def add_parser(commands: argparse._SubParsersAction[Parser]) -> None:
    """Register `stack` on qos-lab's subcommands (it sets `run` as the handler)."""
    parser = commands.add_parser(
        "stack",
        help=_(
            "run the central stack (broker, collector, store, alerting) on loopback until Ctrl-C"
        ),
        description=_(DESCRIPTION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(parser)
    parser.set_defaults(run=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, help=_("keep services' data and logs here"))
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=SCRAPE_INTERVAL_S,
        help=_("seconds between scrapes of the collector's metrics (default %(default)g)"),
    )
    parser.add_argument(
        "--evaluation-interval",
        default=EVALUATION_INTERVAL,
        help=_("vmalert's rule evaluation interval (default %(default)s)"),
    )
    parser.add_argument(
        "--production-policy",
        action="store_true",
        help=_("the collector refuses unsigned results and probes without enrollment"),
    )
    add_language_option(parser)


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM, then stop every service and return."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if args.workdir is not None:
            return _run_checked(args.workdir, args, stop)
        with tempfile.TemporaryDirectory(prefix="qos-stack-") as temporary:
            return _run_checked(Path(temporary), args, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_checked(workdir: Path, args: argparse.Namespace, stop: threading.Event) -> int:
    try:
        return run_stack(
            workdir,
            stop=stop,
            scrape_interval_s=args.scrape_interval,
            evaluation_interval=args.evaluation_interval,
            production_policy=args.production_policy,
        )
    except ServiceError as exc:
        print(f"qos-lab: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lab.stack`, the same as `qos-lab stack` once registered there."""
    arguments = choose_language("qos-lab stack", sys.argv[1:] if argv is None else argv)
    parser = Parser(
        prog="qos-lab stack",
        description=_(DESCRIPTION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(parser)
    try:
        return run(parser.parse_args(arguments))
    except QosfleetError as exc:
        print(f"qos-lab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
