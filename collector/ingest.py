"""Deciding whether a message on a result topic becomes evidence: pure checks, no I/O.

Each refusal has a reason (the `qos_collector_results_rejected_total` label). A permanent refusal
of a result whose id we could read, sent on its own probe's topic, is answered with a "rejected"
receipt so the probe drops it from its spool: sending it again could never succeed. A transient
one (not enrolled yet, a different probe's topic, too large to parse, an enrollment change waiting
for an operator) gets no receipt, so the probe keeps the result and sends it again later.

Identity is the enrollment (collector/registry.py): a result is checked against its probe's pinned
key and stored at its pinned location. While a probe's enrollment is disputed (another key or
location waits for an operator's approval) nothing that disagrees with the pin is refused for
good: it may be the genuine probe, re-keyed or moved, whose results must stay in its spool.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import msgspec

from collector.registry import Enrollment
from contract.errors import QosfleetError, WireError, WireLimitError
from contract.result import (
    MAX_BATCH,
    MAX_FUTURE_SKEW,
    MAX_RESULT_BYTES,
    Location,
    Result,
    Throughput,
    check_result,
    split_batch,
)
from contract.signing import Signed, holds, signed
from contract.typed import decode_json

Reason = Literal[
    "too-large",
    "too-deep",
    "malformed",
    "topic-mismatch",
    "not-enrolled",
    "unsigned",
    "bad-signature",
    "future",
    "too-old",
    "implausible",
    "inconsistent",
    "location-mismatch",
    "disputed",
    "revoked",
    "replay",
]
# Refusals that sending the same bytes again can never overturn.
PERMANENT: frozenset[Reason] = frozenset(
    {
        "malformed",
        "unsigned",
        "bad-signature",
        "future",
        "too-old",
        "implausible",
        "inconsistent",
        "location-mismatch",
    }
)
Requirement = Literal["required", "optional"]

# Keep below the store's retention: VictoriaMetrics drops older samples silently, after the
# receipt would already have said "stored".
MAX_AGE = timedelta(days=30)
# Vietnam, mainland and islands (Hoàng Sa, Trường Sa), with a margin: a probe placed outside
# is a misconfigured probe (0, 0 is the usual one).
LAT_RANGE = (6.0, 24.0)
LON_RANGE = (102.0, 118.0)
# `seq` is stored as a float64 sample: beyond 2**53 it would no longer be exact.
MAX_SEQ = 2**53
# How far a reported rate may be from bytes / duration (contract: mbps is exactly that). Every
# runner computes it from the same two numbers, so a genuine result is off by float rounding
# only; the margin also covers an agent that rounds the rate (0.01 Mb/s) or the duration (1 %).
RATE_TOLERANCE = 0.01
RATE_TOLERANCE_MBPS = 0.01


class IngestPolicy(msgspec.Struct, frozen=True, kw_only=True):
    signatures: Requirement = "required"
    enrollment: Requirement = "required"
    max_payload_bytes: int = MAX_RESULT_BYTES
    max_age_s: float = MAX_AGE.total_seconds()


class ResultRejectedError(QosfleetError):
    """A result refused; `reason` is the counter label, `result_id` set when a receipt can go."""

    def __init__(self, reason: Reason, detail: str, result_id: uuid.UUID | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail
        self.result_id = result_id

    @property
    def permanent(self) -> bool:
        return self.reason in PERMANENT


class Candidate(NamedTuple):
    """A result that passed every check but its signature, and what to check that with."""

    result: Result
    enrollment: Enrollment | None

    @property
    def location(self) -> Location | None:
        """Where the sample was taken: the enrollment's (the result agrees), else the result's."""
        if self.enrollment is not None:
            return self.enrollment.location
        return self.result.location


class _Identity(msgspec.Struct):
    """Just enough of a malformed result to address a receipt to it."""

    id: uuid.UUID
    probe_id: str


_decoder = msgspec.json.Decoder(Result)
_identity_decoder = msgspec.json.Decoder(_Identity)


def probe_id_of(topic: str) -> str:
    """'qos/v1/<probe_id>/<kind>' -> '<probe_id>' ('' when the topic has another shape)."""
    parts = topic.split("/")
    return parts[2] if len(parts) == 4 else ""  # noqa: PLR2004 - the v1 topic has four levels


def check(
    topic: str,
    payload: bytes,
    *,
    now: datetime,
    policy: IngestPolicy,
    enrollment_of: Callable[[str], Enrollment | None],
) -> Candidate:
    """Every check but the signature (which costs more than all others: see `verify`)."""
    sender = probe_id_of(topic)
    result = _decode(payload, sender, policy.max_payload_bytes)
    if sender != result.probe_id:
        raise ResultRejectedError(
            "topic-mismatch", f"topic {topic!r} carries a result of probe {result.probe_id!r}"
        )
    _check_window(result, now, policy)
    try:
        check_result(result, now=now)
    except WireError as exc:
        raise ResultRejectedError("malformed", exc.message, result.id) from exc
    _check_plausible(result)
    _check_consistent(result)
    enrollment = enrollment_of(result.probe_id)
    if enrollment is None and (policy.enrollment == "required" or result.location is None):
        raise ResultRejectedError(
            "not-enrolled", f"no enrollment (retained meta) seen for probe {result.probe_id}"
        )
    if enrollment is not None:
        _check_enrollment(result, enrollment)
    if result.signature is None and policy.signatures == "required":
        raise ResultRejectedError(
            "unsigned", "results must be signed (collector --signatures required)", result.id
        )
    if enrollment is None and policy.signatures == "required":
        raise ResultRejectedError("not-enrolled", f"no public key known for {result.probe_id}")
    return Candidate(result, enrollment)


def split(payload: bytes, policy: IngestPolicy) -> tuple[bytes, ...]:
    """A batch message's results, each for `check`; refused whole only when its envelope is bad.

    No result in a refused envelope can be told apart, so none gets a receipt: the probe sends
    them again (and the log tells its operator why).
    """
    cap = policy.max_payload_bytes * MAX_BATCH
    if len(payload) > cap:
        raise ResultRejectedError("too-large", f"batch of {len(payload)} bytes > {cap}")
    try:
        return split_batch(payload)
    except WireLimitError as exc:
        raise ResultRejectedError(exc.limit, f"batch {exc.message}") from exc
    except WireError as exc:
        raise ResultRejectedError("malformed", f"batch {exc.message}") from exc


def verify(candidate: Candidate) -> ResultRejectedError | None:
    """Check the signature when there is one and a key to check it with, in this process."""
    item = signed_part(candidate)
    if item is None or holds(item):
        return None
    return signature_refusal(candidate)


def signed_part(candidate: Candidate) -> Signed | None:
    """What checking the signature needs (None: unsigned, or no key to check it with)."""
    result, enrollment = candidate
    if result.signature is None or enrollment is None:
        return None
    return signed(result, enrollment.public_key)


def signature_refusal(candidate: Candidate) -> ResultRejectedError:
    """The refusal of a result whose signature does not hold."""
    result, enrollment = candidate
    if enrollment is not None and enrollment.standing == "disputed":
        return ResultRejectedError(
            "disputed",
            f"not signed by the pinned key of {result.probe_id}, whose enrollment changed: "
            "kept on the probe until an operator runs `qos-collector probes approve`",
        )
    return ResultRejectedError(
        "bad-signature", "$.signature: does not match the result and the probe's key", result.id
    )


def _decode(payload: bytes, sender: str, max_bytes: int) -> Result:
    try:
        return decode_json(_decoder, payload, max_bytes=max_bytes)
    except WireLimitError as exc:
        # Nothing in it can be read safely, so no receipt: the probe's operator sees the count.
        raise ResultRejectedError(exc.limit, exc.message) from exc
    except WireError as exc:
        raise ResultRejectedError("malformed", exc.message, _identity(payload, sender)) from exc


def _identity(payload: bytes, sender: str) -> uuid.UUID | None:
    """The id of a malformed result sent on its own probe's topic, else None (no receipt)."""
    try:
        identity = decode_json(_identity_decoder, payload, max_bytes=len(payload))
    except WireError:
        return None
    return identity.id if identity.probe_id == sender else None


