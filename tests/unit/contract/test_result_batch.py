"""Batches of results on the wire: one message, each result validated on its own."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from uuid6 import uuid7

from contract.errors import WireError
from contract.result import (
    BATCH_SCHEMA,
    MAX_BATCH,
    Receipt,
    Result,
    ResultBatch,
    decode_batch,
    decode_receipt,
    encode_batch,
    encode_batch_payloads,
    encode_receipt,
    encode_result,
    results_topic,
)
from tests.strategies import sample_result

NOW = datetime.now(UTC)


def _results(count: int, probe_id: str = "vn-79-batch") -> list[Result]:
    return [
        msgspec.structs.replace(
            sample_result(probe_id, finished_at=NOW - timedelta(seconds=seq)), seq=seq
        )
        for seq in range(count)
    ]


def test_a_batch_round_trips_and_equals_the_same_results_from_their_bytes() -> None:
    results = _results(3)
    encoded = encode_batch(ResultBatch(schema=BATCH_SCHEMA, results=tuple(results)))
    decoded = decode_batch(encoded, now=NOW)
    assert decoded.results == tuple(results)
    assert decoded.errors == ()
    # A probe's spool holds encoded results: batching those bytes gives the same message.
    assert encode_batch_payloads([encode_result(r) for r in results]) == encoded
    assert results_topic("vn-79-batch") == "qos/v1/vn-79-batch/results"


def test_one_bad_result_refuses_only_itself_naming_its_index() -> None:
    good = _results(4)
    document = json.loads(encode_batch(ResultBatch(schema=BATCH_SCHEMA, results=tuple(good))))
    document["results"][1]["seq"] = -1
    document["results"][3]["finished_at"] = (NOW + timedelta(hours=1)).isoformat()
    document["results"].append("not a result")
    decoded = decode_batch(json.dumps(document), now=NOW)
    assert decoded.results == (good[0], good[2])
    fields = [error.field for error in decoded.errors]
    assert fields == [
        "$.results[1].seq",
        "$.results[3].finished_at",
        "$.results[4].(top level)",  # the path decode_result gives a non-object
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{", "$"),
        (b'{"schema": "qosfleet.batch/1"}', "$.(top level)"),
        (b'{"schema": "qosfleet.batch/2", "results": [{}]}', "$.schema"),
        (b'{"schema": "qosfleet.batch/1", "results": []}', "$.results"),
        (b'{"schema": "qosfleet.batch/1", "results": {}}', "$.results"),
    ],
)
def test_a_bad_envelope_refuses_the_batch(payload: bytes, field: str) -> None:
    with pytest.raises(WireError) as refused:
        decode_batch(payload, now=NOW)
    assert refused.value.field == field


def test_count_limits() -> None:
    payloads = [encode_result(r) for r in _results(MAX_BATCH + 1)]
    over = b'{"schema":"qosfleet.batch/1","results":[' + b",".join(payloads) + b"]}"
    with pytest.raises(WireError, match="expected 1 to 50"):
        decode_batch(over, now=NOW)
    assert len(decode_batch(encode_batch_payloads(payloads[:MAX_BATCH]), now=NOW).results) == 50
    with pytest.raises(ValueError, match="1 to 50"):
        encode_batch_payloads(payloads)
    with pytest.raises(ValueError, match="1 to 50"):
        encode_batch_payloads([])


def test_a_batch_carries_one_probe() -> None:
    mixed = (*_results(1, "vn-79-one"), *_results(1, "vn-79-two"))
    with pytest.raises(ValueError, match="one probe"):
        encode_batch(ResultBatch(schema=BATCH_SCHEMA, results=mixed))


def test_receipt_also_round_trips_and_a_single_receipt_is_unchanged() -> None:
    first, *rest = (uuid7() for _ in range(3))
    grouped = Receipt(id=first, status="stored", also=tuple(rest))
    assert decode_receipt(encode_receipt(grouped)) == grouped
    assert grouped.ids() == (first, *rest)
    single = Receipt(id=first, status="stored")
    assert json.loads(encode_receipt(single)) == {"id": str(first), "status": "stored"}
    assert single.ids() == (first,)
    # A receipt from an older collector, and one with fields this reader does not know.
    legacy = json.dumps({"id": str(first), "status": "rejected", "reason": "x", "new": 1})
    assert decode_receipt(legacy) == Receipt(id=first, status="rejected", reason="x")
    assert isinstance(decode_receipt(encode_receipt(grouped)).also[0], uuid.UUID)
