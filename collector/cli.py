"""`qos-collector`: serve (ingest) and evaluate (offline verdicts for campaign files)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from collector.evaluate import run_evaluate
from collector.ingest import IngestPolicy
from collector.service import CollectorSettings, serve
from contract.addresses import parse_host_port, parse_url
from contract.errors import ConfigError, QosfleetError
from contract.mqtt import BrokerConfig, broker_endpoint


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qos-collector serve", description="ingest results")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="default %(default)s")
    parser.add_argument("--broker-username")
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--broker-password-file",
        help="file whose first line is the broker password (e.g. a compose secret); "
        "keeps it out of the process list",
    )
    password.add_argument("--broker-password", help="the broker password itself (visible in ps)")
    parser.add_argument("--broker-ca", help="CA file that signed the broker's certificate (mqtts)")
    parser.add_argument(
        "--store", default="http://127.0.0.1:8428", help="VictoriaMetrics URL, default %(default)s"
    )
    parser.add_argument("--group", default="collectors", help="shared-subscription group")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9108", help="default %(default)s")
    parser.add_argument(
        "--api-listen",
        help="serve the export API on PORT (on 127.0.0.1) or HOST:PORT; default off",
    )
    parser.add_argument(
        "--api-token-file",
        help="bearer tokens that may read raw results from the export API, one a line "
        "(without it only aggregates are served)",
    )
    parser.add_argument(
        "--state-dir",
        default="/var/lib/qos-collector",
        help="journal and probe registry, one per process; default %(default)s",
    )
    parser.add_argument(
        "--signatures",
        choices=["required", "optional"],
        default="required",
        help="refuse unsigned results (required) or store them (optional); default %(default)s",
    )
    parser.add_argument(
        "--enrollment",
        choices=["required", "optional"],
        default="required",
        help="refuse results of probes without retained meta; default %(default)s",
    )
    parser.add_argument(
        "--max-age-days",
        type=float,
        default=30.0,
        help="refuse results older than this (keep below the store's retention); "
        "default %(default)s",
    )
    parser.add_argument(
        "--fleet-interval",
        type=float,
        default=60.0,
        help="seconds between writes of qos_probe_online for the whole fleet; default %(default)s",
    )
    parser.add_argument(
        "--verdict-interval",
        type=float,
        default=60.0,
        help="seconds between per-area verdict refreshes (0: off), default %(default)s",
    )
    parser.add_argument("--profiles", help="QCVN profiles TOML (default: the bundled one)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def _broker_password(given: str | None, path: str | None) -> str | None:
    """The password from --broker-password, or the first line of --broker-password-file."""
    if path is None:
        return given
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigError(
            "--broker-password-file",
            f"cannot read {path}: {reason}",
            "give a file this user can read, holding the password on its first line",
        ) from exc
    if not lines or not lines[0]:
        raise ConfigError(
            "--broker-password-file",
            f"{path} is empty or its first line is",
            "write the collector's broker password on the file's first line",
        )
    return lines[0]


def _api_listen(text: str) -> tuple[str, int]:
    """PORT (loopback: a reverse proxy in front adds TLS) or HOST:PORT, as given."""
    if text.isascii() and text.isdigit():
        text = f"127.0.0.1:{text}"
    return parse_host_port(text, option="--api-listen")


def run_serve(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        parse_url(args.store, option="--store", schemes=("http", "https"))
        metrics_host, metrics_port = parse_host_port(args.metrics_listen, option="--metrics-listen")
        api_host, api_port = _api_listen(args.api_listen) if args.api_listen else (None, 0)
        if args.api_token_file and not args.api_listen:
            raise ConfigError("--api-token-file", "needs --api-listen (the API is off)")
        broker = BrokerConfig(
            url=args.broker,
            username=args.broker_username,
            password=_broker_password(args.broker_password, args.broker_password_file),
            ca_file=args.broker_ca,
        )
        broker_endpoint(broker.url, option="--broker")
        settings = CollectorSettings(
            broker=broker,
            store_url=args.store,
            group=args.group,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            api_host=api_host,
            api_port=api_port,
            api_token_file=args.api_token_file,
            state_dir=args.state_dir,
            verdict_interval_s=args.verdict_interval,
            fleet_interval_s=args.fleet_interval,
            profiles_path=args.profiles,
            policy=IngestPolicy(
                signatures=args.signatures,
                enrollment=args.enrollment,
                max_age_s=args.max_age_days * 86_400,
            ),
        )
        asyncio.run(serve(settings))
    except QosfleetError as exc:
        print(f"qos-collector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve": run_serve, "evaluate": run_evaluate}
    if not args or args[0] not in commands:
        print(
            "usage: qos-collector {serve,evaluate} [options]  (--help after a command)",
            file=sys.stderr,
        )
        return 2
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
