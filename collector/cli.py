"""`qos-collector`: serve (ingest), evaluate (offline verdicts for campaign files) and probes
(list, approve and revoke enrollments)."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import logging
import math
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiomqtt
import msgspec
from prometheus_client import CollectorRegistry

from collector.certificates import CertificateWatch, broker_sources
from collector.registry import (
    Approval,
    Pin,
    ProbeRecord,
    ProbeRegistry,
    approval_topic,
    encode_approval,
    key_fingerprint,
    pin_of,
)
from collector.state import DATABASE_NAME
from contract.addresses import parse_host_port, parse_url
from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import ConfigError, QosfleetError, ServiceError, WireError
from contract.fleet import decode_meta
from contract.i18n import N_, _, figure, ngettext
from contract.mqtt import BrokerConfig, broker_endpoint, mqtt_client
from contract.result import Location

DEFAULT_STATE_DIR = "/var/lib/qos-collector"
# How long the broker may take to send a retained decision back.
APPROVAL_TIMEOUT_S = 10.0


def _add_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        default="mqtt://127.0.0.1:1883",
        help=_("the MQTT broker's URL; default %(default)s"),
    )
    parser.add_argument("--broker-username", help=_("the account on the broker"))
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--broker-password-file",
        help=_(
            "file whose first line is the broker password (e.g. a compose secret); "
            "keeps it out of the process list"
        ),
    )
    password.add_argument("--broker-password", help=_("the broker password itself (visible in ps)"))
    parser.add_argument(
        "--broker-ca", help=_("CA file that signed the broker's certificate (mqtts)")
    )


def _broker_config(args: argparse.Namespace) -> BrokerConfig:
    broker = BrokerConfig(
        url=args.broker,
        username=args.broker_username,
        password=_broker_password(args.broker_password, args.broker_password_file),
        ca_file=args.broker_ca,
    )
    broker_endpoint(broker.url, option="--broker")
    return broker


def _bounded(low: float, high: float, *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or 0 where 0 means off)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                _("{text!r} is not a number").format(text=text)
            ) from None
        if (zero and value == 0) or (math.isfinite(value) and low <= value <= high):
            return value
        allowed = (
            _("{text!r} is out of range (allowed: {low} to {high}, or 0 for off)")
            if zero
            else _("{text!r} is out of range (allowed: {low} to {high})")
        )
        raise argparse.ArgumentTypeError(
            allowed.format(text=text, low=figure(low), high=figure(high))
        )

    return parse


def _serve_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qos-collector serve",
        description=_(
            "receive the probes' results from the broker, check them and store them; judge "
            "each area against its QCVN profile"
        ),
    )
    _add_broker_options(parser)
    parser.add_argument(
        "--store",
        default="http://127.0.0.1:8428",
        help=_("VictoriaMetrics URL; default %(default)s"),
    )
    parser.add_argument(
        "--store-metrics",
        action="append",
        default=[],
        metavar="URL",
        help=_(
            "/metrics of a store process that holds acknowledged rows in memory, to see it "
            "restart (repeat for each vminsert and vmstorage of a cluster); default STORE/metrics"
        ),
    )
    parser.add_argument(
        "--group",
        default="collectors",
        help=_(
            "the shared subscription's group (collectors sharing the load); default %(default)s"
        ),
    )
    parser.add_argument(
        "--metrics-listen",
        default="127.0.0.1:9108",
        help=_("HOST:PORT of the collector's own /metrics; default %(default)s"),
    )
    parser.add_argument(
        "--api-listen",
        help=_("serve the export API on PORT (on 127.0.0.1) or HOST:PORT; default off"),
    )
    parser.add_argument(
        "--api-token-file",
        help=_(
            "bearer tokens that may read raw results from the export API, one a line "
            "(without it only aggregates are served)"
        ),
    )
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=_("journal and probe registry, one per process; default %(default)s"),
    )
    parser.add_argument(
        "--signatures",
        choices=["required", "optional"],
        default="required",
        help=_("refuse unsigned results (required) or store them (optional); default %(default)s"),
    )
    parser.add_argument(
        "--enrollment",
        choices=["required", "optional"],
        default="required",
        help=_("refuse results of probes without retained meta; default %(default)s"),
    )
    parser.add_argument(
        "--max-age-days",
        type=_bounded(0.001, 3650.0),
        default=30.0,
        help=_(
            "refuse results older than this (keep below the store's retention); default {default}"
        ).format(default=figure(30.0)),
    )
    parser.add_argument(
        "--fleet-interval",
        type=_bounded(1.0, 86_400.0),
        default=60.0,
        help=_(
            "seconds between writes of qos_probe_online for the whole fleet; default {default}"
        ).format(default=figure(60.0)),
    )
    parser.add_argument(
        "--verdict-interval",
        type=_bounded(1.0, 86_400.0, zero=True),
        default=60.0,
        help=_("seconds between per-area verdict refreshes (0: off); default {default}").format(
            default=figure(60.0)
        ),
    )
    parser.add_argument("--profiles", help=_("QCVN profiles TOML (default: the bundled one)"))
    parser.add_argument(
        "--certificate",
        action="append",
        default=[],
        metavar="FILE",
        help=_(
            "another PEM certificate whose expiry to export (repeat); --broker-ca and the "
            "broker's own certificate (mqtts) are watched without it"
        ),
    )
    parser.add_argument(
        "--certificate-interval",
        type=_bounded(1.0, 86_400.0),
        default=3600.0,
        help=_("seconds between reads of the watched certificates; default {default}").format(
            default=figure(3600.0)
        ),
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help=_("least severity logged (the log stays in English: docs/operate-central.md)"),
    )
    add_language_option(parser)
    return parser


def _broker_password(given: str | None, path: str | None) -> str | None:
    """The password from --broker-password, or the first line of --broker-password-file."""
    if path is None:
        return given
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else _("it is not UTF-8 text")
        raise ConfigError(
            "--broker-password-file",
            _("cannot read {path}: {reason}").format(path=path, reason=reason),
            _("give a file this user can read, holding the password on its first line"),
        ) from exc
    if not lines or not lines[0]:
        raise ConfigError(
            "--broker-password-file",
            _("{path} is empty or its first line is").format(path=path),
            _("write the collector's broker password on the file's first line"),
        )
    return lines[0]


def _api_listen(text: str) -> tuple[str, int]:
    """PORT (loopback: a reverse proxy in front adds TLS) or HOST:PORT, as given."""
    if text.isascii() and text.isdigit():
        text = f"127.0.0.1:{text}"
    return parse_host_port(text, option="--api-listen")


def run_serve(argv: Sequence[str]) -> int:
    # The engines (the verdicts' scipy) load only for the commands that run them: `probes`
    # answers at once.
    from collector.ingest import IngestPolicy  # noqa: PLC0415
    from collector.service import serve  # noqa: PLC0415
    from collector.settings import CollectorSettings  # noqa: PLC0415

    args = _serve_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        parse_url(args.store, option="--store", schemes=("http", "https"))
        metrics_host, metrics_port = parse_host_port(args.metrics_listen, option="--metrics-listen")
        api_host, api_port = _api_listen(args.api_listen) if args.api_listen else (None, 0)
        if args.api_token_file and not args.api_listen:
            raise ConfigError("--api-token-file", _("needs --api-listen (the API is off)"))
        for url in args.store_metrics:
            parse_url(url, option="--store-metrics", schemes=("http", "https"))
        settings = CollectorSettings(
            broker=_broker_config(args),
            store_url=args.store,
            store_metrics_urls=tuple(args.store_metrics),
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
        registry = CollectorRegistry()
        certificates = CertificateWatch(
            broker_sources(settings.broker, args.certificate),
            interval_s=args.certificate_interval,
            registry=registry,
        )
        asyncio.run(certificates.alongside(serve(settings, registry)))
    except QosfleetError as exc:
        print(f"qos-collector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _probes_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="qos-collector probes",
        description=_("list probes, approve a changed enrollment, revoke a probe"),
    )
    add_language_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help=_("each probe's pinned key and place, and any change waiting for approval")
    )
    listing.add_argument(
        "--state-dir",
        action="append",
        help=_(
            "a collector's --state-dir (repeat for each instance on this host); default {path}"
        ).format(path=DEFAULT_STATE_DIR),
    )
    listing.add_argument(
        "--json", action="store_true", help=_("one JSON object per probe and line")
    )
    approve = commands.add_parser(
        "approve",
        help=_("pin a probe's key and place for every collector (retained on the broker)"),
    )
    approve.add_argument("probe_id", help=_("the probe's id, as `probes list` shows it"))
    which = approve.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--key",
        metavar="FINGERPRINT",
        help=_("the key of the enrollment waiting for approval, as `probes list` shows it"),
    )
    which.add_argument(
        "--meta",
        metavar="FILE",
        help=_(
            "the enrollment printed by `qos-agent enroll --json`: approve it before the probe "
            "first connects"
        ),
    )
    approve.add_argument(
        "--pinned",
        action="store_true",
        help=_("with --key: approve the pinned enrollment again, refusing the change"),
    )
    approve.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=_("the collector's --state-dir; default %(default)s"),
    )
    approve.add_argument(
        "--note", default="", help=_("who decides and why, kept with the decision")
    )
    _add_broker_options(approve)
    revoke = commands.add_parser(
        "revoke",
        help=_("refuse every result of a probe on every collector (retained on the broker)"),
    )
    revoke.add_argument("probe_id", help=_("the probe's id, as `probes list` shows it"))
    revoke.add_argument("--note", default="", help=_("who decides and why, kept with the decision"))
    _add_broker_options(revoke)
    return parser


def run_probes(argv: Sequence[str]) -> int:
    args = _probes_parser().parse_args(argv)
    try:
        if args.command == "list":
            for state_dir in args.state_dir or [DEFAULT_STATE_DIR]:
                _list_probes(Path(state_dir), as_json=args.json)
            return 0
        if args.command == "approve":
            pin = _pin_to_approve(args)
            approval = Approval(
                probe_id=args.probe_id,
                decision="approved",
                at=datetime.now(UTC),
                pin=pin,
                note=args.note,
            )
        else:
            approval = Approval(
                probe_id=args.probe_id, decision="revoked", at=datetime.now(UTC), note=args.note
            )
        asyncio.run(_publish_approval(_broker_config(args), approval))
    except QosfleetError as exc:
        print(f"qos-collector probes: {exc}", file=sys.stderr)
        return 2
    if approval.pin is None:
        print(
            _("revoked {probe}: every collector refuses its results from now on").format(
                probe=args.probe_id
            )
        )
    else:
        print(
            _(
                "approved {probe}: key {key} in {place}; every collector applies it from the broker"
            ).format(
                probe=args.probe_id,
                key=key_fingerprint(approval.pin.public_key),
                place=_place(approval.pin.location),
            )
        )
    return 0


# A probe's standing (collector.registry.Standing, or never pinned), as `probes list` says it.
STANDINGS: Final[dict[str, str]] = {
    "trusted": N_("trusted"),
    "disputed": N_("disputed"),
    "revoked": N_("revoked"),
    "unpinned": N_("unpinned"),
    "pending": N_("pending"),
}


def _list_probes(state_dir: Path, *, as_json: bool) -> None:
    records = _registry(state_dir).records()
    if as_json:
        for record in records:
            print(msgspec.json.encode(_record_document(record)).decode())
        return
    print(
        ngettext("{path} ({count} probe)", "{path} ({count} probes)", len(records)).format(
            path=state_dir, count=len(records)
        )
    )
    words = {standing: _(word) for standing, word in STANDINGS.items()}
    width = max(len(word) for word in words.values())
    key, decide = _("key"), _("approve or revoke")
    for record in records:
        document = _record_document(record)
        standing = words[str(document["standing"])]
        line = f"  {record.probe_id:<24} {standing:<{width}} {key} {document['key'] or '-'}"
        if record.pin is not None:
            line += f"  {_place(record.pin.location)}"
        print(line)
        if record.pending is not None:
            print(
                f"  {'':<24} {words['pending']:<{width}} {key} {document['pending_key']}  "
                f"{_place(record.pending.location)}  ({decide})"
            )


def _record_document(record: ProbeRecord) -> dict[str, object]:
    pin, pending = record.pin, record.pending
    return {
        "probe_id": record.probe_id,
        "standing": record.standing or "unpinned",
        "key": key_fingerprint(pin.public_key) if pin else None,
        "public_key": pin.public_key if pin else None,
        "location": msgspec.to_builtins(pin.location) if pin else None,
        "pending_key": key_fingerprint(pending.public_key) if pending else None,
        "pending_public_key": pending.public_key if pending else None,
        "pending_location": msgspec.to_builtins(pending.location) if pending else None,
        "last_seen": record.last_seen,
    }


def _place(location: Location) -> str:
    return _("{village} (commune {commune}, province {province}, {lat}, {lon})").format(
        village=location.village,
        commune=location.commune_code,
        province=location.province_code,
        lat=location.lat,
        lon=location.lon,
    )


def _registry(state_dir: Path) -> ProbeRegistry:
    path = state_dir / DATABASE_NAME
    if not path.exists():
        raise ConfigError(
            "--state-dir",
            _("{path} does not exist").format(path=path),
            _("give the --state-dir a collector runs with"),
        )
    try:
        # Read-only: the collector keeps writing it meanwhile.
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        return ProbeRegistry(connection)
    except sqlite3.Error as exc:
        raise ConfigError(
            "--state-dir",
            _("cannot read {path}: {reason}").format(path=path, reason=exc),
            _("run as a user who may read it"),
        ) from exc


def _pin_to_approve(args: argparse.Namespace) -> Pin:
    if args.meta is not None:
        try:
            meta = decode_meta(Path(args.meta).read_bytes())
        except OSError as exc:
            raise ConfigError(
                "--meta",
                _("cannot read {path}: {reason}").format(path=args.meta, reason=exc.strerror),
            ) from exc
        except WireError as exc:
            raise ConfigError(
                "--meta",
                _("{path} is no enrollment: {error}").format(path=args.meta, error=exc),
                _("save what `qos-agent enroll --json` prints"),
            ) from exc
        if meta.probe_id != args.probe_id:
            raise ConfigError(
                "--meta",
                _("{path} enrolls {enrolled}, not {probe}").format(
                    path=args.meta, enrolled=meta.probe_id, probe=args.probe_id
                ),
                _("give the enrollment of this probe, or the id of that one"),
            )
        return pin_of(meta)
    record = next(
        (r for r in _registry(Path(args.state_dir)).records() if r.probe_id == args.probe_id), None
    )
    if record is None:
        raise ConfigError(
            "probe_id",
            _("{probe} is not in the registry of {path}").format(
                probe=args.probe_id, path=args.state_dir
            ),
            _("check the id with `qos-collector probes list`, or approve with --meta"),
        )
    if args.pinned:
        pin = record.pin
    else:
        pin = (
            None
            if record.pending is None
            else Pin(public_key=record.pending.public_key, location=record.pending.location)
        )
    if pin is None:
        what = (
            _("{probe} has no pinned enrollment")
            if args.pinned
            else _("{probe} has no enrollment change waiting")
        )
        raise ConfigError(
            "--key", what.format(probe=args.probe_id), _("see `qos-collector probes list`")
        )
    if args.key.lower() not in {key_fingerprint(pin.public_key), pin.public_key.lower()}:
        raise ConfigError(
            "--key",
            _("{given} is not the key {key} of that enrollment").format(
                given=args.key, key=key_fingerprint(pin.public_key)
            ),
            _("copy the key from `qos-collector probes list` after checking it with the site"),
        )
    return pin


async def _publish_approval(broker: BrokerConfig, approval: Approval) -> None:
    """Retain the decision on the broker, and read it back: a refused publish is silent."""
    topic, payload = approval_topic(approval.probe_id), encode_approval(approval)
    try:
        async with mqtt_client(broker, identifier=f"qos-collector-probes-{os.getpid()}") as client:
            await client.subscribe(topic, qos=1)
            await client.publish(topic, payload, qos=1, retain=True)
            async with asyncio.timeout(APPROVAL_TIMEOUT_S):
                async for message in client.messages:
                    if message.payload == payload:
                        return
    except aiomqtt.MqttError as exc:
        raise ServiceError(
            _("broker {url}: {error}").format(url=broker.url, error=exc),
            _("check --broker and the operator account's password"),
        ) from exc
    except TimeoutError:
        pass
    raise ServiceError(
        _("the broker did not keep the decision on {topic}").format(topic=topic),
        _("use the operator's broker account (--broker-username), which the ACL lets write it"),
    )


def run_evaluate(argv: Sequence[str]) -> int:
    from collector.evaluate import run_evaluate as evaluate  # noqa: PLC0415 - see run_serve

    return evaluate(argv)


def run_report(argv: Sequence[str]) -> int:
    from collector.report.command import run_report as report  # noqa: PLC0415 - see run_serve

    return report(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = choose_language("qos-collector", sys.argv[1:] if argv is None else argv)
    commands = {
        "serve": run_serve,
        "evaluate": run_evaluate,
        "probes": run_probes,
        "report": run_report,
    }
    if not args or args[0] not in commands:
        said = _("usage: qos-collector {commands} [options]  (--help after a command)").format(
            commands="{" + ",".join(commands) + "}"
        )
        close = difflib.get_close_matches(args[0], commands, n=1) if args else []
        if close:
            said += "\n" + _("did you mean {names}? ").format(names=close[0]).strip()
        print(said, file=sys.stderr)
        return 2
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
