"""The probe's disk fills up while it is offline (something else, say logs, takes the space).

The probe's state directory is on a small tmpfs of its own (needs root to mount; unmounted at
the end, also on failure). Once the disk is full no new result can be kept: SQLite in WAL mode
needs room even to delete, so the spool cannot trim its way out; each result made meanwhile is
counted lost (in memory, written with the first write that fits again) and the daemon goes on.
When space returns, `qos-agent status` reports the loss, and every result that was kept reaches
the store once.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab.netns import NEEDS_ROOT
from lab.services import VictoriaMetrics, free_port, mosquitto
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
# Results made while the disk is full before it is given space again.
MADE_WHILE_FULL = 30


@contextmanager
def small_disk(mountpoint: Path, size: str) -> Iterator[Path]:
    mountpoint.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        check=True,
        timeout=10,
    )
    try:
        yield mountpoint
    finally:
        unmounted = subprocess.run(["umount", str(mountpoint)], check=False, timeout=10)
        if unmounted.returncode != 0:
            # Still busy (a process that outlived its test): detach it now, freed when unused.
            subprocess.run(["umount", "--lazy", str(mountpoint)], check=True, timeout=10)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; returns it (delete it to give space back)."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    chunk = bytes(64 * 1024)
    try:
        while True:
            os.write(descriptor, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)
    return filler


def test_disk_full_on_the_probe(tmp_path: Path, store: VictoriaMetrics) -> None:
    port = free_port()  # the broker comes up only once the disk has space again
    broker_url = f"mqtt://127.0.0.1:{port}"
    with small_disk(tmp_path / "probe-disk", DISK_SIZE) as disk:
        agent = fault_agent(tmp_path, "vn-11-disk-full", broker_url, state_dir=disk / "state")
        with daemons([agent]) as processes:
            wait_until(lambda: agent.spooled() >= 60, timeout_s=30, what="results spooled")
            filler = fill(disk)
            full_from = results_made(agent)
            wait_until(
                lambda: results_made(agent) - agent.spooled() >= MADE_WHILE_FULL,
                timeout_s=30,
                what="results made that the full disk cannot keep",
            )
            assert processes[0].poll() is None, "the daemon died of a full disk"
            filler.unlink()
            wait_until(
                lambda: (report := spool_now(agent)) is not None and report.lost > 0,
                timeout_s=30,
                what="the loss written once the disk has room",
            )
            freed_at = results_made(agent)
            status = status_json(agent)
            stop_all(processes)
        with (
            mosquitto(tmp_path / "mosquitto", port=port) as broker,
            collector(tmp_path, broker.url, store.url, "collector"),
        ):
            tally = count_exactly_once([agent], store)
    print(tally.summary("disk full on the probe"), f"| made while full: {freed_at - full_from}")

    assert (tally.duplicates, tally.rejected) == (0, 0)
    assert MADE_WHILE_FULL <= tally.lost <= freed_at - full_from
    assert tally.stored == tally.delivered == tally.made - tally.lost
    # Reported: `qos-agent status` shows the loss; every test made a result (none failed).
    assert status["daemon_running"]
    assert status["spool"]["lost"] >= MADE_WHILE_FULL
    daemon = status["daemon"]
    assert daemon["tests_failed"] == 0
    assert daemon["tests_run"] >= freed_at - 1
    # The results lost are the ones made while the disk was full.
    stored = {seq for probe, seq, _ in tally.samples if probe == probe_of(agent)}
    assert set(range(tally.made)) - stored <= set(range(full_from - 2, freed_at + 2))
