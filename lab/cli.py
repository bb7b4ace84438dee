"""`qos-lab demo`: watch the fleet work on this one machine."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from contract.commandline import Parser, add_language_option, choose_language
from contract.errors import QosfleetError
from contract.i18n import _
from lab import stack
from lab.demo import run_demo
from lab.village import run_village_lab


def main(argv: Sequence[str] | None = None) -> int:
    arguments = choose_language("qos-lab", sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="qos-lab", description=_("watch the fleet work on this one machine"))
    add_language_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help=_(
            "the village lab: the whole fleet end to end on this machine (root), "
            "or the loopback variant (--loopback, no root needed)"
        ),
        description=_(
            "the village lab: the whole fleet end to end on this machine (root), "
            "or the loopback variant (--loopback, no root needed)"
        ),
    )
    demo.add_argument(
        "--rounds", type=int, default=6, help=_("tests per link (default %(default)s)")
    )
    demo.add_argument("--workdir", type=Path, help=_("keep data, logs and dashboard PNGs here"))
    demo.add_argument("--keep", action="store_true", help=_("leave everything up until Ctrl-C"))
    demo.add_argument(
        "--loopback",
        action="store_true",
        help=_("no namespaces: agents and target on loopback (what runs without root)"),
    )
    add_language_option(demo)
    stack.add_parser(commands)
    args = parser.parse_args(arguments)
    try:
        if args.command == "stack":
            return int(args.run(args))
        if args.loopback or os.geteuid() != 0:
            if not args.loopback:
                said = _(
                    "the village lab builds network namespaces and shapes links, which needs "
                    "root (run `sudo bash scripts/demo`). Running the loopback variant: real "
                    "services, unshaped links."
                )
                print(f"qos-lab: {said}", file=sys.stderr)
            return run_demo(
                workdir=args.workdir, rounds=args.rounds, duration_s=2.0, keep=args.keep
            )
        # The PNGs and logs outlive the lab: in --workdir, or in ./out/village-lab when the lab
        # is temporary.
        kept = (args.workdir or Path("out/village-lab")).resolve()
        if args.workdir:
            kept.mkdir(parents=True, exist_ok=True)
            return run_village_lab(
                workdir=kept,
                rounds=args.rounds,
                keep=args.keep,
                pictures_dir=kept / "dashboards",
                logs_dir=kept,
            )
        with tempfile.TemporaryDirectory(prefix="qosfleet-lab-") as workdir:
            return run_village_lab(
                workdir=Path(workdir),
                rounds=args.rounds,
                keep=args.keep,
                pictures_dir=kept / "dashboards",
                logs_dir=kept / "logs",
            )
    except QosfleetError as exc:
        print(f"qos-lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        said = _("interrupted; everything started was stopped and removed")
        print(f"qos-lab: {said}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
