"""What a probe says about itself: enrollment (retained meta) and liveness (retained status)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from contract.errors import WireError
from contract.result import (
    TOPIC_PREFIX,
    Clock,
    Frozen,
    Interface,
    Link,
    Location,
    Name,
    ProbeId,
    UtcTime,
    check_names,
)
from contract.typed import decode_json

META_SCHEMA = "qosfleet.meta/1"
STATUS_SCHEMA = "qosfleet.status/1"
# A probe has a fixed line and a modem or two; each link is a series of the fleet state, so a
# message listing more is refused rather than stored.
MAX_LINKS = 8
# A meta or status is well under 4 KB.
MAX_FLEET_MESSAGE_BYTES = 64 * 1024


def meta_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/meta"


def status_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/status"


class ProbeMeta(Frozen, frozen=True, kw_only=True):
    """Enrollment, published retained: where the probe is, its links, and its signing key."""

    schema: str = META_SCHEMA
    probe_id: ProbeId
    location: Location
    links: Annotated[tuple[Link, ...], msgspec.Meta(max_length=MAX_LINKS)]
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    agent_version: Name


class LinkBudget(Frozen, frozen=True, kw_only=True):
    interface: Interface
    used_bytes: Annotated[int, msgspec.Meta(ge=0)]
    cap_bytes: Annotated[int, msgspec.Meta(ge=0)]
    # Tests skipped this month because their estimated bytes exceeded what was left.
    skipped_tests: Annotated[int, msgspec.Meta(ge=0)] = 0


class ProbeHealth(Frozen, frozen=True, kw_only=True):
    clock: Clock
    disk_free_bytes: int | None = None
    cpu_temperature_c: float | None = None
    spool_depth: Annotated[int, msgspec.Meta(ge=0)] = 0
    budgets: Annotated[tuple[LinkBudget, ...], msgspec.Meta(max_length=MAX_LINKS)] = ()
    spool_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Age of the oldest result still waiting for its receipt.
    spool_oldest_s: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    # Since enrollment: results dropped unsent (spool cap or disk full), and refused by a collector.
    results_lost: Annotated[int, msgspec.Meta(ge=0)] = 0
    results_rejected: Annotated[int, msgspec.Meta(ge=0)] = 0


class ProbeStatus(Frozen, frozen=True, kw_only=True):
    """Retained liveness: the birth message says online (with health); the last will, offline."""

    schema: str = STATUS_SCHEMA
    probe_id: ProbeId
    state: Literal["online", "offline"]
    at: UtcTime | None = None
    health: ProbeHealth | None = None


Message = TypeVar("Message", ProbeMeta, ProbeStatus)
_meta_decoder = msgspec.json.Decoder(ProbeMeta)
_status_decoder = msgspec.json.Decoder(ProbeStatus)


def encode(message: ProbeMeta | ProbeStatus) -> bytes:
    return msgspec.json.encode(message)


def decode_meta(data: bytes) -> ProbeMeta:
    return _decode(_meta_decoder, data, META_SCHEMA)


def decode_status(data: bytes) -> ProbeStatus:
    return _decode(_status_decoder, data, STATUS_SCHEMA)


def _decode(decoder: msgspec.json.Decoder[Message], data: bytes, schema: str) -> Message:
    message = decode_json(
        decoder, data, max_bytes=MAX_FLEET_MESSAGE_BYTES, hint=f"follow schema {schema}"
    )
    if message.schema != schema:
        raise WireError("$.schema", f"unsupported schema {message.schema!r}, expected {schema!r}")
    check_names(_names(message))
    return message


def _names(message: ProbeMeta | ProbeStatus) -> dict[str, str]:
    if isinstance(message, ProbeStatus):
        budgets = message.health.budgets if message.health else ()
        return {f"$.health.budgets[{n}].interface": b.interface for n, b in enumerate(budgets)}
    names = {
        "$.location.village": message.location.village,
        "$.agent_version": message.agent_version,
    }
    for n, link in enumerate(message.links):
        names[f"$.links[{n}].interface"] = link.interface
        names[f"$.links[{n}].operator"] = link.operator
    return names
