"""The speed test controller, replayed on synthetic byte series (no I/O, no clock)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from agent.runners.base import SpeedSettings
from agent.runners.sampling import RateController, relative_half_width, t975

TICK = 0.1
MB = 1e6


def replay(
    settings: SpeedSettings, rate_for: Callable[[float, int], float], limit_s: float = 30.0
) -> tuple[RateController, list[tuple[float, str]]]:
    """Feed the controller bytes at rate_for(t, flows) bytes/s until it says stop."""
    controller = RateController(settings, start=0.0)
    total, t = 0.0, 0.0
    actions: list[tuple[float, str]] = []
    while t < limit_s:
        t = round(t + TICK, 6)
        total += rate_for(t, controller.flows) * TICK
        action = controller.tick(t, int(total))
        if action != "continue":
            actions.append((t, action))
        if action == "stop":
            break
    return controller, actions


def steady(mbps: float) -> Callable[[float, int], float]:
    return lambda _t, _flows: mbps * MB / 8


def test_t_quantiles() -> None:
    assert t975(1) == pytest.approx(12.706)
    assert t975(30) == pytest.approx(2.042)
    assert t975(60) == pytest.approx(2.000, abs=0.002)
    assert t975(120) == pytest.approx(1.980, abs=0.002)
    with pytest.raises(ValueError, match="degree"):
        t975(0)


def test_half_width_needs_two_positive_rates() -> None:
    assert relative_half_width([5.0]) is None
    assert relative_half_width([0.0, 0.0]) is None
    assert relative_half_width([10.0, 10.0, 10.0]) == 0.0


def test_a_steady_link_stops_stable_soon_with_the_exact_rate() -> None:
    controller, actions = replay(SpeedSettings(), steady(40))
    assert controller.stop_reason == "stable"
    assert controller.mbps == pytest.approx(40, rel=1e-6)
    assert controller.measured_s >= SpeedSettings().min_measure_s
    # Two flows, one doubling that did not help, then the measured phase: about 3 s in all.
    assert [action for _, action in actions] == ["add-flows", "stop"]
    assert controller.flows == 4
    assert actions[-1][0] <= 3.5


def test_slow_start_is_excluded_from_the_rate() -> None:
    def ramp(t: float, _flows: int) -> float:
        return 100 * MB / 8 * min(1.0, t / 1.5)  # 1.5 s to reach 100 Mb/s

    controller, _ = replay(SpeedSettings(), ramp)
    assert controller.warmup_s >= 1.5
    assert controller.mbps == pytest.approx(100, rel=0.005)


def test_flows_double_while_throughput_grows_up_to_the_cap() -> None:
    def per_flow(_t: float, flows: int) -> float:
        return 10 * MB / 8 * flows  # each flow adds 10 Mb/s: a long fat pipe

    controller, actions = replay(SpeedSettings(max_flows=8), per_flow)
    assert [action for _, action in actions].count("add-flows") == 2  # 2 -> 4 -> 8
    assert controller.flows == 8
    assert controller.mbps == pytest.approx(80, rel=1e-3)


def test_the_budget_stops_the_test_even_during_warm_up() -> None:
    controller, _ = replay(SpeedSettings(budget_bytes=2_000_000), steady(100))
    assert controller.stop_reason == "budget"
    assert controller.total_bytes <= 2_000_000 + 100 * MB / 8 * TICK
    assert controller.measured_s > 0
    assert controller.mbps == pytest.approx(100, rel=1e-3)


def test_a_noisy_link_runs_to_the_duration_cap() -> None:
    draws = random.Random(5)

    def noisy(_t: float, _flows: int) -> float:
        return draws.uniform(20, 60) * MB / 8

    settings = SpeedSettings(max_duration_s=4, confidence_target=0.001)
    controller, _ = replay(settings, noisy)
    assert controller.stop_reason == "duration"
    assert controller.warmup_s <= 4 * 0.4 + TICK
    assert controller.confidence is not None
    assert controller.confidence > 0.001
