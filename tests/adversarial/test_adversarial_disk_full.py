"""The collector's state disk fills while results wait for the store (it is down).

The collector's --state-dir is a small tmpfs of its own (needs root to mount). Real probe daemons
measure all along. What the full disk does not let the journal keep gets no receipt (counted as
`not-journaled`), so the probes keep those results and send them again; the collector keeps
running, also across a restart on the full disk, and catches up once space returns: every result
made is stored, once.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from lab.netns import NEEDS_ROOT
from lab.services import Mosquitto, VictoriaMetrics
from tests.adversarial.conftest import (
    ADVERSARIAL,
    production_collector,
    restart,
    running,
    wait_for_metric,
)
from tests.disks import fill, small_disk
from tests.e2e.faults.conftest import (
    count_exactly_once,
    daemons,
    delivered,
    fault_agent,
    stop_all,
)
from tests.integration.agent.conftest import wait_until

pytestmark = [
    ADVERSARIAL,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT),
]

# One probe's results wait in the journal when the disk fills; the other starts afterwards.
WAITING_PROBE, LATE_PROBE = "vn-79-disk-waiting", "vn-79-disk-late"
# Results the full journal has refused (counting each copy re-sent) before space comes back.
REFUSED_WHILE_FULL = 20


def test_collector_state_disk_full_while_the_store_is_down(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    waiting_agent = fault_agent(tmp_path, WAITING_PROBE, broker.url)
    late_agent = fault_agent(tmp_path, LATE_PROBE, broker.url)
    agents = [waiting_agent, late_agent]
    with ExitStack() as stack:
        disk = stack.enter_context(small_disk(tmp_path / "collector-disk", "4m"))
        collector = stack.enter_context(
            production_collector(tmp_path, broker.url, store.url, state_dir=disk / "state")
        )
        processes = stack.enter_context(daemons([waiting_agent]))
        wait_for_metric(collector, "qos_collector_results_accepted_total", 30)

        store.stop()
        waiting = wait_for_metric(collector, "qos_collector_buffer_depth", 20)
        filler = fill(disk)
        processes += stack.enter_context(daemons([late_agent]))
        refused = wait_for_metric(
            collector,
            "qos_collector_results_rejected_total",
            REFUSED_WHILE_FULL,
            timeout_s=60,
            reason="not-journaled",
        )
        assert running(collector), "the collector died of a full state disk"

        # The store comes back while the disk is still full: it takes the waiting results, but
        # the journal cannot record that, so still no receipt; the collector goes on.
        delivered_before = [delivered(agent) for agent in agents]
        store.start()
        wait_for_metric(collector, "qos_collector_store_up", 1)
        time.sleep(2)
        assert running(collector)
        assert [delivered(agent) for agent in agents] == delivered_before, "receipt unbacked"

        restart(collector)  # on the full disk: it must come up and run, not crash-loop
        time.sleep(2)
        assert running(collector), "the collector did not survive a restart on a full disk"

        filler.unlink()
        wait_until(
            lambda: all(
                delivered(agent) > before + 20
                for agent, before in zip(agents, delivered_before, strict=True)
            ),
            timeout_s=60,
            what="both probes' results receipted once the disk has room",
        )
        stop_all(processes)
        tally = count_exactly_once(agents, store)
    print(
        tally.summary("collector state disk full"),
        f"| waiting in the journal when it filled: {waiting:g}, refused while full "
        f"(not-journaled, re-sent copies included): {refused:g}",
    )

    assert (tally.duplicates, tally.lost, tally.rejected) == (0, 0, 0)
    assert tally.stored == tally.delivered == tally.made
