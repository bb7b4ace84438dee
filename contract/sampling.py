"""The method's sample rules, one definition for the probe, the collector and offline `evaluate`.

- **Resolution.** A rate is taken to 0.01 Mb/s and a latency to 0.01 ms, as whole numbers of those
  units. Sums of whole numbers are exact in any order, so the live verdict (sums computed inside
  VictoriaMetrics) and the offline one (sums computed here) are the same numbers, not merely close.
- **Minimum gap.** Two samples of one device closer than the profile's `min_gap_s` count once: a
  sample is counted only when the previous *counted* one is at least that far before it.
- **Classes.** Every speed attempt falls in exactly one class; only `counted` ones enter a mean.
  A rate whose test ended while it was still climbing (`unconverged`: a long path whose TCP
  windows had not opened) is a class of its own, not `probe_limited`: both say the rate is not
  the link's, but one blames the probe's CPU and the other the path and the test's length, and
  whoever answers a village's complaint must know which to fix. It yields to `implausible`: an
  unconverged rate is a lower bound, so one above the ceiling is impossible all the same.
- **Day parts.** QCVN 34 wants samples spread over the hours of the day: the day is cut into four
  six-hour parts of Vietnam time (UTC+7, no daylight saving).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from contract.profiles import Profile
    from contract.result import Result

# Units per Mb/s (rates) and per ms (latency): 0.01 Mb/s = 10 kb/s, 0.01 ms = 10 us.
UNITS_PER_MBPS: Final = 100
UNITS_PER_MS: Final = 100
# Sums are exact while they stay below 2**53 (float64's integer range, which the store uses):
# 90 billion units, e.g. 900,000 samples of 1 Gb/s in one area group.
EXACT_LIMIT: Final = 2**53

SampleClass = Literal[
    "counted", "failed", "probe_limited", "implausible", "too_close", "unconverged"
]
# Stored as a number (series qos_sample_class); 0 is never used so a missing value is not a class.
CLASS_CODES: Final[dict[SampleClass, int]] = {
    "counted": 1,
    "failed": 2,
    "probe_limited": 3,
    "implausible": 4,
    "too_close": 5,
    "unconverged": 6,
}
DAY_PARTS: Final = 4
VIETNAM_UTC_OFFSET: Final = timedelta(hours=7)


def rate_units(mbps: float) -> int:
    return round(mbps * UNITS_PER_MBPS)


def latency_units(ms: float) -> int:
    return round(ms * UNITS_PER_MS)


def day_part(moment: datetime) -> int:
    """0: 00-06, 1: 06-12, 2: 12-18, 3: 18-24, Vietnam time."""
    return (moment.astimezone(UTC) + VIETNAM_UTC_OFFSET).hour // (24 // DAY_PARTS)


def epoch_ms(moment: datetime) -> int:
    """A sample's time as the store keeps it: whole milliseconds."""
    return round(moment.timestamp() * 1000)


def window_ms(window: timedelta) -> int:
    """A window's length as the store's rollups take it: whole milliseconds."""
    return round(window.total_seconds() * 1000)


def gap_s(previous_counted: datetime | None, at: datetime) -> float | None:
    """Seconds since the previous counted sample, at the store's millisecond resolution."""
    if previous_counted is None:
        return None
    return max(0, epoch_ms(at) - epoch_ms(previous_counted)) / 1000


def too_close(gap: float | None, min_gap_s: float) -> bool:
    """Whether a sample `gap` seconds after the previous counted one falls inside the gap.

    A zero gap is the same device at the same millisecond: the same sample again (another
    target or address of one test), which counts once even where a profile sets no gap.
    """
    return gap is not None and (gap < min_gap_s or gap == 0)


def classify(
    *,
    failed: bool,
    probe_limited: bool,
    unconverged: bool,
    rates_mbps: tuple[float | None, ...],
    ceiling_mbps: float,
    is_too_close: bool,
) -> SampleClass:
    """The one class of a speed attempt; the order is the precedence of the rules."""
    if is_too_close:
        return "too_close"
    if failed:
        return "failed"
    if probe_limited:
        return "probe_limited"
    if any(rate is not None and rate > ceiling_mbps for rate in rates_mbps):
        return "implausible"
    if unconverged:
        return "unconverged"
    return "counted"


def attempt_failed(result: Result) -> bool:
    """QCVN access failure: a download attempted that could not run. A light test (latency,
    IPv6) or a probe-side problem (interface missing) is not an attempt on the link."""
    measurements = result.measurements
    return measurements.download is None and any(e.stage == "download" for e in result.errors)


def unconverged(result: Result) -> bool:
    """Did a direction's test end while its rate was still climbing (contract.result)?"""
    measurements = result.measurements
    return any(
        t is not None and not t.converged for t in (measurements.download, measurements.upload)
    )


def sample_class(result: Result, profile: Profile) -> SampleClass | None:
    """The class of a result's speed attempt under the profile; None when it is not one.

    The collector stores this (collector/series.py); the technician's check shows it.
    """
    from contract.profiles import ceiling_mbps  # noqa: PLC0415 - profiles imports result

    measurements = result.measurements
    failed = attempt_failed(result)
    if measurements.download is None and not failed:
        return None
    download, upload = measurements.download, measurements.upload
    return classify(
        failed=failed,
        probe_limited=result.provenance.probe_limited,
        unconverged=unconverged(result),
        rates_mbps=(download.mbps if download else None, upload.mbps if upload else None),
        ceiling_mbps=ceiling_mbps(profile, result.link.technology),
        is_too_close=too_close(result.provenance.gap_s, profile.min_gap_s),
    )
