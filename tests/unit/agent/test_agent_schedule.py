"""The schedule: exponential gaps above a floor, one test per link at a time, light ones oftener."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter

import pytest

from agent.config import ScheduleConfig
from agent.schedule import Job, Scheduler, next_gap

FAST = ScheduleConfig(speed_mean_s=0.04, speed_floor_s=0.01, light_mean_s=0.01, light_floor_s=0.002)


def test_gaps_average_the_mean_and_never_undercut_the_floor() -> None:
    rng = random.Random(6)
    gaps = [next_gap(rng, mean_s=6 * 3600, floor_s=1800) for _ in range(20_000)]
    assert min(gaps) >= 1800
    assert statistics.fmean(gaps) == pytest.approx(6 * 3600, rel=0.03)
    # Exponential above the floor: the spread equals the mean of the part above the floor.
    assert statistics.stdev(gaps) == pytest.approx(6 * 3600 - 1800, rel=0.05)


def test_a_floor_equal_to_the_mean_gives_a_fixed_gap() -> None:
    assert next_gap(random.Random(1), mean_s=60, floor_s=60) == 60


def test_defaults_run_light_tests_more_often_than_speed_tests() -> None:
    defaults = ScheduleConfig()
    assert (defaults.speed_mean_s, defaults.speed_floor_s) == (6 * 3600, 30 * 60)
    assert defaults.light_mean_s < defaults.speed_mean_s


async def _run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_tests_on_one_link_take_turns_while_links_run_side_by_side() -> None:
    active: Counter[str] = Counter()
    most_on_a_link = 0
    most_at_once = 0
    done: Counter[Job] = Counter()

    async def run_test(job: Job) -> None:
        nonlocal most_on_a_link, most_at_once
        active[job.interface] += 1
        most_on_a_link = max(most_on_a_link, active[job.interface])
        most_at_once = max(most_at_once, sum(active.values()))
        await asyncio.sleep(0.005)
        active[job.interface] -= 1
        done[job] += 1

    scheduler = Scheduler(["wwan0", "eth0"], FAST, run_test, rng=random.Random(2))
    await _run_for(scheduler, 0.8)
    assert most_on_a_link == 1
    assert most_at_once == 2
    for interface in ("wwan0", "eth0"):
        assert done[Job(interface, "light")] > done[Job(interface, "speed")] > 3


async def test_only_the_kinds_the_engine_offers_are_scheduled() -> None:
    seen: set[Job] = set()

    async def run_test(job: Job) -> None:
        seen.add(job)
        await asyncio.sleep(0)

    scheduler = Scheduler(["eth0"], FAST, run_test, kinds=("speed",), rng=random.Random(3))
    await _run_for(scheduler, 0.3)
    assert seen == {Job("eth0", "speed")}
