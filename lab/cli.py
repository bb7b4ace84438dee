"""`qos-lab demo`: watch the fleet work on this one machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.errors import QosfleetError
from lab.demo import run_demo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qos-lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole fleet end to end on this machine")
    demo.add_argument("--rounds", type=int, default=2, help="tests per village (default 2)")
    demo.add_argument("--duration", type=float, default=2.0, help="seconds per test (default 2)")
    demo.add_argument("--workdir", type=Path, help="keep services' data and logs here")
    demo.add_argument("--keep", action="store_true", help="leave the stack up until Ctrl-C")
    args = parser.parse_args(argv)
    try:
        return run_demo(
            workdir=args.workdir, rounds=args.rounds, duration_s=args.duration, keep=args.keep
        )
    except QosfleetError as exc:
        print(f"qos-lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qos-lab: interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
