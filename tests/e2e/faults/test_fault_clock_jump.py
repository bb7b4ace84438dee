"""The probe's wall clock steps an hour ahead, then an hour behind, then back, while it runs.

The daemon and its results read a stepped clock (stepped_agent.py; the machine's clock is never
touched). An hour ahead is beyond the collector's window (5 min): those results get a "rejected"
receipt ("future"), and the probe drops them and counts them. An hour behind is within it: those
are stored, an hour back in time. Schedule and receipt timeouts run on the monotonic clock, so
nothing else changes: every result is stored once, or refused and counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.services import Mosquitto, VictoriaMetrics
from tests.e2e.faults.conftest import (
    SteppedAgent,
    collector,
    count_exactly_once,
    daemons,
    delivered,
    fault_agent,
    metric,
    results_made,
    stop_all,
)
from tests.integration.agent.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

HOUR_S = 3600.0
PER_PHASE = 20
# The daemon numbers a result when it builds it, after the measurement read the clock: a result
# measured just before a step may be numbered just after it (one per link), so a phase's first
# seqs may still carry the previous phase's clock.
IN_FLIGHT = 2


def test_clock_steps_an_hour_each_way(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics
) -> None:
    agent = fault_agent(tmp_path, "vn-11-clock-step", broker.url, stepped=True)
    assert isinstance(agent, SteppedAgent)
    started = time.time()
    with (
        collector(tmp_path, broker.url, store.url, "collector") as central,
        daemons([agent]) as processes,
    ):
        wait_until(lambda: delivered(agent) >= PER_PHASE, timeout_s=30, what="results stored")

        agent.step_clock(HOUR_S)
        ahead_from = results_made(agent)
        wait_until(
            lambda: agent.spool().rejected >= PER_PHASE,
            timeout_s=30,
            what="results an hour ahead refused and dropped",
        )

        agent.step_clock(-HOUR_S)
        behind_from, stored_before = results_made(agent), delivered(agent)
        wait_until(
            lambda: delivered(agent) >= stored_before + PER_PHASE,
            timeout_s=30,
            what="results an hour behind stored",
        )

        agent.step_clock(0.0)
        back_from, stored_before = results_made(agent), delivered(agent)
        wait_until(
            lambda: delivered(agent) >= stored_before + PER_PHASE,
            timeout_s=30,
            what="results stored after the clock came back",
        )
        stop_all(processes)
        tally = count_exactly_once([agent], store)
        refused_future = metric(central, "qos_collector_results_rejected_total", reason="future")
        accepted = metric(central, "qos_collector_results_accepted_total")
    print(tally.summary("clock jump +1 h / -1 h"), f"refused as future: {refused_future:g}")

    assert (tally.duplicates, tally.lost) == (0, 0)
    assert tally.rejected >= PER_PHASE
    assert accepted == tally.stored == tally.delivered
    # Each refused result was refused once and its receipt reached the probe.
    assert refused_future == tally.rejected
    stored_seqs = {seq for _, seq, _ in tally.samples}
    refused_seqs = set(range(tally.made)) - stored_seqs
    assert refused_seqs <= set(range(ahead_from - IN_FLIGHT, behind_from + IN_FLIGHT))
    assert not stored_seqs & set(range(ahead_from + IN_FLIGHT, behind_from - IN_FLIGHT))
    # Results of the hour behind are stored an hour back; nothing is stored ahead of real time.
    behind = [
        at / 1000
        for _, seq, at in tally.samples
        if behind_from + IN_FLIGHT <= seq < back_from - IN_FLIGHT
    ]
    assert len(behind) >= PER_PHASE - 2 * IN_FLIGHT
    assert all(started - HOUR_S - 5 < at < time.time() - HOUR_S + 5 for at in behind)
    assert max(at for _, _, at in tally.samples) / 1000 < time.time() + 5
