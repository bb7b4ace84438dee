"""When tests run: random gaps per link and kind, and never two tests on one link at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from agent.budget import TestKind
from agent.config import ScheduleConfig

KINDS: tuple[TestKind, ...] = ("speed", "light")


class Job(NamedTuple):
    interface: str
    kind: TestKind


def next_gap(rng: random.Random, *, mean_s: float, floor_s: float) -> float:
    """The floor plus an exponential draw, so that gaps average `mean_s` and none is shorter."""
    spread = mean_s - floor_s
    return floor_s + (rng.expovariate(1.0 / spread) if spread > 0 else 0.0)


class Scheduler:
    """One loop per link and kind; a link's lock makes its tests take turns.

    `run_test` must not raise: a test's failure is the test's business (a result with errors, a
    counted skip), never the schedule's.
    """

    def __init__(
        self,
        interfaces: Sequence[str],
        schedule: ScheduleConfig,
        run_test: Callable[[Job], Awaitable[None]],
        *,
        kinds: Sequence[TestKind] = KINDS,
        rng: random.Random | None = None,
    ) -> None:
        self.interfaces = tuple(interfaces)
        self.kinds = tuple(kinds)
        self.schedule = schedule
        self.run_test = run_test
        self.rng = rng or random.Random()  # noqa: S311 - spreading tests in time, not secrecy
        self.locks = {interface: asyncio.Lock() for interface in self.interfaces}

    def gap(self, kind: TestKind) -> float:
        if kind == "speed":
            mean_s, floor_s = self.schedule.speed_mean_s, self.schedule.speed_floor_s
        else:
            mean_s, floor_s = self.schedule.light_mean_s, self.schedule.light_floor_s
        return next_gap(self.rng, mean_s=mean_s, floor_s=floor_s)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for interface in self.interfaces:
                for kind in self.kinds:
                    tasks.create_task(
                        self._loop(Job(interface, kind)), name=f"schedule-{interface}-{kind}"
                    )

    async def _loop(self, job: Job) -> None:
        # The first test also waits a full gap: a village of probes powered on together after an
        # outage does not test in step, and a restarting probe keeps its floor.
        while True:
            await asyncio.sleep(self.gap(job.kind))
            async with self.locks[job.interface]:
                await self.run_test(job)
