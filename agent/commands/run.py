"""`qos-agent run`: the daemon (systemd runs it; deploy/systemd/qos-agent.service)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config
from agent.daemon import Daemon
from agent.keys import load_key
from agent.measure import ChildMeasure
from contract.i18n import _

log = logging.getLogger("qosfleet.agent")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run_parser = commands.add_parser(
        "run", help=_("the daemon: measure on schedule, spool, publish (what systemd runs)")
    )
    run_parser.set_defaults(run=run)
    run_parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        help=_("agent TOML (default {path})").format(path=DEFAULT_PATH),
    )
    run_parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )


def run(args: argparse.Namespace) -> int:
    # journald stamps the time; a terminal user can read the order.
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    daemon = Daemon(config, load_key(config.key_path), measure=ChildMeasure(args.config))
    asyncio.run(serve(daemon))
    return 0


async def serve(daemon: Daemon) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly (the status says "offline" at once)."""
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    try:
        await daemon.run()
    except asyncio.CancelledError:
        log.info(_("stopped"))
