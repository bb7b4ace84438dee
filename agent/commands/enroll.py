"""`qos-agent enroll`: write the probe's config and key, and say what to register centrally."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from agent.config import DEFAULT_PATH, DEFAULT_STATE_DIR, HINT, AgentConfig, check_config
from agent.daemon import probe_meta
from agent.keys import create_key, load_key
from agent.screen import Row, table
from contract import names
from contract.enrollment import EXAMPLE_PROBE_ID, check_place, check_plans
from contract.errors import ConfigError
from contract.fleet import encode
from contract.i18n import _
from contract.typed import convert

SERVICE_USER = "qosfleet"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    enroll = commands.add_parser(
        "enroll", help=_("write this probe's config and signing key (once, at installation)")
    )
    enroll.set_defaults(run=run)
    enroll.add_argument(
        "--probe-id",
        required=True,
        help=_("vn-<province code>-<place>, e.g. {example}").format(example=EXAMPLE_PROBE_ID),
    )
    enroll.add_argument(
        "--province",
        required=True,
        help=_("two-digit province code in force since 2025-07-01, e.g. 11 (Điện Biên)"),
    )
    enroll.add_argument("--commune", required=True, help=_("five-digit commune code (NSO)"))
    enroll.add_argument("--village", required=True, help=_("village (thôn/bản) name"))
    enroll.add_argument(
        "--lat",
        type=float,
        required=True,
        help=_("decimal degrees, e.g. {example}").format(example=21.39),
    )
    enroll.add_argument(
        "--lon",
        type=float,
        required=True,
        help=_("decimal degrees, e.g. {example}").format(example=103.02),
    )
    enroll.add_argument(
        "--link",
        action="append",
        required=True,
        metavar="IF:ACCESS:TECH:OPERATOR[:VD/VU]",
        help=_(
            "a link to measure, e.g. wwan0:mobile:4g:Viettel or eth0:fixed:ftth:VNPT:300/300 "
            "(repeat for each link; a fixed line needs its plan VD/VU in Mb/s)"
        ),
    )
    enroll.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="IF:SETTING",
        help=_(
            "where a link's samples are taken, for the QCVN 81/126 sample mix: indoor, "
            "outdoor_fixed or outdoor_moving, e.g. wwan0:indoor (repeatable)"
        ),
    )
    enroll.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="ID=URL",
        help=_("a measurement target, e.g. hn1=http://198.18.0.1:8080 (repeatable)"),
    )
    enroll.add_argument("--broker", required=True, help=_("broker URL, e.g. mqtts://HOST:8883"))
    enroll.add_argument("--username", help=_("the probe's MQTT account (default: the probe id)"))
    enroll.add_argument("--password", help=_("the probe's MQTT password"))
    enroll.add_argument("--ca-file", help=_("CA certificate of the broker (private CA)"))
    enroll.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        help=_("where to write (default {path})").format(path=DEFAULT_PATH),
    )
    enroll.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=_("the daemon's state (default {path})").format(path=DEFAULT_STATE_DIR),
    )
    enroll.add_argument("--force", action="store_true", help=_("replace an existing config"))
    enroll.add_argument(
        "--new-key", action="store_true", help=_("replace the signing key (a new identity)")
    )
    enroll.add_argument(
        "--owner",
        help=_(
            "user the daemon runs as, given the key and state (default {user} when it exists "
            "and enroll runs as root)"
        ).format(user=SERVICE_USER),
    )
    enroll.add_argument(
        "--json", action="store_true", help=_("print the enrollment (meta) as JSON")
    )


def run(args: argparse.Namespace) -> int:
    warnings = check_place(
        probe_id=args.probe_id,
        province_code=args.province,
        commune_code=args.commune,
        village=args.village,
        lat=args.lat,
        lon=args.lon,
    )
    tables = config_table(args)
    config = convert(tables, AgentConfig, where="", hint=_("check the enroll options; ") + _(HINT))
    check_config(config)
    check_plans(config.links)
    for warning in warnings:
        Console(stderr=True, soft_wrap=True).print(f"[yellow]{escape(warning)}[/]")
    if args.config.exists() and not args.force:
        raise ConfigError(
            str(args.config),
            _("already exists"),
            _("pass --force to replace it (the key is kept)"),
        )
    key_path = config.key_path
    if args.new_key:
        key_path.unlink(missing_ok=True)
    key = load_key(key_path) if key_path.exists() else create_key(key_path)
    owner = _owner(args.owner)
    _write_private(args.config, render_toml(tables), owner=owner)
    if owner is not None:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(args.state_dir, owner.pw_name, owner.pw_gid)
        shutil.chown(key_path, owner.pw_name, owner.pw_gid)
    meta = probe_meta(config, key)
    if args.json:
        sys.stdout.write(encode(meta).decode() + "\n")
        return 0
    console = Console()
    where = config.location
    summary = [
        Row(_("config"), _("{path} (mode 0640)").format(path=args.config)),
        Row(_("signing key"), _("{path} (mode 0600)").format(path=key_path)),
        Row(
            _("location"),
            _("{village}, commune {commune}, province {province} ({lat}, {lon})").format(
                village=where.village,
                commune=where.commune_code,
                province=where.province_code,
                lat=where.lat,
                lon=where.lon,
            ),
        ),
    ]
    summary += [
        Row(_("link"), f"{link.interface} · {link.access} · {link.technology} · {link.operator}")
        for link in config.links
    ]
    title = _("enrolled probe {probe}").format(probe=config.probe_id)
    console.print(table(title, summary, console))
    console.print(
        "[bold]"
        + escape(_("Register centrally"))
        + "[/] "
        + escape(_("(the collector also learns it from the retained meta):"))
    )
    account, public_key = _("MQTT account"), _("public key")
    width = max(len(account), len(public_key)) + 3
    console.print(f"  {account:<{width}}{config.broker.username or config.probe_id}")
    console.print(f"  {public_key:<{width}}[bold]{meta.public_key}[/]")
    console.print(
        escape(_("Then: {enable} and {status}.")).format(
            enable="[bold]systemctl enable --now qos-agent[/]", status="[bold]qos-agent status[/]"
        )
    )
    return 0


def config_table(args: argparse.Namespace) -> dict[str, Any]:
    """The options as the TOML tables they become (only what was given: defaults stay defaults)."""
    broker: dict[str, Any] = {"url": args.broker, "username": args.username or args.probe_id}
    if args.password:
        broker["password"] = args.password
    if args.ca_file:
        broker["ca_file"] = args.ca_file
    table: dict[str, Any] = {
        "probe_id": args.probe_id,
        "state_dir": str(args.state_dir),
        "location": {
            "province_code": args.province,
            "commune_code": args.commune,
            "village": args.village,
            "lat": args.lat,
            "lon": args.lon,
        },
        "links": _with_settings(
            [_link(spec, index) for index, spec in enumerate(args.link)], args.setting
        ),
        "targets": [_target(spec, index) for index, spec in enumerate(args.target)],
        "broker": broker,
    }
    return table


def _with_settings(links: list[dict[str, Any]], specs: list[str]) -> list[dict[str, Any]]:
    """Each --setting IF:SETTING onto its link; the config's loader checks the setting's value."""
    by_interface = {link["interface"]: link for link in links}
    for spec in specs:
        interface, _colon, setting = spec.partition(":")
        if interface not in by_interface or not setting:
            raise ConfigError(
                f"--setting {spec!r}",
                _("names no --link interface") if setting else _("is not IF:SETTING"),
                _("e.g. --setting wwan0:indoor for --link wwan0:mobile:4g:Viettel"),
            )
        by_interface[interface]["setting"] = setting
    return links


def _link(spec: str, index: int) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        raise ConfigError(
            f"--link {spec!r}",
            _("is not IF:ACCESS:TECH:OPERATOR[:VD/VU]"),
            _("e.g. --link wwan0:mobile:4g:Viettel or --link eth0:fixed:ftth:VNPT:300/300"),
        )
    interface, access, technology, operator = parts[:4]
    link: dict[str, Any] = {"interface": interface, "access": access.strip().lower()}
    if len(parts) == 5:  # noqa: PLR2004 - the optional plan
        download, _slash, upload = parts[4].partition("/")
        try:
            link["plan"] = {"download_mbps": float(download), "upload_mbps": float(upload)}
        except ValueError:
            raise ConfigError(
                f"links[{index}].plan",
                _("{plan!r} is not VD/VU in Mb/s").format(plan=parts[4]),
                _("e.g. 300/300"),
            ) from None
    # The canonical names, so that "lte" and "4G", "viettel" and "Viettel" are one series.
    link["technology"] = names.technology(technology, field=f"links[{index}].technology")
    link["operator"] = names.operator(operator, field=f"links[{index}].operator")
    return link


def _target(spec: str, index: int) -> dict[str, str]:
    target_id, sep, url = spec.partition("=")
    if not sep:
        raise ConfigError(
            f"targets[{index}]",
            _("{spec!r} is not ID=URL").format(spec=spec),
            _("e.g. hn1=http://..."),
        )
    return {"id": target_id, "url": url}


def _owner(name: str | None) -> pwd.struct_passwd | None:
    """The daemon's user, when enroll runs as root and can hand the files over."""
    if os.geteuid() != 0:
        if name is not None:
            raise ConfigError("--owner", _("needs root"), _("run enroll with sudo"))
        return None
    try:
        return pwd.getpwnam(name or SERVICE_USER)
    except KeyError:
        if name is None:
            return None  # no service user on this machine: the files stay root's
        raise ConfigError(
            "--owner",
            _("no user {name!r}").format(name=name),
            _("create it, or leave --owner out"),
        ) from None


def _write_private(path: Path, text: str, *, owner: pwd.struct_passwd | None) -> None:
    """Write atomically, readable by its owner and the daemon's group only (it holds a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.fchmod(handle, 0o640)
        if owner is not None:
            os.fchown(handle, 0, owner.pw_gid)
        os.write(handle, text.encode())
        os.fsync(handle)
    finally:
        os.close(handle)
    temporary.replace(path)


def render_toml(table: dict[str, Any]) -> str:
    """The config tables as TOML: scalars, then [tables], then [[arrays of tables]]."""
    lines = ["# qos-agent configuration, written by `qos-agent enroll`. See agent.example.toml."]
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict | list)}
    lines += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    # A JSON string is a TOML basic string: the same quotes and escapes.
    return json.dumps(str(value), ensure_ascii=False)
