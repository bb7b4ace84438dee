"""`qos-target serve --listen HOST:PORT`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiohttp import web

from contract.addresses import parse_host_port
from contract.errors import QosfleetError
from target.server import build_app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qos-target", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the measurement endpoints")
    serve.add_argument(
        "--listen",
        default="0.0.0.0:8080",  # a measurement server is meant to be reached
        help="HOST:PORT to listen on ([::]:PORT for IPv6), default %(default)s",
    )
    args = parser.parse_args(argv)
    try:
        host, port = parse_host_port(args.listen, option="--listen")
    except QosfleetError as exc:
        print(f"qos-target: {exc}", file=sys.stderr)
        return 2
    print(f"qos-target serving on http://{args.listen} (/download /upload /echo /health)")
    try:
        web.run_app(build_app(), host=host, port=port, print=None, access_log=None)
    except OSError as exc:
        print(f"qos-target: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
