"""Every refusal of collector/ingest.py: its reason, and whether the probe may drop the result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import given

from agent.measurements.iperf3 import parse_report
from collector.ingest import (
    Candidate,
    IngestPolicy,
    ResultRejectedError,
    check,
    rate_is_consistent,
    verify,
)
from collector.registry import Enrollment, Standing
from contract.result import Measurements, Result, Throughput, encode_result, result_topic
from contract.signing import new_private_key, sign_result
from tests.strategies import sample_result, throughput

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
IPERF3_FIXTURES = Path(__file__).parents[2] / "fixtures" / "iperf3"
PROBE = "vn-79-unit"
KEY = new_private_key()
REQUIRED = IngestPolicy()
OPTIONAL = IngestPolicy(signatures="optional", enrollment="optional")


def _enrollment(standing: Standing = "trusted") -> Enrollment:
    location = sample_result(PROBE).location
    assert location is not None
    return Enrollment(location, KEY.public_key(), standing)


ENROLLED = _enrollment()


def _result(**changes: object) -> Result:
    result = sample_result(PROBE, finished_at=NOW - timedelta(minutes=1))
    return msgspec.structs.replace(result, **changes)


def _check(
    payload: bytes,
    *,
    policy: IngestPolicy = REQUIRED,
    topic: str = result_topic(PROBE),
    enrollment: Enrollment = ENROLLED,
) -> Candidate:
    return check(
        topic,
        payload,
        now=NOW,
        policy=policy,
        enrollment_of=lambda probe_id: enrollment if probe_id == PROBE else None,
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


def test_a_result_claiming_another_place_is_refused_for_good() -> None:
    elsewhere = msgspec.structs.replace(ENROLLED.location, village="Bản Khác", commune_code="26737")
    refusal = _refusal(encode_result(sign_result(_result(location=elsewhere), KEY)))
    assert refusal.reason == "location-mismatch"
    assert refusal.permanent
    assert "Bản Khác" in refusal.detail


def test_a_result_is_stored_at_the_pinned_place() -> None:
    candidate = _check(encode_result(sign_result(_result(), KEY)))
    assert candidate.location == ENROLLED.location


def test_while_disputed_nothing_that_disagrees_with_the_pin_is_refused_for_good() -> None:
    disputed = _enrollment("disputed")
    moved = msgspec.structs.replace(ENROLLED.location, village="Bản Mới")
    refusal = _refusal(
        encode_result(sign_result(_result(location=moved), KEY)), enrollment=disputed
    )
    assert (refusal.reason, refusal.permanent) == ("disputed", False)
    re_keyed = sign_result(_result(), new_private_key())
    rejection = verify(_check(encode_result(re_keyed), enrollment=disputed))
    assert rejection is not None
    assert (rejection.reason, rejection.permanent) == ("disputed", False)
    genuine = _check(encode_result(sign_result(_result(), KEY)), enrollment=disputed)
    assert verify(genuine) is None  # the pinned key's results go on being stored


def test_a_revoked_probe_is_refused_and_keeps_its_results() -> None:
    refusal = _refusal(
        encode_result(sign_result(_result(), KEY)), enrollment=_enrollment("revoked")
    )
    assert (refusal.reason, refusal.permanent) == ("revoked", False)


@pytest.mark.parametrize(
    ("download", "consistent"),
    [
        (Throughput(mbps=99_999.0, bytes=1, duration_s=10.0), False),  # the forgery
        (Throughput(mbps=43.0, bytes=43_000_000, duration_s=8.0), True),
        (Throughput(mbps=43.2, bytes=43_000_000, duration_s=8.0), True),  # rounded: 0.5 %
        (Throughput(mbps=44.0, bytes=43_000_000, duration_s=8.0), False),  # 2.3 % off
        (Throughput(mbps=0.004, bytes=0, duration_s=8.0), True),  # below the rounding step
        (Throughput(mbps=0.0, bytes=0, duration_s=0.0), True),
        (Throughput(mbps=1.0, bytes=125_000, duration_s=0.0), False),
    ],
)
def test_a_rate_must_be_its_bytes_over_its_duration(
    download: Throughput, *, consistent: bool
) -> None:
    assert rate_is_consistent(download) is consistent
    payload = encode_result(sign_result(_result(measurements=Measurements(download=download)), KEY))
    if consistent:
        assert _check(payload).result.measurements.download == download
    else:
        refusal = _refusal(payload)
        assert (refusal.reason, refusal.permanent) == ("inconsistent", True)


@given(throughput())
def test_every_rate_the_contract_describes_is_consistent(direction: Throughput) -> None:
    assert rate_is_consistent(direction)


@pytest.mark.parametrize(
    ("fixture", "direction"),
    [("download-4-streams.json", "download"), ("upload-1-stream.json", "upload")],
)
def test_real_iperf3_outputs_are_consistent(fixture: str, direction: str) -> None:
    """iperf3 excludes its omitted (warm-up) seconds from both its bytes and its duration."""
    outcome = parse_report((IPERF3_FIXTURES / fixture).read_bytes(), direction)  # type: ignore[arg-type]
    assert outcome.throughput is not None
    assert outcome.throughput.warmup_s > 0 or direction == "upload"
    assert rate_is_consistent(outcome.throughput)
