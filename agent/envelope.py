"""Assembling the result envelope v1 from what the runners measured."""

from __future__ import annotations

from datetime import datetime

import msgspec
from uuid6 import uuid7

from agent import __version__
from agent.measurements.base import SpeedOutcome
from agent.measurements.ipv6 import Ipv6Outcome
from agent.measurements.latency import LatencyOutcome
from contract.result import (
    SCHEMA,
    Clock,
    Latency,
    Link,
    Location,
    MeasurementError,
    Measurements,
    Provenance,
    Result,
    Target,
    Throughput,
)


class CheckOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one check measured on one link; a test not run is None."""

    runner: str
    download: SpeedOutcome | None = None
    upload: SpeedOutcome | None = None
    latency_idle: LatencyOutcome | None = None
    latency_loaded: LatencyOutcome | None = None
    ipv6: Ipv6Outcome | None = None
    # Failures before any test could start (e.g. the interface does not exist).
    errors: tuple[MeasurementError, ...] = ()

    @property
    def speeds(self) -> tuple[SpeedOutcome, ...]:
        return tuple(speed for speed in (self.download, self.upload) if speed is not None)

    @property
    def speed_attempt(self) -> bool:
        """A QCVN sample: a download measured, or attempted and failed (light tests are not)."""
        measured = self.download is not None and self.download.throughput is not None
        return measured or any(error.stage == "download" for error in self.all_errors)

    @property
    def bytes_used(self) -> int:
        """Every byte the check moved: speed tests, latency probes, IPv6 checks."""
        others = (self.latency_idle, self.latency_loaded, self.ipv6)
        return sum(speed.bytes_used for speed in self.speeds) + sum(
            other.bytes_used for other in others if other is not None
        )

    @property
    def all_errors(self) -> tuple[MeasurementError, ...]:
        latencies = (self.latency_idle, self.latency_loaded)
        return (
            self.errors
            + tuple(error for speed in self.speeds for error in speed.errors)
            + tuple(error for latency in latencies if latency for error in latency.errors)
        )


def _throughput(speed: SpeedOutcome | None) -> Throughput | None:
    if speed is None or speed.throughput is None:
        return None
    confidence = None if speed.confidence is None else min(1.0, speed.confidence)
    return msgspec.structs.replace(
        speed.throughput, stop_reason=speed.stop_reason, confidence=confidence
    )


def _provenance(outcome: CheckOutcome) -> Provenance:
    """Flows, warm-up, stop reason and confidence describe the download (else the upload)."""
    lead = outcome.download or outcome.upload
    throughput = lead.throughput if lead else None
    peaks = [speed.cpu_peak_percent for speed in outcome.speeds if speed.cpu_peak_percent]
    return Provenance(
        agent_version=__version__,
        runner=outcome.runner,
        tool_version=next((s.tool_version for s in outcome.speeds if s.tool_version), None),
        flows=throughput.flows if throughput else 0,
        warmup_s=throughput.warmup_s if throughput else 0.0,
        stop_reason=lead.stop_reason if lead else "duration",
        bytes_used=outcome.bytes_used,
        cpu_peak_percent=min(100.0, max(peaks)) if peaks else None,
        probe_limited=any(speed.probe_limited for speed in outcome.speeds),
        confidence=None if lead is None or lead.confidence is None else min(1.0, lead.confidence),
    )


def build_result(
    *,
    probe_id: str,
    seq: int,
    started_at: datetime,
    finished_at: datetime,
    location: Location | None,
    link: Link,
    target: Target,
    outcome: CheckOutcome,
    clock: Clock,
    gap_s: float | None = None,
) -> Result:
    idle, loaded = outcome.latency_idle, outcome.latency_loaded
    latency = None
    if idle is not None or loaded is not None:
        latency = Latency(
            idle=idle.stats if idle else None, loaded=loaded.stats if loaded else None
        )
    measurements = Measurements(
        download=_throughput(outcome.download),
        upload=_throughput(outcome.upload),
        latency=latency,
        ipv6=outcome.ipv6.ipv6 if outcome.ipv6 else None,
    )
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id=probe_id,
        seq=seq,
        started_at=started_at,
        finished_at=finished_at,
        clock=clock,
        location=location,
        link=link,
        target=target,
        measurements=measurements,
        provenance=msgspec.structs.replace(_provenance(outcome), gap_s=gap_s),
        errors=outcome.all_errors,
    )
