"""Two collectors share the subscription ($share/collectors/...); one is killed (SIGKILL) mid-run.

The broker splits the probes' results between the two instances. When one dies, the probes send
again whatever it never receipted, and the broker now gives all of it to the survivor. Each
instance has its own journal, so a result the dead one had written to the store, but whose
receipt died with it, is written a second time by the survivor: the store's deduplication (same
series, same timestamp: lab/services.victoria_metrics sets -dedup.minScrapeInterval=1ms) keeps
it one sample. So: every result stored once in the store, and the instances' accepted counts
exceed the results stored by exactly the results both instances wrote, each a re-send that
crossed from one instance to the other.
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
    stop_all,
    unwritten,
    wait_for_more_delivered,
    written,
)
from tests.integration.agent.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PROBES = ("vn-11-share-a", "vn-11-share-b", "vn-11-share-c")


def test_two_collectors_one_killed_mid_run(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    agents = [fault_agent(tmp_path, probe, broker.url) for probe in PROBES]
    with ExitStack() as stack:
        doomed = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector-a"))
        survivor = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector-b"))
        processes = stack.enter_context(daemons(agents))
        # Both instances take a share of the results.
        wait_until(
            lambda: accepted(doomed) >= 40 and accepted(survivor) >= 40,
            timeout_s=30,
            what="both collectors storing results",
        )
        counted_by_doomed = accepted(doomed)
        doomed.service.kill()
        by_doomed = journal(tmp_path, "collector-a")
        stored_at_kill = [delivered(agent) for agent in agents]
        wait_for_more_delivered(
            agents, stored_at_kill, at_least=30, what="the survivor storing every probe's results"
        )
        stop_all(processes)
        tally = count_exactly_once(agents, store)
        accepted_by_survivor = accepted(survivor)
        by_survivor = journal(tmp_path, "collector-b")

    written_by_doomed = written(by_doomed)
    written_by_survivor = written(by_survivor)
    crossed = written_by_doomed.keys() & written_by_survivor.keys()
    waiting_in_doomed = by_doomed.keys() - written_by_doomed.keys()
    accepted_total = len(written_by_doomed) + accepted_by_survivor
    print(
        tally.summary("2 collectors, 1 SIGKILLed"),
        f"| accepted: killed instance {len(written_by_doomed)}, survivor"
        f" {accepted_by_survivor:g}; written by both {len(crossed)}; in the killed"
        f" instance's journal unwritten {len(waiting_in_doomed)}",
    )

    # No result lost, none doubled in the store.
    assert (tally.duplicates, tally.lost, tally.rejected) == (0, 0, 0)
    assert tally.stored == tally.delivered == tally.made
    # The killed instance's journal (it survives SIGKILL) holds what it wrote; its counter
    # scraped just before the kill cannot be ahead of it.
    assert counted_by_doomed <= len(written_by_doomed)
    assert accepted_by_survivor == len(written_by_survivor)
    # More accepted than stored only by the results both instances wrote: one publish reaches
    # one instance of the group, so each is a re-send that crossed (a receipt that died with
    # the killed instance); the store kept them once.
    assert accepted_total >= tally.stored
    assert accepted_total - tally.stored == len(crossed)
    # What the killed instance held but had not written reached the store through the survivor.
    assert waiting_in_doomed <= written_by_survivor.keys()


def test_collector_killed_while_the_store_is_down_then_restarted(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    """The worst case for writing twice: the killed instance held results its journal had not
    written yet (the store was down). The probes send them again to the survivor, which stores
    them; then the killed instance restarts and writes its journal's backlog too."""
    agents = [fault_agent(tmp_path, probe, broker.url) for probe in PROBES]
    with ExitStack() as stack:
        doomed = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector-a"))
        survivor = stack.enter_context(collector(tmp_path, broker.url, store.url, "collector-b"))
        processes = stack.enter_context(daemons(agents))
        wait_until(
            lambda: accepted(doomed) >= 20 and accepted(survivor) >= 20,
            timeout_s=30,
            what="both collectors storing results",
        )
        store.stop()
        wait_until(
            lambda: len(unwritten(journal(tmp_path, "collector-a"))) >= 10,
            timeout_s=30,
            what="results waiting for the store in the doomed collector's journal",
        )
        doomed.service.kill()
        held_by_doomed = unwritten(journal(tmp_path, "collector-a"))
        store.start()
        stored_at_restart = [delivered(agent) for agent in agents]
        wait_for_more_delivered(
            agents, stored_at_restart, at_least=30, what="the survivor storing the probes' backlog"
        )
        # Every result the killed instance held comes again from its probe, to the survivor (a
        # probe re-sends after its receipt timeout): wait for all of them before the restart, or
        # a late re-send would reach the restarted instance instead and the claim below would
        # hang on timing.
        wait_until(
            lambda: held_by_doomed <= written(journal(tmp_path, "collector-b")).keys(),
            timeout_s=60,
            what="the survivor storing every result the killed instance held",
        )
        restarted_at = time.time()
        stack.enter_context(collector(tmp_path, broker.url, store.url, "collector-a"))
        wait_until(
            lambda: not unwritten(journal(tmp_path, "collector-a")),
            timeout_s=30,
            what="the restarted collector writing its journal's backlog",
        )
        stop_all(processes)
        tally = count_exactly_once(agents, store)
        accepted_by_survivor = accepted(survivor)
    written_by_doomed = written(journal(tmp_path, "collector-a"))
    written_by_survivor = written(journal(tmp_path, "collector-b"))
    crossed = written_by_doomed.keys() & written_by_survivor.keys()
    accepted_total = len(written_by_doomed) + len(written_by_survivor)
    print(
        tally.summary("2 collectors, 1 SIGKILLed while the store was down, restarted"),
        f"| held unwritten by the killed instance {len(held_by_doomed)}; accepted: killed"
        f" instance {len(written_by_doomed)}, survivor {len(written_by_survivor)};"
        f" written by both {len(crossed)}",
    )

    assert (tally.duplicates, tally.lost, tally.rejected) == (0, 0, 0)
    assert tally.stored == tally.delivered == tally.made
    assert accepted_by_survivor == len(written_by_survivor)
    # Written by both instances, and kept once by the store: the results the killed one held
    # when it died (the probes sent them again, to the survivor), and copies the probes sent
    # again while the survivor's receipts were late (its store backlog) that the restarted
    # instance took. One publish reaches one instance of the group: each is a re-send that
    # crossed, and the killed instance wrote none of them before it died.
    assert held_by_doomed
    assert held_by_doomed <= crossed
    assert all(written_by_doomed[rid] >= restarted_at for rid in crossed)
    assert accepted_total - tally.stored == len(crossed)
