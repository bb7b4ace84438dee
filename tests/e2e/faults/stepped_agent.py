"""The fast synthetic daemon (fast_agent.py) with a wall clock the test can step.

python tests/e2e/faults/stepped_agent.py AGENT.toml

The file `clock-offset` beside AGENT.toml holds seconds to add to the real time (absent: 0). The
daemon (budget months, spool and status times) and the results' timestamps read this clock; the
monotonic clock, which the schedule and the receipt timeouts use, is not stepped, as on a probe
whose NTP client steps the clock. The machine's own clock is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from agent.commands.run import serve
from agent.config import AgentConfig, TargetConfig, load_config
from agent.daemon import Daemon
from agent.keys import load_key
from agent.measurements.kind import LinkOutcome
from agent.schedule import Job
from tests.integration.agent.fast_agent import no_modem
from tests.unit.agent.builders import SyntheticMeasure


class SteppedClock:
    def __init__(self, offset_path: Path) -> None:
        self.offset_path = offset_path

    def offset(self) -> timedelta:
        try:
            return timedelta(seconds=float(self.offset_path.read_text(encoding="ascii")))
        except FileNotFoundError:
            return timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset()


class SteppedMeasure(SyntheticMeasure):
    """The synthetic measurement, its timestamps read from the stepped clock.

    The offset is read once per result, so a step falls between two results, never inside one.
    """

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__()
        self.clock = clock

    async def __call__(
        self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
    ) -> LinkOutcome:
        measured = await super().__call__(config, job, target, budget_bytes)
        offset = self.clock.offset()
        return msgspec.structs.replace(
            measured,
            started_at=measured.started_at + offset,
            finished_at=measured.finished_at + offset,
        )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config_path = Path(sys.argv[1])
    config = load_config(config_path)
    clock = SteppedClock(config_path.with_name("clock-offset"))
    daemon = Daemon(
        config,
        load_key(config.key_path),
        measure=SteppedMeasure(clock),
        mmcli=no_modem,
        clock=clock,
    )
    asyncio.run(serve(daemon))


if __name__ == "__main__":
    main()
