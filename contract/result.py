"""Wire contract v1: the result envelope a probe publishes and a collector stores.

Frozen msgspec Structs are the one type system of the project. Readers ignore unknown fields, so a
v1 writer may add optional fields; a breaking change is a new major version on a new topic prefix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple

import msgspec

from contract.errors import WireError
from contract.typed import decode_json

SCHEMA = "qosfleet.result/1"
BATCH_SCHEMA = "qosfleet.batch/1"
TOPIC_PREFIX = "qos/v1"
# A result is ~2 KB; a payload 30 times that is a bug or an attack.
MAX_RESULT_BYTES = 64 * 1024
# A receipt carries at most MAX_BATCH ids and a short reason.
MAX_RECEIPT_BYTES = 16 * 1024
# Results per batch message: enough to cut the per-message cost of a spool drain fifty-fold, few
# enough that one batch of ordinary results (~2 KB each) stays far below the broker's packet cap.
MAX_BATCH = 50

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
MAX_NAME_LENGTH = 200
# A village, operator, target, ...: printable text as well, checked by `check_names` (a length is
# all a type can say cheaply: a pattern per field would cost more than the rest of a decode).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
# A network interface as Linux names it: at most 15 bytes.
Interface = Annotated[str, msgspec.Meta(min_length=1, max_length=15)]

Access = Literal["fixed", "mobile"]
Technology = Literal["ftth", "cable", "dsl", "fwa", "3g", "4g", "5g", "unknown"]
StopReason = Literal["duration", "stable", "budget", "error"]
Ipv6Status = Literal["works", "no-v6", "broken-route", "dns-only", "pmtud-blackhole"]
LatencyMethod = Literal["icmp", "tcp-connect", "http-echo"]
# Where a sample is taken, as QCVN 81/126 count their sample mix: a probe indoors, at a fixed point
# outdoors, or on the move (a drive test). Declared per link at enrollment.
Setting = Literal["indoor", "outdoor_fixed", "outdoor_moving"]

PROBE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class Frozen(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every wire type: immutable, keyword-only, defaults left off the wire."""


class Clock(Frozen, frozen=True, kw_only=True):
    synced: bool | None  # None: the probe could not tell
    offset_ms: float | None = None


class Location(Frozen, frozen=True, kw_only=True):
    province_code: Annotated[str, msgspec.Meta(pattern=r"^\d{2}$")]
    commune_code: Annotated[str, msgspec.Meta(pattern=r"^\d{5}$")]
    village: Name
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]


class Plan(Frozen, frozen=True, kw_only=True):
    """The subscribed plan's advertised rates (QCVN 34 Vd / Vu)."""

    download_mbps: Mbps
    upload_mbps: Mbps


class Radio(Frozen, frozen=True, kw_only=True):
    rat: str | None = None
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None
    cell: str | None = None
    band: str | None = None
    # ModemManager's modem state (connected, registered, searching, ...): explains a failed test.
    modem_state: str | None = None


class Link(Frozen, frozen=True, kw_only=True):
    interface: Interface
    access: Access
    technology: Technology
    operator: Name
    plan: Plan | None = None
    radio: Radio | None = None
    # Absent in older payloads and on links enrolled without one: counted in no sample-mix part.
    setting: Setting | None = None


class Target(Frozen, frozen=True, kw_only=True):
    id: Name
    address: Name
    ip_version: Literal[4, 6]


class Block(Frozen, frozen=True, kw_only=True):
    """What every measurement block carries beside its own figures: when that measurement ran
    (a sample can be held against the link's rate in that exact window) and the bytes it moved.
    Absent in results written before blocks carried them; a failed measurement's reason is in the
    result's `errors`, under the kind's stage."""

    started_at: UtcTime | None = None
    finished_at: UtcTime | None = None
    bytes_used: Count | None = None


class Throughput(Block, frozen=True, kw_only=True):
    """One direction of a speed test. `mbps` = bytes / duration of the measured phase (QCVN)."""

    mbps: Mbps
    bytes: Count
    duration_s: Seconds
    flows: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    warmup_s: Seconds = 0.0
    # Why this direction stopped, and the relative half-width of its rate's 95 % interval
    # (provenance carries the download's; these keep the upload's too). Absent in older payloads.
    stop_reason: StopReason | None = None
    confidence: Ratio | None = None
    # False: the test ended while this rate was still climbing (a long path whose TCP windows had
    # not opened yet), so it is a lower bound, not the link's rate. Absent (older payloads, and
    # every converged block): True, or unknown.
    converged: bool = True


