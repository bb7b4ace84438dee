"""When to add flows, when the warm-up ends and when to stop: a pure controller over samples.

The runner feeds it the cumulative bytes of all flows at short intervals (ticks); it answers
"continue", "add-flows" or "stop". Nothing here does I/O or reads a clock, so every decision can be
replayed from a recorded series.

Bytes reach the reader in lumps: a lost packet holds its flow's later data back until the
retransmission fills the hole, about one RTT later, then the reader gets them all at once. On a
10 Mb/s tbf link with 4 flows a lump is tens of kB, a large share of a 0.1 s tick (ticks scatter
by 15-40 %); with 50 ms of RTT a 40 Mb/s link delivers nothing to the reader for one tick and
twice its rate the next. The runner says at each tick whether the reader has caught up with the
link: no flow is holding data back for a retransmission (from TCP_INFO: no segment arrived out of
order since the last tick, or, sending, none is SACKed). The rules keep lumps from adding flows,
from leaving a start-up transient in the measured phase, and from hiding a stable rate:

- Warm-up (slow start, and the ramp of flows added later) is cut in stages of STAGE_TICKS ticks.
  A stage whose rate is less than GROWTH above the one before ends a plateau of two stages.
- At a plateau the flows double (up to max_flows) as long as the path does not queue and the
  previous doubling helped: it raised the plateau by GROWTH, and by more than the stage-to-stage
  scatter of both plateaus (a gain the scatter alone can produce is no evidence). Otherwise the
  warm-up ends there. It never takes more than MAX_WARMUP_SHARE of the allowed duration.
- The path queues when the flows' round-trip time over the plateau's last stage (median; the
  runner reads it from the kernel, TCP_INFO) exceeds the least RTT seen by QUEUE_SHARE of it and
  by at least QUEUE_MIN_S. A standing queue at the bottleneck means the link already carries all
  it can, so more flows would only lengthen the queue and, on a tail-drop queue, make the flows
  lose in bursts (at 10 Mb/s doubling 2 flows to 4 made the bytes arrive in lumps that kept the
  interval wide for the whole 10 s). A flow that is window-limited (a long fat pipe, a middlebox
  that strips window scaling) or limited by random loss shows no queue, so there flows still
  double. Without RTT readings (another OS) the rule is the gain alone.
- The measured phase starts where the warm-up ended, or later if its first batches of BATCH_TICKS
  ticks are a start-up transient: those, within its first half, whose rate is off the median of
  them all by more than OUTLIER_MADS robust standard deviations and by more than GROWTH; and
  at a caught-up tick. Batches, too, end at caught-up ticks, and a test stopped by its budget or
  duration ends its measured phase at the last caught-up tick (if that keeps half of it). With
  many flows on a lossy path some flow may always be waiting for a retransmission, so a batch
  waits for one a batch's length (at least SNAP_TICKS) at most, and the measured phase starts
  provisionally where it would have after SNAP_TICKS ticks without one. A rate between two
  caught-up ticks counts every byte the link carried between them, so the lumps leave the
  estimate and the interval (recorded at 40 Mb/s + 50 ms RTT: batch rates
  scatter by 0.01 % instead of 3 %).
- The 95 % interval of its rate comes from batch means (batches tame the correlation of adjacent
  ticks), by the ratio estimator since the rate is total bytes / total time (the QCVN per-sample
  rate), not a mean of batch rates. A batch holds BATCH_TICKS ticks and BATCH_BYTES at the
  observed rate (but at most MAX_BASE_BATCH_S), so it spans many lumps at any rate; once there
  are 2 x MIN_BATCHES batches, they merge in pairs. Batches thus grow with the measured phase: a
  lump at a batch's edge weighs less and less, where fixed 0.2 s batches kept weighing it the
  same, and a rate that drifts over longer spans is still caught. The interval remains
  conservative for lumps, as it cannot tell them from a drifting rate.
- The test stops as "stable" when a batch closes, the measured phase lasted min_measure_s, the
  interval's half-width is within confidence_target of the rate (the rate then covers exactly the
  batches of the interval) and the rate does not drift. It drifts when the batches' rates follow
  a trend that a least-squares line shows beyond chance (its slope's t statistic above the 0.975
  quantile) and that moves the rate by more than confidence_target over the measured phase: an
  interval from batch means assumes a steady rate, and a rate still climbing or falling (a mobile
  link) would stop on an interval that describes only its beginning. It stops as "budget" when the
  byte budget  is spent and as "duration" at max_duration_s.
- A test stopped by its budget or duration may have ended while its rate was still climbing (a
  long path, e.g. a satellite backhaul, whose TCP windows open over many round trips): then it is
  not `converged` and its rate is a lower bound, never the link's. The rate still climbs when the
  measured phase's batch rates rise beyond chance (the drift test's t statistic) and the line
  through them ends more than GROWTH above the phase's rate, or, with fewer than FEW_BATCHES
  batches, when the later half's mean is HALVES_RISE above the earlier half's; with too few
  batches for a trend,
  when the last stage's rate is GROWTH above the one before. Only a rise counts: a rate that fell
  or wanders is what the link gave, and flagging both ways would leave out good samples. Nor is
  it converged when the phase ended with the reader waiting for a retransmission for more than
  GROWTH of the phase (a long path's loss holds data back for seconds): the rate lacks the bytes
  held back, up to that share of it, and the held-back bytes arrive later in a lump.
- A long path (the empty path's RTT at least LONG_PATH_RTT_S: a satellite backhaul) is measured
  at its own pace (docs/measurement-method.md, "Long paths"): all max_flows at once, as soon as
  its RTT is known (doublings would cost stages of round trips each, and a flow's window is
  capped by its sender's buffer whatever the rate); stages of two round trips and batches of
  one at least, as bytes arrive once a round trip; a warm-up of up to LONG_PATH_WARMUP_RTTS
  round trips; and at the duration cap it runs on until it is stable, up to MAX_DURATION_STRETCH
  times the cap (the byte budget still stops it): a long path's loss, seconds in, leaves its
  flows recovering for seconds more, and a phase cut there is a rate of the recovery.
  Its link is full, and its warm-up ends, as soon as a round trip's rate grew less than GROWTH
  over the one before while the flows' RTT stands FULL_QUEUE_SHARE above the empty path's (a
  queue at the bottleneck; a plateau of a sender's buffer has none and waits for the stages);
  the measured phase starts with that last round trip, steady already. Slow start overshoots a
  queue of one bandwidth-delay product some two round trips after the link is full, and its
  loss holds data back for seconds: the measured phase may stop as stable after
  LONG_PATH_MEASURE_RTTS round trips (two batches, whose interval, with one degree of freedom,
  is narrow only if they agree within some 0.3 %), so a test can end in the seconds between the
  link filling and that loss; and a batch waits up to LONG_PATH_HOLD_RTTS round trips for a
  caught-up tick, so a batch spanning a hold counts every byte the link carried in it.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

from agent.measurements.base import SpeedSettings
from contract.result import StopReason

Action = Literal["continue", "add-flows", "stop"]

GROWTH: Final = 0.05
STAGE_TICKS: Final = 3
MAX_WARMUP_SHARE: Final = 0.4
BATCH_TICKS: Final = 2
BATCH_BYTES: Final = 250_000
MAX_BASE_BATCH_S: Final = 0.5
MIN_BATCHES: Final = 8
OUTLIER_MADS: Final = 4.0
MAD_TO_SIGMA: Final = 1.4826  # sigma = this x the median absolute deviation, for a normal law
SETTLE_MIN_BATCHES: Final = 6  # fewer batches than this cannot show a transient
# A boundary waits this many ticks (or a batch's length) at most for a caught-up tick.
SNAP_TICKS: Final = 5
# A path is long from this round-trip time on (satellite backhaul: ~0.6 s; see the rules).
LONG_PATH_RTT_S: Final = 0.25
# Round trips a long path's slow start may take: from ten segments to a window of tens of MB.
LONG_PATH_WARMUP_RTTS: Final = 12
# A long path's test not yet stable at its duration cap runs on, to this multiple of it at most.
MAX_DURATION_STRETCH: Final = 2.0
# A batch of a long path waits this many round trips at most for a caught-up tick: there a
# loss holds data back for several (2.5-3 s at 600 ms in the lab), and a batch that spans the
# hold counts every byte the link carried in it.
LONG_PATH_HOLD_RTTS: Final = 6
# A long path's link is full when a round trip's rate grew less than GROWTH over the one before
# while the flows' RTT stands this share above the empty path's: a queue at the bottleneck.
FULL_QUEUE_SHARE: Final = 0.1
# A long path's measured phase may stop as stable after this many round trips (if shorter than
# min_measure_s): as many batches of a round trip each, whose interval must still be narrow.
LONG_PATH_MEASURE_RTTS: Final = 2
QUEUE_SHARE: Final = 0.5
QUEUE_MIN_S: Final = 0.005
DRIFT_MIN_BATCHES: Final = 4  # a trend needs a few points and two degrees of freedom
# Below this many batches, a climb is also the later half's mean HALVES_RISE above the earlier
# half's: more than a mobile link's noise moves a mean of two or three batches.
FEW_BATCHES: Final = 8
HALVES_RISE: Final = 0.2
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


def relative_half_width(
    rates: Sequence[float], weights: Sequence[float] | None = None
) -> float | None:
    """Half-width of the 95 % t interval of a rate from batch rates, relative to that rate.

    With weights (the batches' durations) the rate is the weighted mean, sum(bytes) / sum(time),
    and the interval that of the ratio estimator: its variance is n / (n - 1) * sum(e**2) /
    sum(weights)**2 with e = weight * (rate - mean). Equal weights give the plain t interval.
    """
    if len(rates) < 2:  # noqa: PLR2004 - a spread needs two
        return None
    spans = [1.0] * len(rates) if weights is None else list(weights)
    if len(spans) != len(rates):
        raise ValueError("needs one weight per rate")
    total = math.fsum(spans)
    if total <= 0:
        return None
    mean = math.fsum(w * r for w, r in zip(spans, rates, strict=True)) / total
    if mean <= 0:
        return None
    n = len(rates)
    squares = math.fsum((w * (r - mean)) ** 2 for w, r in zip(spans, rates, strict=True))
    return t975(n - 1) * math.sqrt(n / (n - 1) * squares) / total / mean


class Tick(NamedTuple):
    at: float  # seconds, on any monotonic clock
    total_bytes: int  # cumulative, all flows


class PathRtt(NamedTuple):
    """The flows' round-trip times at a tick, as the kernel estimates them (seconds)."""

    rtt_s: float  # now: the median over the flows
    min_rtt_s: float  # the least any flow has seen: the RTT of the empty path


class _Plateau(NamedTuple):
    rate: float  # bytes/s over its last two stages together
    scatter: float  # bytes/s, the difference of those two stages' rates


class RateController:
    """Decides a speed test's course from its ticks; see the module docstring for the rules."""

    def __init__(self, settings: SpeedSettings, *, start: float) -> None:
        self._caught_up = [True]  # one per tick: the reader has all the link delivered
        self.flows = min(settings.initial_flows, settings.max_flows)
        self.stop_reason: StopReason | None = None
        self._settings = settings
        self._ticks = [Tick(start, 0)]
        self._rtts: list[float | None] = [None]  # one per tick
        self._base_rtt_s: float | None = None
        self._stage_starts = [0]
        self._plateau: _Plateau | None = None
        self._warmup_end: int | None = None  # where the warm-up rule ended it
        self._measure_from: int | None = None  # there, or later past a start-up transient
        self._measure_to: int | None = None  # set by a budget or duration stop
        self._interval_s = settings.sample_interval_s

    @property
    def measuring(self) -> bool:
        return self._measure_from is not None

    @property
    def warmup_s(self) -> float:
        return self._ticks[self._measure_index].at - self._ticks[0].at

    @property
    def measured_bytes(self) -> int:
        end, start = self._ticks[self._end_index], self._ticks[self._measure_index]
        return end.total_bytes - start.total_bytes

    @property
    def measured_s(self) -> float:
        return self._ticks[self._end_index].at - self._ticks[self._measure_index].at

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
        first = self._ticks[max(0, len(self._ticks) - 1 - self._stage_ticks)]
        return _rate(first, self._ticks[-1]) * 8 / 1e6

    @property
    def confidence(self) -> float | None:
        """Relative half-width of the 95 % interval of the rate over the closed batches."""
        ends = self._batch_ends()
        if len(ends) < 3:  # noqa: PLR2004 - two batches at least
            return None
        pairs = list(itertools.pairwise(ends))
        rates = [_rate(self._ticks[a], self._ticks[b]) for a, b in pairs]
        spans = [self._ticks[b].at - self._ticks[a].at for a, b in pairs]
        return relative_half_width(rates, spans)

    def tick(
        self,
        at: float,
        total_bytes: int,
        path: PathRtt | None = None,
        *,
        caught_up: bool = True,
    ) -> Action:
        """Record the cumulative bytes at `at` and say what to do next.

        path: the flows' RTT; caught_up: no flow holds data back for a retransmission (True
        where the runner cannot tell).
        """
        if self.stop_reason is not None:
            return "stop"
        self._ticks.append(Tick(at, total_bytes))
        self._caught_up.append(caught_up)
        self._rtts.append(None if path is None else path.rtt_s)
        if path is not None:
            base = self._base_rtt_s
            self._base_rtt_s = path.min_rtt_s if base is None else min(base, path.min_rtt_s)
        elapsed = at - self._ticks[0].at
        if self._warmup_end is None and self._warm_up(elapsed) == "add-flows":
            return "add-flows"
        if self._warmup_end is not None:
            self._measure_from = self._caught_up_from(self._settled_start(self._warmup_end))
        budget = self._settings.budget_bytes
        if budget is not None and total_bytes >= budget:
            return self._stop("budget")
        if elapsed >= self._settings.max_duration_s and not self._may_run_on(elapsed):
            return self._stop("duration")
        # Half a tick of slack: tick times drift, and 14 ticks may measure 1.3999 s.
        long_enough = self.measured_s >= self._min_measure_s - self._interval_s / 2
        if long_enough and self._batch_closed():
            confidence = self.confidence
            narrow = confidence is not None and confidence <= self._settings.confidence_target
            if narrow and not self._drifting():
                return self._stop("stable")
        return "continue"

    @property
    def converged(self) -> bool:
        """False when the test ended while its rate was still climbing, or with data held back
        (see the rules)."""
        if self.stop_reason in {None, "stable", "error"}:
            return True
        return not (self._climbing() or self._held_back())

    def _held_back(self) -> bool:
        """Did the measured phase end with the reader waiting for a retransmission for more than
        GROWTH of the phase? The bytes held back then are missing from its rate (see the rules)."""
        end = self._end_index
        if self._measure_from is None or end <= self._measure_from:
            return False
        caught = (i for i in range(end, self._measure_from - 1, -1) if self._caught_up[i])
        last_caught = next(caught, self._measure_from)
        waited = self._ticks[end].at - self._ticks[last_caught].at
        return waited > GROWTH * self.measured_s

    def _climbing(self) -> bool:
        """Does the measured phase, to its end, still climb (see the rules)?"""
        end = self._end_index
        ends = [index for index in self._batch_ends() if index <= end]
        if len(ends) >= DRIFT_MIN_BATCHES + 1:
            pairs = list(itertools.pairwise(ends))
            middles = [(self._ticks[a].at + self._ticks[b].at) / 2 for a, b in pairs]
            rates = [_rate(self._ticks[a], self._ticks[b]) for a, b in pairs]
            span = self._ticks[ends[-1]].at - self._ticks[ends[0]].at
            whole = _rate(self._ticks[ends[0]], self._ticks[ends[-1]])
            return still_climbing(middles, rates, span=span, rate=whole)
        # Too short a phase for a trend: the last two stages before its end.
        stage = self._stage_ticks
        if end < 2 * stage:
            return True  # less than two stages at all: nothing had settled
        before, last = (self._ticks[end - i * stage] for i in (2, 1))
        return _rate(last, self._ticks[end]) >= _rate(before, last) * (1 + GROWTH)

    @property
    def queued(self) -> bool:
        """Does the path hold a standing queue at the plateau's end (see the rules)?"""
        if self._base_rtt_s is None or len(self._stage_starts) < 3:  # noqa: PLR2004
            return False
        # The last stage's: the queue builds as the rate reaches the link's.
        rtts = [rtt for rtt in self._rtts[self._stage_starts[-2] :] if rtt is not None]
        if not rtts:
            return False
        base = self._base_rtt_s
        return statistics.median(rtts) > base + max(QUEUE_MIN_S, QUEUE_SHARE * base)

    @property
    def _long_path(self) -> bool:
        return self._base_rtt_s is not None and self._base_rtt_s >= LONG_PATH_RTT_S

    @property
    def _max_warmup_s(self) -> float:
        """The warm-up's share of the duration, or on a long path the round trips slow start
        takes there (see the rules)."""
        share = self._settings.max_duration_s * MAX_WARMUP_SHARE
        if not self._long_path:
            return share
        assert self._base_rtt_s is not None
        return max(share, LONG_PATH_WARMUP_RTTS * self._base_rtt_s)

    @property
    def _rtt_ticks(self) -> int:
        """Ticks in one round trip of the empty path (1 while it is unknown)."""
        if self._base_rtt_s is None:
            return 1
        return max(1, math.ceil(self._base_rtt_s / self._interval_s - 1e-9))

    @property
    def _stage_ticks(self) -> int:
        """A stage spans two round trips at least: on a long path bytes arrive once a round trip,
        and a shorter stage sees a burst or none (one round trip was not enough: a stage then
        held one burst or two as their phase drifted, and plateaus came and went)."""
        return max(STAGE_TICKS, 2 * self._rtt_ticks)

    def _widen_for_a_long_path(self) -> bool:
        """On a long path, all max_flows at once, as soon as its RTT is known (see the rules)."""
        if not self._long_path or self.flows >= self._settings.max_flows:
            return False
        self.flows = self._settings.max_flows
        self._stage_starts = [len(self._ticks) - 1]
        return True

    def _round_trip_rates(self) -> tuple[float, float] | None:
        """The rates of the last round trip and the one before, once the flows span both."""
        size, last = self._rtt_ticks, len(self._ticks) - 1
        if last - 2 * size < self._stage_starts[0]:
            return None
        before, middle, now = (self._ticks[last - i * size] for i in (2, 1, 0))
        return _rate(before, middle), _rate(middle, now)

    def _plateau_of_round_trips(self) -> bool:
        """On a long path, is its link full: the last round trip's rate grew less than GROWTH
        over the one before, over a queue? The warm-up ends there (see the rules)."""
        rates = self._round_trip_rates() if self._long_path else None
        if rates is None or not 0 < rates[1] < rates[0] * (1 + GROWTH):
            return False
        assert self._base_rtt_s is not None
        rtts = [rtt for rtt in self._rtts[-self._rtt_ticks :] if rtt is not None]
        return bool(rtts) and statistics.median(rtts) > self._base_rtt_s * (1 + FULL_QUEUE_SHARE)

    @property
    def _min_measure_s(self) -> float:
        """The shortest measured phase that may stop as stable (see the rules)."""
        minimum = self._settings.min_measure_s
        if not self._long_path:
            return minimum
        return min(minimum, LONG_PATH_MEASURE_RTTS * self._rtt_ticks * self._interval_s)

    @property
    def _hold_ticks(self) -> int:
        """How long a long path's batch may wait for a caught-up tick (0 on a short path)."""
        return LONG_PATH_HOLD_RTTS * self._rtt_ticks if self._long_path else 0

    def _may_run_on(self, elapsed: float) -> bool:
        """Past the duration cap: a long path runs on until it is stable (see the rules)."""
        return self._long_path and elapsed < self._settings.max_duration_s * MAX_DURATION_STRETCH

    @property
    def _measure_index(self) -> int:
        return self._measure_from if self._measure_from is not None else len(self._ticks) - 1

    @property
    def _end_index(self) -> int:
        return self._measure_to if self._measure_to is not None else len(self._ticks) - 1

    def _caught_up_from(self, first: int) -> int | None:
        """The first caught-up tick from first on; first itself while none has come for a while.

        None (not measuring yet) for the first SNAP_TICKS ticks without one.
        """
        caught = (i for i in range(first, len(self._ticks)) if self._caught_up[i])
        found = next(caught, None)
        if found is None:
            return first if len(self._ticks) - 1 - first >= SNAP_TICKS else None
        return found

    def _settled_start(self, first: int) -> int:
        """first, or just past the last batch of a start-up transient after it (see above)."""
        size = max(BATCH_TICKS, self._rtt_ticks)
        count = (len(self._ticks) - 1 - first) // size
        if count < SETTLE_MIN_BATCHES:
            return first
        ends = [self._ticks[first + i * size] for i in range(count + 1)]
        rates = [_rate(a, b) for a, b in itertools.pairwise(ends)]
        median = statistics.median(rates)
        spread = MAD_TO_SIGMA * statistics.median(abs(rate - median) for rate in rates)
        bound = max(OUTLIER_MADS * spread, GROWTH * median)
        outliers = [i for i in range(count // 2) if abs(rates[i] - median) > bound]
        return first + (outliers[-1] + 1) * size if outliers else first

    def _batch_ends(self) -> list[int]:
        """Tick indices that bound the measured phase's closed batches, its start first."""
        if self._measure_from is None:
            return []
        size = self._batch_ticks()
        grace = max(size, SNAP_TICKS, self._hold_ticks)
        ends = [self._measure_from]
        for index in range(self._measure_from + size, len(self._ticks)):
            length = index - ends[-1]
            if (length >= size and self._caught_up[index]) or length >= size + grace:
                ends.append(index)
        return ends

    def _batch_ticks(self) -> int:
        """How many ticks a batch holds now: the base size, doubled while batches are many."""
        assert self._measure_from is not None
        ticks = len(self._ticks) - 1 - self._measure_from
        size = max(BATCH_TICKS, self._rtt_ticks)  # a batch spans a round trip's burst at least
        if ticks > 0 and self.measured_bytes > 0:
            per_tick_bytes, per_tick_s = self.measured_bytes / ticks, self.measured_s / ticks
            by_bytes = math.ceil(BATCH_BYTES / per_tick_bytes)
            size = max(size, min(by_bytes, round(MAX_BASE_BATCH_S / per_tick_s)))
        while ticks // size >= 2 * MIN_BATCHES:
            size *= 2
        return size

    def _drifting(self) -> bool:
        """Do the closed batches' rates follow a trend (see the module docstring)?"""
        ends = self._batch_ends()
        if len(ends) < DRIFT_MIN_BATCHES + 1:
            return False
        pairs = list(itertools.pairwise(ends))
        middles = [(self._ticks[a].at + self._ticks[b].at) / 2 for a, b in pairs]
        rates = [_rate(self._ticks[a], self._ticks[b]) for a, b in pairs]
        slope, t_value = _trend(middles, rates)
        span = self._ticks[ends[-1]].at - self._ticks[ends[0]].at
        whole = _rate(self._ticks[ends[0]], self._ticks[ends[-1]])
        change = abs(slope) * span
        return change > self._settings.confidence_target * whole and t_value > t975(len(rates) - 2)

    def _batch_closed(self) -> bool:
        ends = self._batch_ends()
        return len(ends) > 1 and ends[-1] == len(self._ticks) - 1

    def _warm_up(self, elapsed: float) -> Action:
        if self._widen_for_a_long_path():
            return "add-flows"
        if self._plateau_of_round_trips():
            # Its last round trip is within GROWTH of the one before: steady already.
            self._warmup_end = len(self._ticks) - 1 - self._rtt_ticks
            return "continue"
        return self._ramp(elapsed)

    def _ramp(self, elapsed: float) -> Action:
        last = len(self._ticks) - 1
        if last - self._stage_starts[-1] >= self._stage_ticks:
            self._stage_starts.append(last)
            plateau = self._at_plateau()
            if plateau is not None:
                growing = self._helped(plateau) and not self.queued
                if growing and self.flows < self._settings.max_flows:
                    self._plateau = plateau
                    self.flows = min(self._settings.max_flows, self.flows * 2)
                    self._stage_starts = [last]
                    return "add-flows"
                self._warmup_end = last
                return "continue"
        if elapsed >= self._max_warmup_s:
            self._warmup_end = last
        return "continue"

    def _at_plateau(self) -> _Plateau | None:
        """The plateau the last two stages (at this many flows) form, if they form one."""
        if len(self._stage_starts) < 3:  # noqa: PLR2004 - two stages make a plateau
            return None
        a, b, c = (self._ticks[i] for i in self._stage_starts[-3:])
        before, after = _rate(a, b), _rate(b, c)
        if after >= before * (1 + GROWTH):
            return None
        return _Plateau(rate=_rate(a, c), scatter=abs(after - before))

    def _helped(self, plateau: _Plateau) -> bool:
        """Did the previous doubling raise the plateau beyond what the scatter can explain?"""
        if self._plateau is None:  # no doubling yet: whether more flows help is to be seen
            return True
        gain = plateau.rate - self._plateau.rate
        scatter = plateau.scatter + self._plateau.scatter
        return gain >= self._plateau.rate * GROWTH and gain > scatter

    def _stop(self, reason: StopReason) -> Action:
        last = len(self._ticks) - 1
        if self._measure_from is None or self._measure_from == last:
            # Stopped before a measured phase had any length: the last stage stands in for it.
            self._warmup_end = self._measure_from = max(0, last - self._stage_ticks)
        elif reason != "stable":  # a stable stop is at a caught-up tick already
            start = self._ticks[self._measure_from].at
            half = (self._ticks[last].at - start) / 2
            caught = (i for i in range(last, self._measure_from, -1) if self._caught_up[i])
            end = next(caught, None)
            if end is not None and self._ticks[end].at - start >= half:
                self._measure_to = end
        self.stop_reason = reason
        return "stop"


def still_climbing(
    middles: Sequence[float], rates: Sequence[float], *, span: float, rate: float
) -> bool:
    """Do rates (of batches centred at middles, over span seconds) still climb at the end?

    Beyond chance (the slope's t statistic above the 0.975 quantile), and enough that the line
    through them ends more than GROWTH above the phase's rate (see the module docstring).
    """
    # Too few batches for the t statistic to be sure (iperf3's 4 per-second intervals, with a
    # loss's lumps in them) need not hide a climb: the later half well above the earlier one.
    if 2 <= len(rates) < FEW_BATCHES:  # noqa: PLR2004 - two halves
        half = len(rates) // 2
        earlier, later = statistics.fmean(rates[:half]), statistics.fmean(rates[-half:])
        if later > earlier * (1 + HALVES_RISE):
            return True
    if len(rates) < DRIFT_MIN_BATCHES:
        return False
    slope, t_value = _trend(middles, rates)
    return slope > 0 and t_value > t975(len(rates) - 2) and slope * span / 2 > GROWTH * rate


def _trend(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """The least-squares slope of ys over xs and its t statistic (|slope| / standard error)."""
    n = len(xs)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx <= 0:
        return 0.0, 0.0
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    residuals = math.fsum(
        (y - mean_y - slope * (x - mean_x)) ** 2 for x, y in zip(xs, ys, strict=True)
    )
    error = math.sqrt(residuals / (n - 2) / sxx)
    return slope, (math.inf if error == 0 else abs(slope) / error)


def _rate(first: Tick, last: Tick) -> float:
    """Bytes per second between two ticks."""
    seconds = last.at - first.at
    return (last.total_bytes - first.total_bytes) / seconds if seconds > 0 else 0.0
