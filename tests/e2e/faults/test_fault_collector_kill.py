"""The only collector is killed (SIGKILL) while probes publish, and restarted on its journal.

While it is down the broker drops results for the empty shared subscription (the probes have
its PUBACK, not a receipt), and whatever the dead process took without a receipt is unknown to
the probes: they send it all again. The restarted instance writes what its journal still held,
recognises re-sent copies of what it had written, and stores the rest: each result once.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from lab.services import Mosquitto, VictoriaMetrics
from tests.e2e.faults.conftest import (
    accepted,
    collector,
    count_exactly_once,
    daemons,
    delivered,
    fault_agent,
    journal,
    metric,
    stop_all,
    wait_for_more_delivered,
    written,
)
from tests.integration.agent.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PROBES = ("vn-11-kill-a", "vn-11-kill-b")
DOWN_S = 1.5


def test_collector_killed_mid_run_and_restarted(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    agents = [fault_agent(tmp_path, probe, broker.url) for probe in PROBES]
    with ExitStack() as stack:
        first = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector"))
        processes = stack.enter_context(daemons(agents))
        wait_until(lambda: accepted(first) >= 60, timeout_s=30, what="results stored")
        assert first.service.process is not None
        children = _children(first.service.process.pid)
        assert children, "the collector checks signatures in a process of its own"
        first.service.kill()
        # Its signature process goes with it, not left behind holding a core's worth of work.
        wait_until(
            lambda: not any(Path(f"/proc/{child}").exists() for child in children),
            timeout_s=10,
            what="the killed collector's own processes gone",
        )
        at_kill = journal(tmp_path, "collector")
        written_before = len(written(at_kill))
        waiting_at_kill = len(at_kill) - written_before
        stored_at_kill = [delivered(agent) for agent in agents]
        time.sleep(DOWN_S)  # the probes go on measuring; the broker has no one to give results to

        second = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector"))
        wait_for_more_delivered(
            agents, stored_at_kill, at_least=30, what="the probes' backlog stored after the restart"
        )
        stop_all(processes)
        tally = count_exactly_once(agents, store)
        accepted_after = accepted(second)
        copies = metric(second, "qos_collector_results_rejected_total", reason="replay")
        replayed = metric(second, "qos_collector_store_replayed_lines_total")
    print(
        tally.summary("collector SIGKILL + restart"),
        f"| written before the kill {written_before}, waiting in its journal {waiting_at_kill},"
        f" accepted after {accepted_after:g}, re-sent copies recognised {copies:g},"
        f" lines written again after the restart {replayed:g}",
    )

    assert (tally.duplicates, tally.lost, tally.rejected) == (0, 0, 0)
    assert tally.stored == tally.delivered == tally.made
    # The instance before and after the kill wrote each result once between them.
    assert written_before + accepted_after == tally.stored
    assert len(written(journal(tmp_path, "collector"))) == tally.stored


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found
