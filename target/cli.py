"""`qos-target serve [--listen HOST:PORT ...] [--iperf3-port PORT]`."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from contract.addresses import parse_host_port
from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import QosfleetError
from contract.i18n import _
from target.iperf3 import Iperf3Server
from target.server import build_app


def main(argv: Sequence[str] | None = None) -> int:
    arguments = choose_language("qos-target", sys.argv[1:] if argv is None else argv)
    parser = Parser(
        prog="qos-target",
        description=_("the measurement target the probes download from and upload to"),
    )
    add_language_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help=_("serve the measurement endpoints"),
        description=_("serve the measurement endpoints (/download /upload /echo /health)"),
    )
    serve.add_argument(
        "--listen",
        action="append",
        help=_(
            "HOST:PORT to listen on ([::]:PORT for IPv6); repeat it to serve IPv4 and IPv6 "
            "(default 0.0.0.0:8080)"
        ),
    )
    serve.add_argument(
        "--iperf3-port",
        type=int,
        metavar="PORT",
        help=_(
            "also run `iperf3 -s` on PORT (5201 is iperf3's own), restarted if it dies; "
            "iperf3 serves one test at a time (default: off)"
        ),
    )
    add_language_option(serve)
    args = parser.parse_args(arguments)
    # A measurement server is meant to be reached: all IPv4 addresses by default.
    listens = args.listen or ["0.0.0.0:8080"]
    try:
        addresses = [parse_host_port(text, option="--listen") for text in listens]
        iperf3 = None
        if args.iperf3_port is not None:
            host = addresses[0][0]
            bind = None if len(addresses) > 1 or _wildcard(host) else host
            iperf3 = Iperf3Server(args.iperf3_port, bind=bind)
    except QosfleetError as exc:
        print(f"qos-target: {exc}", file=sys.stderr)
        return 2
    try:
        sockets = [_listening(host, port) for host, port in addresses]
    except OSError as exc:
        refused = QosfleetError(
            _("cannot listen on {addresses}: {reason}").format(
                addresses=" ".join(listens), reason=exc.strerror
            ),
            _("choose a free port with --listen"),
        )
        print(f"qos-target: {refused}", file=sys.stderr)
        return 1
    where = " ".join(f"http://{text}" for text in listens)
    serving = (
        _("qos-target serving on {where} (/download /upload /echo /health, iperf3 on port {port})")
        if iperf3
        else _("qos-target serving on {where} (/download /upload /echo /health)")
    )
    print(serving.format(where=where, port=args.iperf3_port))
    web.run_app(build_app(iperf3=iperf3), sock=sockets, print=None, access_log=None)
    return 0


def _listening(host: str, port: int) -> socket.socket:
    """A listening socket; an IPv6 one serves IPv6 only, so [::] and 0.0.0.0 can share a port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a name: iperf3 binds to what it resolves to


if __name__ == "__main__":
    sys.exit(main())