class LatencyStats(Block, frozen=True, kw_only=True):
    median_ms: Millis
    p95_ms: Millis
    jitter_ms: Millis
    loss: Ratio
    count: Count
    method: LatencyMethod


class Latency(Frozen, frozen=True, kw_only=True):
    idle: LatencyStats | None = None
    loaded: LatencyStats | None = None


class Ipv6(Block, frozen=True, kw_only=True):
    status: Ipv6Status
    evidence: dict[str, str | int | float | bool] = {}


# A measurement kind's or a measured quantity's name: it becomes part of series names.
KindName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# A measured value in its quantity's unit (contract.quantities); beyond is a bug or a lie.
MeasuredValue = Annotated[float, msgspec.Meta(ge=0.0, le=1e9)]


class KindBlock(Block, frozen=True, kw_only=True):
    """The block of a kind added as a plugin (agent/measurements): its measured quantities, each
    in the unit the kind declares (`values` is empty when the measurement failed)."""

    values: dict[KindName, MeasuredValue] = {}


class Measurements(Frozen, frozen=True, kw_only=True):
    download: Throughput | None = None
    upload: Throughput | None = None
    latency: Latency | None = None
    ipv6: Ipv6 | None = None
    # Kinds beyond these four, by kind name: readers ignore a kind they do not know.
    kinds: dict[KindName, KindBlock] = {}


class HealthSnapshot(Frozen, frozen=True, kw_only=True):
    """The probe's own state when it measured, so a strange result can be explained later."""

    disk_free_bytes: Count | None = None
    cpu_temperature_c: float | None = None
    spool_depth: Count | None = None
    # Bytes left this month on the measured link's budget (absent: the link has no cap).
    budget_left_bytes: Count | None = None


class Provenance(Frozen, frozen=True, kw_only=True):
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
    health: HealthSnapshot | None = None
    # Seconds from the previous speed attempt on this link that counted under the QCVN minimum gap
    # between two samples of one device (contract.sampling); None: none before it.
    gap_s: Annotated[float, msgspec.Meta(ge=0.0)] | None = None


class MeasurementError(Frozen, frozen=True, kw_only=True):
    """Failure is data: a test that could not run is reported, never dropped."""

    stage: Name
    code: Name
    message: Annotated[str, msgspec.Meta(max_length=2000)]


class Result(Frozen, frozen=True, kw_only=True):
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


def results_topic(probe_id: str) -> str:
    """Where a probe publishes a ResultBatch: the same checks per result, one message for many."""
    return f"{TOPIC_PREFIX}/{probe_id}/results"


def receipt_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/receipt"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Result)


def encode_result(result: Result) -> bytes:
    return _encoder.encode(result)


def canonical_bytes(result: Result) -> bytes:
    """The bytes a signature covers: the result without its signature, keys in a fixed order."""
    unsigned = msgspec.structs.replace(result, signature=None)
    return msgspec.json.encode(unsigned, order="deterministic")


def decode_result(data: bytes | str, *, now: datetime | None = None) -> Result:
    """Decode and validate one result; raise WireError naming the offending field."""
    result = decode_json(
        _decoder, data, max_bytes=MAX_RESULT_BYTES, hint=f"fix the sender to follow schema {SCHEMA}"
    )
    check_result(result, now=now or datetime.now(UTC))
    return result


def check_names(names: Mapping[str, str]) -> None:
    """Every name (field path -> value) is printable text; else WireError names the field.

    Printable as Python says (`str.isprintable`): no control character (a newline would forge a
    log line, an escape drive a terminal), no line separator, no invisible format character (a
    bidirectional override makes text read as something else, a zero-width one makes two labels
    that look the same), no unassigned code point. Spaces are fine.
    """
    if "".join(names.values()).isprintable():
        return
    for field, name in names.items():
        if not name.isprintable():
            raise WireError(
                field,
                "holds a character that is not printable (a control, separator or invisible "
                "formatting character)",
                "names are plain text: fix the probe's configuration",
            )


def _names(result: Result) -> dict[str, str]:
    names = {
        "$.link.interface": result.link.interface,
        "$.link.operator": result.link.operator,
        "$.target.id": result.target.id,
        "$.target.address": result.target.address,
        "$.provenance.agent_version": result.provenance.agent_version,
        "$.provenance.runner": result.provenance.runner,
    }
    if result.location is not None:
        names["$.location.village"] = result.location.village
    for index, error in enumerate(result.errors):
        names[f"$.errors[{index}].stage"] = error.stage
        names[f"$.errors[{index}].code"] = error.code
    return names


