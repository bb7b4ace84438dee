"""`qos-agent`: the technician's and the daemon's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from agent.commands import check
from contract.errors import QosfleetError

# Each subcommand module adds its parser and sets `run`; add new ones here.
COMMANDS = (check,)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qos-agent", description="qosfleet probe agent")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except QosfleetError as exc:
        Console(stderr=True).print(f"[bold red]qos-agent:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
