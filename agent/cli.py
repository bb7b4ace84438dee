"""`qos-agent`: the technician's and the daemon's command line."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import QosfleetError
from contract.i18n import _

# The exit status of a refusal (a bad config, key, CA file or state directory): restarting cannot
# fix it, a person must, so deploy/systemd/qos-agent.service does not restart on it.
REFUSED = 2
# Subcommand -> its module (with add_parser() and run()); add new ones here. Only the module of
# the chosen subcommand is imported, so the daemon never loads the technician's display or the
# measurement engine's HTTP stack before it needs them.
COMMANDS = {
    "check": "agent.commands.check",
    "enroll": "agent.commands.enroll",
    "status": "agent.commands.status",
    "history": "agent.commands.history",
    "run": "agent.commands.run",
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = choose_language("qos-agent", sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="qos-agent", description=_("qosfleet probe agent"))
    add_language_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = next((word for word in arguments if not word.startswith("-")), None)
    for name in [chosen] if chosen in COMMANDS else COMMANDS:
        importlib.import_module(COMMANDS[name]).add_parser(commands)
    args = parser.parse_args(arguments)
    try:
        code: int = args.run(args)
    except QosfleetError as exc:
        from rich.console import Console  # noqa: PLC0415 - the error path alone needs colour
        from rich.markup import escape  # noqa: PLC0415

        # Unwrapped: under systemd this is one journal entry, and a path stays whole.
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]qos-agent:[/] {escape(str(exc))}", highlight=False
        )
        return REFUSED
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