def check_result(result: Result, *, now: datetime) -> None:
    """Checks a type cannot express: schema version, UUIDv7, a sane time window, names."""
    link, target, provenance, location = (
        result.link,
        result.target,
        result.provenance,
        result.location,
    )
    # Per result on the collector's busiest path: one test of all the names at once, and the
    # field-by-field search only when it fails (or for the rare result with errors).
    names = (
        link.interface,
        link.operator,
        target.id,
        target.address,
        provenance.agent_version,
        provenance.runner,
        location.village if location else "",
    )
    if result.errors or not "".join(names).isprintable():
        check_names(_names(result))
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


class ResultBatch(Frozen, frozen=True, kw_only=True):
    """Results of one probe in one message (a spool drain): 1 to MAX_BATCH of them.

    Each result is validated on its own, so one bad result refuses only itself; that the
    results belong to the topic's probe is checked per result by the collector.
    """

    schema: str
    results: tuple[Result, ...]


class _RawBatch(msgspec.Struct, frozen=True):
    """A batch with its results left as bytes: each goes through the single-result checks."""

    schema: str
    results: tuple[msgspec.Raw, ...]


_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)


def encode_batch(batch: ResultBatch) -> bytes:
    _check_count(len(batch.results))
    if len({result.probe_id for result in batch.results}) > 1:
        raise ValueError("a batch carries the results of one probe")
    return _encoder.encode(batch)


def encode_batch_payloads(payloads: Sequence[bytes]) -> bytes:
    """A batch of results already encoded (a probe's spool keeps them so), without re-encoding."""
    _check_count(len(payloads))
    return _encoder.encode(_RawBatch(BATCH_SCHEMA, tuple(msgspec.Raw(p) for p in payloads)))


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} results, not {count}")


def split_batch(data: bytes | str) -> tuple[bytes, ...]:
    """The envelope's checks; each result's bytes, for the single-result checks one by one."""
    envelope = decode_json(
        _raw_batch_decoder,
        data,
        max_bytes=MAX_BATCH * MAX_RESULT_BYTES,
        hint=f"fix the sender to follow schema {BATCH_SCHEMA}",
    )
    if envelope.schema != BATCH_SCHEMA:
        raise WireError(
            "$.schema", f"unsupported schema {envelope.schema!r}, expected {BATCH_SCHEMA!r}"
        )
    if not 1 <= len(envelope.results) <= MAX_BATCH:
        raise WireError(
            "$.results", f"holds {len(envelope.results)} results, expected 1 to {MAX_BATCH}"
        )
    return tuple(bytes(raw) for raw in envelope.results)


class DecodedBatch(NamedTuple):
    """The valid results of a batch, and a WireError for each invalid one (path names its index)."""

    results: tuple[Result, ...]
    errors: tuple[WireError, ...]


def decode_batch(data: bytes | str, *, now: datetime | None = None) -> DecodedBatch:
    """Decode a batch; raise WireError only for the envelope, never for one result in it."""
    now = now or datetime.now(UTC)
    results: list[Result] = []
    errors: list[WireError] = []
    for index, element in enumerate(split_batch(data)):
        try:
            results.append(decode_result(element, now=now))
        except WireError as exc:
            field = f"$.results[{index}]{exc.field.removeprefix('$')}"
            errors.append(WireError(field, exc.reason, exc.hint))
    return DecodedBatch(tuple(results), tuple(errors))


class Receipt(Frozen, frozen=True, kw_only=True):
    """The collector's word that a result is durably stored (or refused for good).

    `also` lists more results with the same status: one receipt answers a whole batch. Left off
    the wire when empty, so a receipt for one result reads as it always did.
    """

    id: uuid.UUID
    status: Literal["stored", "rejected"]
    reason: str | None = None
    also: tuple[uuid.UUID, ...] = ()

    def ids(self) -> tuple[uuid.UUID, ...]:
        return (self.id, *self.also)


_receipt_decoder = msgspec.json.Decoder(Receipt)


def encode_receipt(receipt: Receipt) -> bytes:
    return _encoder.encode(receipt)


def decode_receipt(data: bytes | str) -> Receipt:
    return decode_json(
        _receipt_decoder, data, max_bytes=MAX_RECEIPT_BYTES, hint="not a receipt of schema v1"
    )
