"""The one place a result envelope v1 is made, from what a test measured (a LinkOutcome).

The daemon calls it with the radio state it read before the test and its health snapshot, then
signs and spools what it returns; `qos-agent check` calls it the same way. Here the result gets
its UUIDv7, its `seq` (from a file persisted before use), the link's sample-gap chain for a speed
attempt (agent/state.py), and each kind's block at the kind's slot, with its own start and end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from uuid6 import uuid7

from agent import __version__
from agent.config import AgentConfig
from agent.engine import probe_id_from_hostname
from agent.health import clock_status
from agent.measurements.kind import LinkOutcome, Outcome
from agent.state import next_seq, sample_gap
from contract.profiles import profile_for
from contract.result import (
    SCHEMA,
    Clock,
    HealthSnapshot,
    Link,
    MeasurementError,
    Measurements,
    Provenance,
    Radio,
    Result,
    Target,
)


def _placed(outcome: Outcome) -> dict[str, Any]:
    """The outcome's block, with its times and bytes, nested at its kind's slot."""
    assert outcome.reading.block is not None
    block: dict[str, Any] = {
        **outcome.reading.block,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "bytes_used": outcome.reading.bytes_used,
    }
    for key in reversed(outcome.slot):
        block = {key: block}
    return block


def _merge(into: dict[str, Any], tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def measurements_of(
    outcomes: tuple[Outcome, ...],
) -> tuple[Measurements, tuple[MeasurementError, ...]]:
    """Every kind's block in place; a block the contract refuses is an error, not a lost result."""
    tree: dict[str, Any] = {}
    refused: list[MeasurementError] = []
    for outcome in outcomes:
        if outcome.reading.block is None:
            continue
        placed = _placed(outcome)
        try:
            msgspec.convert(placed, Measurements)
        except msgspec.ValidationError as exc:
            message = f"its block does not follow the contract: {exc}"
            refused.append(
                MeasurementError(stage=outcome.kind, code="invalid-block", message=message[:2000])
            )
            continue
        _merge(tree, placed)
    return msgspec.convert(tree, Measurements), tuple(refused)


def _provenance(
    measured: LinkOutcome, health: HealthSnapshot | None, gap_s: float | None
) -> Provenance:
    """Flows, warm-up, stop reason and confidence describe the first transfer (the download)."""
    readings = [outcome.reading for outcome in measured.outcomes]
    lead = next((reading.transfer for reading in readings if reading.transfer), None)
    peaks = [reading.cpu_peak_percent for reading in readings if reading.cpu_peak_percent]
    return Provenance(
        agent_version=__version__,
        runner=measured.runner,
        tool_version=next((r.tool_version for r in readings if r.tool_version), None),
        flows=lead.flows if lead else 0,
        warmup_s=lead.warmup_s if lead else 0.0,
        stop_reason=lead.stop_reason if lead else "duration",
        bytes_used=measured.bytes_used,
        cpu_peak_percent=min(100.0, max(peaks)) if peaks else None,
        probe_limited=any(reading.probe_limited for reading in readings),
        confidence=lead.confidence if lead else None,
        health=health,
        gap_s=gap_s,
    )


def build_result(
    config: AgentConfig | None,
    *,
    link: Link,
    target: Target,
    measured: LinkOutcome,
    radio: Radio | None = None,
    health: HealthSnapshot | None = None,
    clock: Clock | None = None,
) -> Result:
    """The unsigned result of one test. With a config, `seq` and the gap chain advance in its
    state directory; without one (a technician's check on a probe not enrolled) seq is 0."""
    gap_s = None
    if config is not None and measured.speed_attempt:
        profile = profile_for(link.technology)
        min_gap_s = profile.min_gap_s if profile else 0.0
        gap_s = sample_gap(Path(config.state_dir), link.interface, measured.finished_at, min_gap_s)
    measurements, refused = measurements_of(measured.outcomes)
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id=config.probe_id if config else probe_id_from_hostname(),
        seq=next_seq(Path(config.state_dir)) if config else 0,
        started_at=measured.started_at,
        finished_at=measured.finished_at,
        clock=clock or clock_status(),
        location=config.location if config else None,
        link=msgspec.structs.replace(link, radio=radio) if radio else link,
        target=target,
        measurements=measurements,
        provenance=_provenance(measured, health, gap_s),
        errors=measured.all_errors + refused,
    )
