"""The daemon with an instant synthetic measurement: many results a second, for crash tests.

python tests/integration/agent/fast_agent.py AGENT.toml
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.commands.run import serve
from agent.config import load_config
from agent.daemon import Daemon
from agent.keys import load_key
from tests.unit.agent.builders import SyntheticMeasure


async def no_modem(args: Sequence[str]) -> str | None:
    return None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(Path(sys.argv[1]))
    daemon = Daemon(config, load_key(config.key_path), measure=SyntheticMeasure(), mmcli=no_modem)
    asyncio.run(serve(daemon))


if __name__ == "__main__":
    main()
