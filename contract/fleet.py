"""What a probe says about itself: enrollment (retained meta) and liveness (retained status)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from contract.errors import WireError
from contract.result import (
    TOPIC_PREFIX,
    Clock,
    Frozen,
    Link,
    Location,
    ProbeId,
    UtcTime,
)
from contract.typed import split_validation_error

META_SCHEMA = "qosfleet.meta/1"
STATUS_SCHEMA = "qosfleet.status/1"


def meta_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/meta"


def status_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/status"


class ProbeMeta(Frozen, frozen=True, kw_only=True):
    """Enrollment, published retained: where the probe is, its links, and its signing key."""

    schema: str = META_SCHEMA
    probe_id: ProbeId
    location: Location
    links: tuple[Link, ...]
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    agent_version: str


class LinkBudget(Frozen, frozen=True, kw_only=True):
    interface: str
    used_bytes: Annotated[int, msgspec.Meta(ge=0)]
    cap_bytes: Annotated[int, msgspec.Meta(ge=0)]
    # Tests skipped this month because their estimated bytes exceeded what was left.
    skipped_tests: Annotated[int, msgspec.Meta(ge=0)] = 0


class ProbeHealth(Frozen, frozen=True, kw_only=True):
    clock: Clock
    disk_free_bytes: int | None = None
    cpu_temperature_c: float | None = None
    spool_depth: Annotated[int, msgspec.Meta(ge=0)] = 0
    budgets: tuple[LinkBudget, ...] = ()
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
    try:
        message = decoder.decode(data)
    except msgspec.ValidationError as exc:
        path, reason = split_validation_error(exc)
        raise WireError(f"$.{path}", reason) from exc
    except msgspec.DecodeError as exc:
        raise WireError("$", f"not valid JSON ({exc})") from exc
    if message.schema != schema:
        raise WireError("$.schema", f"unsupported schema {message.schema!r}, expected {schema!r}")
    return message
