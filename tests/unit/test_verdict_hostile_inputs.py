"""The verdict engine against hostile inputs: a store answering what it should not, campaign files
a spreadsheet or a forger writes, profiles that contradict the method. Each is refused clearly or
judged by the method's rules, never turned into a wrong verdict or a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from collector.compliance import Sample, evaluate_compliance
from collector.verdicts import _Vector, query, stats_from_rollups
from contract.errors import ServiceError
from contract.profiles import bundled_profiles
from contract.sampling import too_close

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
VILLAGE = {"province": "11", "commune": "03211", "village": "Bản Nà Hin", "technology": "4g",
           "operator": "Viettel", "setting": "indoor", "plan": ""}  # fmt: skip


# The store's answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollup", "labels"),
    [
        ("class", {"vmrange": "5.995e+00...6.813e+00"}),  # a class code the collector never writes
        ("day_part", {"vmrange": "5.995e+00...6.813e+00"}),  # a fifth part of the day
        ("class", {"vmrange": "1e308...1e309"}),
        ("download", {"rollup": "max_over_time"}),
    ],
)
def test_an_answer_of_an_unexpected_shape_is_refused(rollup: str, labels: dict[str, str]) -> None:
    answers = {rollup: [_Vector(VILLAGE | labels, (0.0, "3"))]}
    with pytest.raises(ServiceError):
        stats_from_rollups(answers)


@pytest.mark.parametrize("value", ["-3", "garbage", "NaN", "+Inf"])
def test_a_count_that_is_no_count_is_refused(value: str) -> None:
    answers = {"class": [_Vector(VILLAGE | {"vmrange": "8.799e-01...1.000e+00"}, (0.0, value))]}
    with pytest.raises(ServiceError, match="not an exact whole number"):
        stats_from_rollups(answers)


def test_a_store_that_does_not_answer_in_time_is_an_outage() -> None:
    async def silent(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def ask() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", silent)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            timeout = aiohttp.ClientTimeout(total=0.2)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await query(session, f"http://127.0.0.1:{port}", "1", NOW)
        finally:
            await runner.cleanup()

    # A bare TimeoutError would end keep_verdicts_fresh, and with it the collector's TaskGroup.
    with pytest.raises(ServiceError, match="TimeoutError"):
        asyncio.run(ask())


# The sample rules --------------------------------------------------------------------------


def test_the_same_millisecond_of_one_device_counts_once_without_a_minimum_gap() -> None:
    # Two targets of one fixed-line test stamped alike: the probe says gap 0, the profile no gap.
    assert too_close(0.0, 0.0)
    assert not too_close(0.001, 0.0)
    assert not too_close(None, 0.0)


def test_the_window_is_taken_at_the_stores_millisecond() -> None:
    profile = bundled_profiles()["4g"]
    window = timedelta(days=1)
    samples = [
        # Stored at `now` (the store keeps milliseconds): inside, as the rollup counts it.
        Sample(timestamp=NOW + timedelta(microseconds=300), download_mbps=50.0, device="a"),
        # Stored at the window's start: outside, as the rollup leaves it.
        Sample(
            timestamp=NOW - window + timedelta(microseconds=300), download_mbps=60.0, device="b"
        ),
    ]
    verdict = evaluate_compliance(samples, profile, now=NOW, window=window)
    assert (verdict.n, verdict.mean_download_mbps) == (1, 50.0)
