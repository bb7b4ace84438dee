"""A rate still climbing when its test ended says so (`converged: false`), whatever the runner,
and the technician's screen says it is not the link's rate."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from agent.measurements import iperf3
from agent.measurements.base import SpeedOutcome, SpeedSettings
from agent.measurements.speed import reading_of
from agent.net.sampling import PathRtt, RateController, still_climbing
from agent.verdict import sample_lines
from contract.profiles import bundled_profiles
from contract.result import Measurements, Throughput
from tests.strategies import sample_result

TICK = 0.1
MB = 1e6
IPERF3 = Path(__file__).parents[2] / "fixtures" / "iperf3"


def replay(settings: SpeedSettings, rate_at: Callable[[float], float]) -> RateController:
    """Feed the controller bytes at rate_at(t) bytes/s until it says stop."""
    controller = RateController(settings, start=0.0)
    total, t = 0.0, 0.0
    while controller.tick(t, int(total)) != "stop":
        t = round(t + TICK, 6)
        total += rate_at(t) * TICK
    return controller


def test_a_steady_link_converges() -> None:
    controller = replay(SpeedSettings(), lambda _t: 40 * MB / 8)
    assert (controller.stop_reason, controller.converged) == ("stable", True)


def test_a_long_path_still_opening_its_windows_at_the_duration_cap_has_not_converged() -> None:
    # 250 Mb/s behind 600 ms: the windows open over some 20 s, the test stops at 10 s.
    controller = replay(SpeedSettings(), lambda t: 250 * MB / 8 * min(1.0, t / 20))
    assert controller.stop_reason == "duration"
    assert not controller.converged


def test_a_budget_stop_during_slow_start_has_not_converged() -> None:
    controller = replay(
        SpeedSettings(budget_bytes=3_000_000), lambda t: 100 * MB / 8 * min(1.0, 2 ** (t * 3) / 64)
    )
    assert controller.stop_reason == "budget"
    assert not controller.converged


def test_a_budget_stop_on_a_steady_rate_has_converged_once_two_stages_show_it() -> None:
    controller = replay(SpeedSettings(budget_bytes=15_000_000), lambda _t: 100 * MB / 8)
    assert (controller.stop_reason, controller.converged) == ("budget", True)
    # 0.2 s cannot show that a rate stopped climbing: a lower bound, whatever came after.
    tiny = replay(SpeedSettings(budget_bytes=2_000_000), lambda _t: 100 * MB / 8)
    assert (tiny.stop_reason, tiny.converged) == ("budget", False)


@pytest.mark.parametrize("seed", range(10))
def test_noise_and_a_falling_rate_are_what_the_link_gave(seed: int) -> None:
    draws = random.Random(seed)
    settings = SpeedSettings(confidence_target=0.001)  # never stable: every run hits the cap
    noisy = replay(settings, lambda _t: draws.uniform(20, 60) * MB / 8)
    falling = replay(settings, lambda t: (60 - 3 * t) * MB / 8 * draws.uniform(0.97, 1.03))
    assert (noisy.stop_reason, falling.stop_reason) == ("duration", "duration")
    assert noisy.converged
    assert falling.converged


def test_a_rise_within_growth_of_the_rate_is_converged() -> None:
    middles = [0.5, 1.5, 2.5, 3.5, 4.5]
    assert still_climbing(middles, [100, 103, 106, 109, 112], span=5.0, rate=106)
    assert not still_climbing(middles, [100, 100.5, 101, 101.5, 102], span=5.0, rate=101)
    # Too few batches for the t statistic, but the later half far above the earlier is a climb
    # (iperf3 at 250 Mb/s + 300 ms: 45, 176, 100, 344 Mb/s, a loss's lumps in a slow start)...
    assert still_climbing(middles[:3], [10, 20, 30], span=3.0, rate=20)
    assert still_climbing(middles[:4], [45, 176, 100, 344], span=4.0, rate=166)
    # ... not a mobile link's noise.
    assert not still_climbing(middles[:4], [40, 46, 38, 44], span=4.0, rate=42)


def _iperf3_report(rates_mbps: list[float]) -> bytes:
    report = json.loads((IPERF3 / "upload-1-stream.json").read_bytes())
    intervals = [{"sum": {"start": 0.0, "end": 1.0, "bytes": 1_000_000, "omitted": True}}]
    intervals += [
        {"sum": {"start": i, "end": i + 1.0, "bytes": round(rate * MB / 8), "omitted": False}}
        for i, rate in enumerate(rates_mbps, start=1)
    ]
    report["intervals"] = intervals
    return json.dumps(report).encode()


def test_iperf3_intervals_still_climbing_have_not_converged() -> None:
    climbing = iperf3.parse_report(_iperf3_report([40, 70, 100, 130, 160]), "upload")
    steady = iperf3.parse_report(_iperf3_report([160, 158, 161, 159, 160]), "upload")
    assert climbing.throughput is not None
    assert steady.throughput is not None
    assert (climbing.converged, steady.converged) == (False, True)


def test_the_block_carries_the_flag_and_only_when_false() -> None:
    throughput = Throughput(mbps=70.0, bytes=87_500_000, duration_s=10.0, flows=2)
    outcome = SpeedOutcome(throughput=throughput, runner="http", converged=False)
    block = reading_of("download", outcome).block
    assert block is not None
    assert block["converged"] is False
    converged = reading_of("download", msgspec.structs.replace(outcome, converged=True)).block
    assert converged is not None
    assert "converged" not in converged  # absent: an older reader's default, True


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_the_technicians_screen_says_the_rate_is_not_the_links(direction: str) -> None:
    base = sample_result()
    climbing = Throughput(mbps=70.0, bytes=87_500_000, duration_s=10.0, converged=False)
    steady = Throughput(mbps=240.0, bytes=300_000_000, duration_s=10.0)
    download, upload = (climbing, steady) if direction == "download" else (steady, climbing)
    measurements = Measurements(download=download, upload=upload)
    result = msgspec.structs.replace(base, measurements=measurements)
    lines = sample_lines(result, bundled_profiles())
    texts = [line.text for line in lines if "still climbing" in line.text]
    assert len(texts) == 1
    assert "not counted" in texts[0] or "would not count" in texts[0]


# A long path: a geostationary satellite backhaul, 600 ms of round trip.
SATELLITE = PathRtt(rtt_s=0.6, min_rtt_s=0.6)


def replay_long(
    settings: SpeedSettings, rate_at: Callable[[float], float]
) -> tuple[RateController, list[tuple[float, str]]]:
    controller = RateController(settings, start=0.0)
    total, t = 0.0, 0.0
    actions: list[tuple[float, str]] = []
    while True:
        t = round(t + TICK, 6)
        total += rate_at(t) * TICK
        action = controller.tick(t, int(total), SATELLITE)
        if action != "continue":
            actions.append((t, action))
        if action == "stop":
            return controller, actions


def test_a_long_path_opens_all_its_flows_at_once() -> None:
    controller, actions = replay_long(SpeedSettings(), lambda _t: 55 * MB / 8)
    assert actions[0] == (0.1, "add-flows")
    assert controller.flows == SpeedSettings().max_flows
    assert (controller.stop_reason, controller.converged) == ("stable", True)
    assert controller.mbps == pytest.approx(55, rel=1e-6)


def test_a_long_path_still_climbing_at_the_cap_runs_on_until_it_holds() -> None:
    # Windows open for 12 s: the test runs past its 10 s and stops once the rate holds (at the
    # cap as soon as the climb left in its measured phase is within GROWTH).
    controller, _ = replay_long(SpeedSettings(), lambda t: 250 * MB / 8 * min(1.0, t / 12))
    assert controller.stop_reason in {"stable", "duration"}
    assert 12 < controller.warmup_s + controller.measured_s < 20
    assert controller.mbps == pytest.approx(250, rel=0.02)
    assert controller.converged


def test_a_long_path_climbing_past_twice_the_cap_stops_there_unconverged() -> None:
    controller, _ = replay_long(SpeedSettings(), lambda t: 250 * MB / 8 * min(1.0, t / 40))
    assert controller.stop_reason == "duration"
    assert controller.warmup_s + controller.measured_s == pytest.approx(20, abs=0.2)
    assert not controller.converged


def test_the_budget_bounds_a_long_path_that_runs_on() -> None:
    budget = 60_000_000
    settings = SpeedSettings(budget_bytes=budget)
    controller, _ = replay_long(settings, lambda t: 250 * MB / 8 * min(1.0, t / 40))
    assert controller.stop_reason == "budget"
    assert controller.total_bytes <= budget + 250 * MB / 8 * TICK
    assert not controller.converged


def test_a_long_paths_loss_holding_data_back_at_the_cap_is_not_a_rate() -> None:
    # 55 Mb/s behind 600 ms: from 9 s a flow waits for a retransmission that never comes in
    # time; its later data is held back, so the reader sees nothing and has not caught up.
    draws = random.Random(1)
    controller = RateController(SpeedSettings(confidence_target=0.001), start=0.0)
    total, t, action = 0.0, 0.0, "continue"
    while action != "stop":
        t = round(t + TICK, 6)
        waiting = t > 9.0
        total += 0.0 if waiting else 55 * MB / 8 * TICK * draws.uniform(0.9, 1.1)
        action = controller.tick(t, int(total), SATELLITE, caught_up=not waiting)
    # It ran on past 10 s hoping to catch up, then stopped at twice the cap, saying so.
    assert controller.stop_reason == "duration"
    assert controller.warmup_s + controller.measured_s == pytest.approx(20, abs=0.2)
    assert not controller.converged


def test_a_short_wait_at_the_end_is_within_growth_and_converged() -> None:
    draws = random.Random(2)
    controller = RateController(SpeedSettings(confidence_target=0.001), start=0.0)
    total, t, action = 0.0, 0.0, "continue"
    while action != "stop":
        t = round(t + TICK, 6)
        waiting = t > 9.8  # one round trip of a 100 ms path
        total += 0.0 if waiting else 40 * MB / 8 * TICK * draws.uniform(0.9, 1.1)
        action = controller.tick(t, int(total), PathRtt(0.1, 0.1), caught_up=not waiting)
    assert controller.stop_reason == "duration"
    assert controller.converged


TICKS = Path(__file__).parents[2] / "fixtures" / "ticks"


def replay_recorded(name: str) -> RateController:
    """Feed the controller a recorded lab run (`qos-agent check` through tbf and the delay line,
    cubic, 8 flows; every tick it saw, 20 s of them) until it says stop."""
    with (TICKS / name).open(newline="") as recording:
        rows = list(csv.DictReader(recording))
    controller = RateController(SpeedSettings(), start=0.0)
    for row in rows:
        path = PathRtt(float(row["rtt_s"]), float(row["min_rtt_s"])) if row["rtt_s"] else None
        at, total = float(row["at_s"]), int(row["total_bytes"])
        if controller.tick(at, total, path, caught_up=row["caught_up"] == "1") == "stop":
            return controller
    raise AssertionError("the recording ended before the controller stopped")


def fixed_test_bytes(shaped_mbps: float) -> float:
    return 10 * 0.956 * shaped_mbps * MB / 8


def test_a_long_path_stops_between_its_link_filling_and_slow_starts_loss() -> None:
    # 17 Mb/s + 600 ms: the link full from 4.3 s at 16.3 Mb/s, slow start's loss at 7.3 s; before
    # the round-trip rules the test measured after the loss's recovery, or ran to 20 s.
    controller = replay_recorded("17mbps-600ms-loss-at-7s.csv")
    assert (controller.stop_reason, controller.converged) == ("stable", True)
    assert controller.mbps == pytest.approx(0.956 * 17, rel=0.01)
    assert controller.warmup_s + controller.measured_s < 7.3
    assert controller.total_bytes <= 0.5 * fixed_test_bytes(17)


def test_a_long_paths_batch_spans_a_loss_that_holds_data_back() -> None:
    # 55 Mb/s + 600 ms: slow start's loss at 6.6 s, a round trip after the link filled, holds
    # data back until 9.5 s; one batch spans the hold and counts what the link carried.
    controller = replay_recorded("55mbps-600ms-loss-at-6s.csv")
    assert (controller.stop_reason, controller.converged) == ("stable", True)
    assert controller.mbps == pytest.approx(0.956 * 55, rel=0.01)
    assert controller.warmup_s + controller.measured_s < 10
    assert controller.total_bytes <= 0.6 * fixed_test_bytes(55)


def slow_start_into_a_queue(t: float) -> tuple[float, PathRtt]:
    """A 55 Mb/s + 600 ms link: the rate doubles each round trip until the link is full at
    about 5 s, then a queue builds (its RTT grows)."""
    rate = min(55.0, 0.1 * 2 ** (t / 0.6))
    full_since = max(0.0, t - 0.6 * math.log2(550))
    return rate * MB / 8, PathRtt(rtt_s=0.6 + min(0.6, 0.3 * full_since), min_rtt_s=0.6)


def test_a_long_paths_warm_up_ends_one_round_trip_into_a_queued_plateau() -> None:
    controller, total, t = RateController(SpeedSettings(), start=0.0), 0.0, 0.0
    while True:
        t = round(t + TICK, 6)
        rate, path = slow_start_into_a_queue(t)
        total += rate * TICK
        if controller.tick(t, int(total), path) == "stop":
            break
    full_at = 0.6 * math.log2(550)
    assert (controller.stop_reason, controller.converged) == ("stable", True)
    assert controller.mbps == pytest.approx(55, rel=0.01)
    # Two round trips to see the plateau, two to measure it, a tick or two of alignment.
    assert controller.warmup_s + controller.measured_s <= full_at + 4 * 0.6 + 0.3


def test_a_plateau_without_a_queue_waits_for_the_warm_ups_stages() -> None:
    # The same link seen by a sender whose buffer, not the link, sets the rate: no queue builds,
    # so the round-trip rule does not call the link full and the stages of two round trips decide.
    controller, total, t = RateController(SpeedSettings(), start=0.0), 0.0, 0.0
    while True:
        t = round(t + TICK, 6)
        rate, _path = slow_start_into_a_queue(t)
        total += rate * TICK
        if controller.tick(t, int(total), SATELLITE) == "stop":
            break
    assert (controller.stop_reason, controller.converged) == ("stable", True)
    assert controller.warmup_s > 0.6 * math.log2(550) + 2 * 0.6