def _check_window(result: Result, now: datetime, policy: IngestPolicy) -> None:
    if result.finished_at > now + MAX_FUTURE_SKEW:
        raise ResultRejectedError(
            "future",
            f"finished_at {result.finished_at.isoformat()} is ahead of the collector's clock "
            f"by more than {MAX_FUTURE_SKEW}: synchronise the probe's clock",
            result.id,
        )
    oldest = now - timedelta(seconds=policy.max_age_s)
    if result.finished_at < oldest:
        raise ResultRejectedError(
            "too-old",
            f"finished_at {result.finished_at.isoformat()} is older than "
            f"{oldest.astimezone(UTC).isoformat()} (collector --max-age-days)",
            result.id,
        )


def _check_plausible(result: Result) -> None:
    location = result.location
    if location is not None and not (
        LAT_RANGE[0] <= location.lat <= LAT_RANGE[1]
        and LON_RANGE[0] <= location.lon <= LON_RANGE[1]
    ):
        raise ResultRejectedError(
            "implausible",
            f"location {location.lat}, {location.lon} is outside Vietnam: fix the probe's config",
            result.id,
        )
    if result.seq >= MAX_SEQ:
        raise ResultRejectedError("implausible", f"seq {result.seq} >= 2**53", result.id)


def rate_is_consistent(throughput: Throughput) -> bool:
    """Whether `mbps` is what `bytes` moved in `duration_s` take, within rounding."""
    if throughput.duration_s <= 0:
        return throughput.bytes == 0 and throughput.mbps == 0
    expected = throughput.bytes * 8 / throughput.duration_s / 1e6
    margin = max(RATE_TOLERANCE * expected, RATE_TOLERANCE_MBPS)
    return abs(throughput.mbps - expected) <= margin


def _check_consistent(result: Result) -> None:
    measurements = result.measurements
    for direction, throughput in (
        ("download", measurements.download),
        ("upload", measurements.upload),
    ):
        if throughput is not None and not rate_is_consistent(throughput):
            raise ResultRejectedError(
                "inconsistent",
                f"{direction} {throughput.mbps} Mb/s is not {throughput.bytes} bytes in "
                f"{throughput.duration_s} s: the probe's runner is broken or the result forged",
                result.id,
            )


def _check_enrollment(result: Result, enrollment: Enrollment) -> None:
    """The probe is in good standing and the result claims the place it is enrolled at."""
    if enrollment.standing == "revoked":
        raise ResultRejectedError(
            "revoked",
            f"probe {result.probe_id} was revoked by an operator (`qos-collector probes list`)",
        )
    claimed = result.location
    if claimed is None or claimed == enrollment.location:
        return
    detail = (
        f"claims {claimed.village} ({claimed.commune_code}, {claimed.province_code}) but "
        f"{result.probe_id} is enrolled in {enrollment.location.village} "
        f"({enrollment.location.commune_code}, {enrollment.location.province_code})"
    )
    if enrollment.standing == "disputed":
        raise ResultRejectedError(
            "disputed", f"{detail}; its new enrollment waits for `qos-collector probes approve`"
        )
    raise ResultRejectedError("location-mismatch", detail, result.id)
