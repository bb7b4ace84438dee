"""Every refusal of collector/ingest.py: its reason, and whether the probe may drop the result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from collector.ingest import (
    Candidate,
    IngestPolicy,
    ResultRejectedError,
    check,
    verify,
)
from collector.registry import Enrollment
from contract.fleet import ProbeMeta
from contract.result import Link, Result, encode_result, result_topic
from contract.signing import new_private_key, parse_public_key, public_key_text, sign_result
from tests.strategies import sample_result

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PROBE = "vn-79-unit"
KEY = new_private_key()
REQUIRED = IngestPolicy()
OPTIONAL = IngestPolicy(signatures="optional", enrollment="optional")


def _enrollment() -> Enrollment:
    location = sample_result(PROBE).location
    assert location is not None
    meta = ProbeMeta(
        probe_id=PROBE,
        location=location,
        links=(Link(interface="wwan0", access="mobile", technology="4g", operator="Viettel"),),
        public_key=public_key_text(KEY),
        agent_version="0.1.0",
    )
    return Enrollment(meta=meta, public_key=parse_public_key(meta.public_key))


ENROLLED = _enrollment()


def _result(**changes: object) -> Result:
    result = sample_result(PROBE, finished_at=NOW - timedelta(minutes=1))
    return msgspec.structs.replace(result, **changes)


def _check(
    payload: bytes, *, policy: IngestPolicy = REQUIRED, topic: str = result_topic(PROBE)
) -> Candidate:
    return check(
        topic,
        payload,
        now=NOW,
        policy=policy,
        enrollment_of=lambda probe_id: ENROLLED if probe_id == PROBE else None,
    )


def _refusal(payload: bytes, **kwargs: object) -> ResultRejectedError:
    with pytest.raises(ResultRejectedError) as caught:
        _check(payload, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_a_signed_result_of_an_enrolled_probe_passes() -> None:
    candidate = _check(encode_result(sign_result(_result(), KEY)))
    assert candidate.enrollment is ENROLLED
    assert verify(candidate) is None


@pytest.mark.parametrize(
    ("payload", "reason", "receipt"),
    [
        (b"x" * 70_000, "too-large", False),
        (b'{"x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "too-deep", False),
        (b"{not json", "malformed", False),
        (encode_result(sign_result(_result(probe_id="vn-79-else"), KEY)), "topic-mismatch", False),
        (encode_result(_result()), "unsigned", True),
        (
            encode_result(sign_result(_result(finished_at=NOW + timedelta(hours=1)), KEY)),
            "future",
            True,
        ),
        (
            encode_result(
                sign_result(
                    _result(
                        started_at=NOW - timedelta(days=40),
                        finished_at=NOW - timedelta(days=40),
                    ),
                    KEY,
                )
            ),
            "too-old",
            True,
        ),
        (encode_result(sign_result(_result(schema="qosfleet.result/2"), KEY)), "malformed", True),
        (encode_result(sign_result(_result(seq=2**60), KEY)), "implausible", True),
    ],
)
def test_refusals_name_their_reason_and_whether_a_receipt_may_go(
    payload: bytes, reason: str, receipt: bool
) -> None:
    refusal = _refusal(payload)
    assert refusal.reason == reason
    assert (refusal.permanent and refusal.result_id is not None) is receipt


def test_a_malformed_result_on_its_own_topic_can_still_be_refused_by_id() -> None:
    document = msgspec.json.decode(encode_result(_result()))
    document["measurements"]["download"]["mbps"] = -1
    refusal = _refusal(msgspec.json.encode(document))
    assert refusal.reason == "malformed"
    assert "mbps" in refusal.detail
    assert str(refusal.result_id) == document["id"]


def test_a_probe_outside_vietnam_is_implausible() -> None:
    location = msgspec.structs.replace(ENROLLED.location, lat=0.0, lon=0.0)
    refusal = _refusal(encode_result(sign_result(_result(location=location), KEY)))
    assert refusal.reason == "implausible"


def test_unknown_probes_wait_for_enrollment_without_a_receipt() -> None:
    other = sample_result("vn-79-stranger", finished_at=NOW)
    refusal = _refusal(encode_result(other), topic=result_topic("vn-79-stranger"))
    assert refusal.reason == "not-enrolled"
    assert not refusal.permanent


def test_optional_policy_stores_unsigned_results_with_a_location() -> None:
    other = sample_result("vn-79-stranger", finished_at=NOW)
    candidate = _check(encode_result(other), policy=OPTIONAL, topic=result_topic(other.probe_id))
    assert candidate.enrollment is None
    assert verify(candidate) is None
    unlocated = msgspec.structs.replace(other, location=None)
    refusal = _refusal(
        encode_result(unlocated), policy=OPTIONAL, topic=result_topic(other.probe_id)
    )
    assert refusal.reason == "not-enrolled"


def test_a_result_without_location_is_placed_by_its_enrollment() -> None:
    candidate = _check(encode_result(sign_result(_result(location=None), KEY)))
    assert candidate.location == ENROLLED.location


def test_a_signature_by_another_key_is_refused_for_good() -> None:
    forged = sign_result(_result(), new_private_key())
    refusal = verify(_check(encode_result(forged)))
    assert refusal is not None
    assert refusal.reason == "bad-signature"
    assert refusal.permanent
    assert refusal.result_id == forged.id
