"""The probe's disk fills up while it is offline (something else, say logs, takes the space).

The probe's state directory is on a small tmpfs of its own (needs root to mount; unmounted at
the end, also on failure). SQLite in WAL mode needs room even to delete, so the spool cannot trim
its way out of a full disk; it releases its reserve file instead, and the results made next are
still kept. Once the reserve is spent too, each result made is counted lost (in memory, written
with the first write that fits again) and the daemon goes on. When space returns the spool takes
its reserve back, `qos-agent status` reports the loss, and every result that was kept reaches the
store once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.spool import RESERVE_NAME
from lab.netns import NEEDS_ROOT
from lab.services import VictoriaMetrics, free_port, mosquitto
from tests.disks import fill, small_disk
from tests.e2e.faults.conftest import (
    collector,
    count_exactly_once,
    daemons,
    fault_agent,
    probe_of,
    results_made,
    spool_now,
    status_json,
    stop_all,
)
from tests.integration.agent.conftest import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT),
]

DISK_SIZE = "8m"
# Small, so that the test spends it: a few dozen results' worth of SQLite pages.
RESERVE_BYTES = 512 * 1024
# Results made while the disk is full before it is given space again.
MADE_WHILE_FULL = 30


def test_disk_full_on_the_probe(tmp_path: Path, store: VictoriaMetrics) -> None:
    port = free_port()  # the broker comes up only once the disk has space again
    broker_url = f"mqtt://127.0.0.1:{port}"
    with small_disk(tmp_path / "probe-disk", DISK_SIZE) as disk:
        agent = fault_agent(tmp_path, "vn-11-disk-full", broker_url, state_dir=disk / "state")
        agent.write(spool={"reserve_bytes": RESERVE_BYTES})
        reserve = agent.state_dir / RESERVE_NAME
        with daemons([agent]) as processes:
            wait_until(lambda: agent.spooled() >= 60, timeout_s=30, what="results spooled")
            assert reserve.stat().st_size == RESERVE_BYTES
            filler = fill(disk)
            full_from, spooled_at_fill = results_made(agent), agent.spooled()
            wait_until(
                lambda: results_made(agent) - agent.spooled() >= MADE_WHILE_FULL,
                timeout_s=60,
                what="results made that the full disk and the spent reserve cannot keep",
            )
            assert processes[0].poll() is None, "the daemon died of a full disk"
            assert not reserve.exists()
            kept_while_full = agent.spooled() - spooled_at_fill
            filler.unlink()
            wait_until(
                lambda: (report := spool_now(agent)) is not None and report.lost > 0,
                timeout_s=30,
                what="the loss written once the disk has room",
            )
            wait_until(reserve.exists, timeout_s=30, what="the reserve taken back")
            freed_at = results_made(agent)
            status = status_json(agent)
            stop_all(processes)
        with (
            mosquitto(tmp_path / "mosquitto", port=port) as broker,
            collector(tmp_path, broker.url, store.url, "collector"),
        ):
            tally = count_exactly_once([agent], store)
    print(
        tally.summary("disk full on the probe"),
        f"| made while full: {freed_at - full_from}, kept by the reserve: {kept_while_full}",
    )

    assert (tally.duplicates, tally.rejected) == (0, 0)
    assert tally.lost >= MADE_WHILE_FULL
    assert kept_while_full >= 5
    assert tally.stored == tally.delivered == tally.made - tally.lost
    # Reported: `qos-agent status` shows the loss; every test made a result (none failed).
    assert status["daemon_running"]
    assert status["spool"]["lost"] >= MADE_WHILE_FULL
    assert status["disk_reserve_held"] is True
    daemon = status["daemon"]
    assert daemon["tests_failed"] == 0
    assert daemon["tests_run"] >= freed_at - 1
    # The first results made on the full disk were kept (the reserve); those lost were made
    # once it was spent, or are the oldest, dropped to make room when a trim could be written.
    stored = {seq for probe, seq, _ in tally.samples if probe == probe_of(agent)}
    assert set(range(full_from + 2, full_from + kept_while_full - 2)) <= stored
    missing = set(range(tally.made)) - stored
    oldest = {seq for seq in missing if seq < full_from - 2}
    assert oldest == set(range(len(oldest)))
    assert missing - oldest <= set(range(full_from + kept_while_full - 2, freed_at + 2))
