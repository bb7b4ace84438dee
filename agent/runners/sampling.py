"""When to add flows, when the warm-up ends and when to stop: a pure controller over samples.

The runner feeds it the cumulative bytes of all flows at short intervals (ticks); it answers
"continue", "add-flows" or "stop". Nothing here does I/O or reads a clock, so every decision can be
replayed from a recorded series.

- Warm-up (slow start, and the ramp of flows added later) is cut in stages of STAGE_TICKS ticks.
  A stage whose rate is less than GROWTH above the one before is a plateau.
- At a plateau the flows double (up to max_flows) as long as the previous doubling raised the
  plateau by GROWTH or more; otherwise the measured phase starts there. The warm-up never takes
  more than MAX_WARMUP_SHARE of the allowed duration.
- The measured phase stops as "stable" once it lasted min_measure_s and the 95 % interval of its
  rate, from batch means of BATCH_TICKS ticks (batches tame the correlation of adjacent ticks),
  is within confidence_target; as "budget" when the byte budget is spent; as "duration" at
  max_duration_s.
- The rate is bytes / time of the measured phase (the QCVN per-sample rate), not a mean of ticks.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

from agent.runners.base import SpeedSettings
from contract.result import StopReason

Action = Literal["continue", "add-flows", "stop"]

GROWTH: Final = 0.05
STAGE_TICKS: Final = 3
BATCH_TICKS: Final = 2
MAX_WARMUP_SHARE: Final = 0.4
# Student's t, 0.975 quantile, for 1 to 30 degrees of freedom.
_T975: Final = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228),
    *(2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086),
    *(2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)


def t975(dof: int) -> float:
    """Student's t 0.975 quantile; beyond the table, 1.96 + 2.4 / dof is within 0.002 of it."""
    if dof < 1:
        raise ValueError("needs at least one degree of freedom")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96 + 2.4 / dof


def relative_half_width(rates: Sequence[float]) -> float | None:
    """Half-width of the 95 % t interval of the mean of rates, relative to that mean."""
    if len(rates) < 2:  # noqa: PLR2004 - a spread needs two
        return None
    mean = statistics.fmean(rates)
    if mean <= 0:
        return None
    return t975(len(rates) - 1) * statistics.stdev(rates) / math.sqrt(len(rates)) / mean


class Tick(NamedTuple):
    at: float  # seconds, on any monotonic clock
    total_bytes: int  # cumulative, all flows


class RateController:
    """Decides a speed test's course from its ticks; see the module docstring for the rules."""

    def __init__(self, settings: SpeedSettings, *, start: float) -> None:
        self.flows = min(settings.initial_flows, settings.max_flows)
        self.stop_reason: StopReason | None = None
        self._settings = settings
        self._ticks = [Tick(start, 0)]
        self._stage_start = 0
        self._stage_rates: list[float] = []
        self._plateau: float | None = None
        self._measure_from: int | None = None
        self._max_warmup_s = settings.max_duration_s * MAX_WARMUP_SHARE

    @property
    def measuring(self) -> bool:
        return self._measure_from is not None

    @property
    def warmup_s(self) -> float:
        return self._ticks[self._measure_index].at - self._ticks[0].at

    @property
    def measured_bytes(self) -> int:
        return self._ticks[-1].total_bytes - self._ticks[self._measure_index].total_bytes

    @property
    def measured_s(self) -> float:
        return self._ticks[-1].at - self._ticks[self._measure_index].at

    @property
    def total_bytes(self) -> int:
        return self._ticks[-1].total_bytes

    @property
    def mbps(self) -> float:
        """The rate of the measured phase so far (0 before it has any length)."""
        seconds = self.measured_s
        return self.measured_bytes * 8 / seconds / 1e6 if seconds > 0 else 0.0

    @property
    def recent_mbps(self) -> float:
        """The rate over the last stage's worth of ticks, for a live display."""
        first = self._ticks[max(0, len(self._ticks) - 1 - STAGE_TICKS)]
        return _rate(first, self._ticks[-1]) * 8 / 1e6

    @property
    def confidence(self) -> float | None:
        if self._measure_from is None:
            return None
        measured = self._ticks[self._measure_from :]
        batches = [
            _rate(measured[i], measured[i + BATCH_TICKS])
            for i in range(0, len(measured) - BATCH_TICKS, BATCH_TICKS)
        ]
        return relative_half_width(batches)

    def tick(self, at: float, total_bytes: int) -> Action:
        """Record the cumulative bytes at `at` and say what to do next."""
        if self.stop_reason is not None:
            return "stop"
        self._ticks.append(Tick(at, total_bytes))
        elapsed = at - self._ticks[0].at
        if self._measure_from is None and self._ramp(elapsed) == "add-flows":
            return "add-flows"
        budget = self._settings.budget_bytes
        if budget is not None and total_bytes >= budget:
            return self._stop("budget")
        if elapsed >= self._settings.max_duration_s:
            return self._stop("duration")
        if self.measured_s >= self._settings.min_measure_s:
            confidence = self.confidence
            if confidence is not None and confidence <= self._settings.confidence_target:
                return self._stop("stable")
        return "continue"

    @property
    def _measure_index(self) -> int:
        return self._measure_from if self._measure_from is not None else len(self._ticks) - 1

    def _ramp(self, elapsed: float) -> Action:
        last = len(self._ticks) - 1
        if last - self._stage_start >= STAGE_TICKS:
            self._stage_rates.append(_rate(self._ticks[self._stage_start], self._ticks[last]))
            self._stage_start = last
            rates = self._stage_rates
            if len(rates) >= 2 and rates[-1] < rates[-2] * (1 + GROWTH):  # noqa: PLR2004
                helped = self._plateau is None or rates[-1] >= self._plateau * (1 + GROWTH)
                if helped and self.flows < self._settings.max_flows:
                    self._plateau = rates[-1]
                    self.flows = min(self._settings.max_flows, self.flows * 2)
                    self._stage_rates = []
                    return "add-flows"
                self._measure_from = last
                return "continue"
        if elapsed >= self._max_warmup_s:
            self._measure_from = last
        return "continue"

    def _stop(self, reason: StopReason) -> Action:
        last = len(self._ticks) - 1
        if self._measure_from is None or self._measure_from == last:
            # Stopped before a measured phase had any length: the last stage stands in for it.
            self._measure_from = max(0, last - STAGE_TICKS)
        self.stop_reason = reason
        return "stop"


def _rate(first: Tick, last: Tick) -> float:
    """Bytes per second between two ticks."""
    seconds = last.at - first.at
    return (last.total_bytes - first.total_bytes) / seconds if seconds > 0 else 0.0
