"""The live rate from an interface's byte counters (a fake /sys/class/net): read, turned into a
rate, sampled while a check runs; a counter that is gone, reset or not a number shows nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.net.counters import (
    Counters,
    LiveRate,
    interface_towards,
    live_rates,
    rate_between,
    read_counters,
)


def _counters(root: Path, interface: str, rx: str, tx: str) -> None:
    statistics = root / interface / "statistics"
    statistics.mkdir(parents=True, exist_ok=True)
    (statistics / "rx_bytes").write_text(rx + "\n")
    (statistics / "tx_bytes").write_text(tx + "\n")


def test_counters_are_read(tmp_path: Path) -> None:
    _counters(tmp_path, "wwan0", "1000", "2000")
    assert read_counters("wwan0", tmp_path) == Counters(1000, 2000)


@pytest.mark.parametrize(
    ("interface", "rx"),
    [
        ("absent", "1"),
        ("wwan0", "not a number"),
        ("wwan0", "9" * 100),
        ("../wwan0", "1"),
        ("", "1"),
    ],
)
def test_a_missing_or_bad_counter_reads_as_none(tmp_path: Path, interface: str, rx: str) -> None:
    _counters(tmp_path, "wwan0", rx, "1")
    assert read_counters(interface, tmp_path) is None


def test_a_rate_from_two_readings_and_none_across_a_reset() -> None:
    rate = rate_between(Counters(0, 0), Counters(5_000_000, 1_250_000), 1.0)
    assert rate == LiveRate(40.0, 10.0)
    assert rate_between(Counters(5_000_000, 0), Counters(10, 0), 1.0) is None
    assert rate_between(Counters(0, 0), Counters(1, 1), 0.0) is None


async def test_samples_are_shown_while_the_block_runs_and_stop_after(tmp_path: Path) -> None:
    _counters(tmp_path, "eth0", "0", "0")
    shown: list[LiveRate] = []
    async with live_rates("eth0", shown.append, interval_s=0.05, root=tmp_path):
        for step in range(1, 6):
            _counters(tmp_path, "eth0", str(step * 1_000_000), "0")
            await asyncio.sleep(0.05)
    count = len(shown)
    assert count >= 2
    assert all(rate.down_mbps > 0 and rate.up_mbps == 0 for rate in shown[1:])
    await asyncio.sleep(0.15)
    assert len(shown) == count


async def test_no_interface_no_sampling(tmp_path: Path) -> None:
    shown: list[LiveRate] = []
    async with live_rates("absent", shown.append, interval_s=0.01, root=tmp_path):
        await asyncio.sleep(0.05)
    async with live_rates(None, shown.append, interval_s=0.01, root=tmp_path):
        await asyncio.sleep(0.05)
    assert shown == []


def test_the_interface_towards_loopback_is_lo() -> None:
    assert interface_towards("127.0.0.1") == "lo"
    assert interface_towards("not a host name") is None
