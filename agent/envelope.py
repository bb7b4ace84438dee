"""Assembling the result envelope v1 from what the runners measured."""

from __future__ import annotations

from datetime import datetime

from uuid6 import uuid7

from agent import __version__
from agent.runners.base import SpeedOutcome
from contract.result import (
    SCHEMA,
    Clock,
    Link,
    Location,
    Measurements,
    Provenance,
    Result,
    Target,
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
    download: SpeedOutcome,
    clock: Clock,
) -> Result:
    provenance = Provenance(
        agent_version=__version__,
        runner=download.runner,
        tool_version=download.tool_version,
        flows=download.throughput.flows if download.throughput else 0,
        warmup_s=download.throughput.warmup_s if download.throughput else 0.0,
        stop_reason=download.stop_reason,
        bytes_used=download.bytes_used,
        confidence=download.confidence,
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
        measurements=Measurements(download=download.throughput),
        provenance=provenance,
        errors=download.errors,
    )
