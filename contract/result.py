"""Wire contract v1: the result envelope a probe publishes and a collector stores.

Frozen msgspec Structs are the one type system of the project. Readers ignore unknown fields, so a
v1 writer may add optional fields; a breaking change is a new major version on a new topic prefix.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec

from contract.errors import WireError

SCHEMA = "qosfleet.result/1"
TOPIC_PREFIX = "qos/v1"

# The fastest link anyone will measure this decade is far below 100 Gb/s; beyond is a bug or a lie.
MAX_MBPS = 100_000.0
# A probe whose clock runs ahead by more than this is not believed.
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Nothing was measured by this fleet before it existed.
EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
MAX_TEST_DURATION = timedelta(hours=1)

Mbps = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_MBPS)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=600_000.0)]
Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
ProbeId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

Access = Literal["fixed", "mobile"]
Technology = Literal["ftth", "cable", "dsl", "fwa", "3g", "4g", "5g", "unknown"]
StopReason = Literal["duration", "stable", "budget", "error"]
Ipv6Status = Literal["works", "no-v6", "broken-route", "dns-only", "pmtud-blackhole"]
LatencyMethod = Literal["icmp", "tcp-connect", "http-echo"]

PROBE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class Frozen(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every wire type: immutable, keyword-only, defaults left off the wire."""


class Clock(Frozen):
    synced: bool
    offset_ms: float | None = None


class Location(Frozen):
    province_code: Annotated[str, msgspec.Meta(pattern=r"^\d{2}$")]
    commune_code: Annotated[str, msgspec.Meta(pattern=r"^\d{5}$")]
    village: Name
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]


class Plan(Frozen):
    """The subscribed plan's advertised rates (QCVN 34 Vd / Vu)."""

    download_mbps: Mbps
    upload_mbps: Mbps


class Radio(Frozen):
    rat: str | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None
    cell: str | None = None
    band: str | None = None


class Link(Frozen):
    interface: Annotated[str, msgspec.Meta(min_length=1, max_length=15)]
    access: Access
    technology: Technology
    operator: Name
    plan: Plan | None = None
    radio: Radio | None = None


class Target(Frozen):
    id: Name
    address: Name
    ip_version: Literal[4, 6]


class Throughput(Frozen):
    """One direction of a speed test. `mbps` = bytes / duration of the measured phase (QCVN)."""

    mbps: Mbps
    bytes: Count
    duration_s: Seconds
    flows: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    warmup_s: Seconds = 0.0


class LatencyStats(Frozen):
    median_ms: Millis
    p95_ms: Millis
    jitter_ms: Millis
    loss: Ratio
    count: Count
    method: LatencyMethod


class Latency(Frozen):
    idle: LatencyStats | None = None
    loaded: LatencyStats | None = None


class Ipv6(Frozen):
    status: Ipv6Status
    evidence: dict[str, str | int | float | bool] = {}


class Measurements(Frozen):
    download: Throughput | None = None
    upload: Throughput | None = None
    latency: Latency | None = None
    ipv6: Ipv6 | None = None


class Provenance(Frozen):
    agent_version: Name
    runner: Name
    tool_version: str | None = None
    flows: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    warmup_s: Seconds = 0.0
    stop_reason: StopReason = "duration"
    bytes_used: Count = 0
    cpu_peak_percent: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] | None = None
    probe_limited: bool = False
    # Relative half-width of the 95 % interval of the download estimate (0.02 = +/- 2 %).
    confidence: Ratio | None = None


class MeasurementError(Frozen):
    """Failure is data: a test that could not run is reported, never dropped."""

    stage: Name
    code: Name
    message: Annotated[str, msgspec.Meta(max_length=2000)]


class Result(Frozen):
    schema: str
    id: uuid.UUID
    probe_id: ProbeId
    seq: Count
    started_at: UtcTime
    finished_at: UtcTime
    clock: Clock
    link: Link
    target: Target
    measurements: Measurements
    provenance: Provenance
    location: Location | None = None
    errors: tuple[MeasurementError, ...] = ()
    signature: str | None = None


def result_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/result"


def receipt_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/receipt"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Result)
_AT = re.compile(r" - at `(?P<path>[^`]*)`$")


def encode_result(result: Result) -> bytes:
    return _encoder.encode(result)


def canonical_bytes(result: Result) -> bytes:
    """The bytes a signature covers: the result without its signature, keys in a fixed order."""
    unsigned = msgspec.structs.replace(result, signature=None)
    return msgspec.json.encode(unsigned, order="deterministic")


def decode_result(data: bytes | str, *, now: datetime | None = None) -> Result:
    """Decode and validate one result; raise WireError naming the offending field."""
    try:
        result = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        field = match.group("path") if match else "$"
        reason = _AT.sub("", text)
        raise WireError(field, reason, "fix the sender to follow schema qosfleet.result/1") from exc
    except msgspec.DecodeError as exc:
        raise WireError("$", f"not valid JSON ({exc})", "send one UTF-8 JSON object") from exc
    check_result(result, now=now or datetime.now(UTC))
    return result


def check_result(result: Result, *, now: datetime) -> None:
    """Checks a type cannot express: schema version, UUIDv7, a sane time window."""
    if result.schema != SCHEMA:
        raise WireError(
            "$.schema",
            f"unsupported schema {result.schema!r}, expected {SCHEMA!r}",
            "a new major version is published on its own topic prefix",
        )
    if result.id.version != 7:  # noqa: PLR2004 - UUID version 7, by contract
        raise WireError("$.id", f"must be a UUIDv7, got version {result.id.version}")
    if result.finished_at < result.started_at:
        raise WireError("$.finished_at", "is before started_at")
    if result.finished_at - result.started_at > MAX_TEST_DURATION:
        raise WireError("$.finished_at", "test lasted longer than one hour")
    if result.finished_at > now + MAX_FUTURE_SKEW:
        raise WireError(
            "$.finished_at",
            f"{result.finished_at.isoformat()} is in the future",
            "synchronise the probe's clock (chrony / systemd-timesyncd)",
        )
    if result.started_at < EARLIEST:
        raise WireError("$.started_at", f"{result.started_at.isoformat()} predates the fleet")
