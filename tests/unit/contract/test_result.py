"""Wire contract v1: round trips, and refusals that name the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.errors import WireError
from contract.result import Result, canonical_bytes, decode_result, encode_result
from tests.strategies import NOW, results


@given(results())
def test_valid_results_round_trip(result: Result) -> None:
    assert decode_result(encode_result(result), now=NOW) == result


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_random_bytes_never_crash(payload: bytes) -> None:
    try:
        decode_result(payload, now=NOW)
    except WireError as exc:
        assert exc.field.startswith("$")


@given(results(), st.sampled_from(["schema", "probe_id", "measurements", "link"]), st.data())
def test_mangled_json_is_refused_with_a_field(
    result: Result, key: str, data: st.DataObject
) -> None:
    document: dict[str, Any] = json.loads(encode_result(result))
    document[key] = data.draw(st.integers() | st.text() | st.none())
    try:
        decode_result(json.dumps(document), now=NOW)
    except WireError as exc:
        assert key in exc.field or exc.field == "$.schema"


@pytest.fixture
def document() -> dict[str, Any]:
    base = {
        "schema": "qosfleet.result/1",
        "id": "019ab5e2-7d3c-7f00-8000-0123456789ab",
        "probe_id": "vn-01-bana",
        "seq": 7,
        "started_at": "2026-11-24T11:00:00Z",
        "finished_at": "2026-11-24T11:00:10Z",
        "clock": {"synced": True},
        "location": {
            "province_code": "01",
            "commune_code": "00004",
            "village": "Bản A",
            "lat": 21.03,
            "lon": 105.85,
        },
        "link": {"interface": "wwan0", "access": "mobile", "technology": "4g", "operator": "VNPT"},
        "target": {"id": "hn1", "address": "198.18.0.1", "ip_version": 4},
        "measurements": {"download": {"mbps": 43.0, "bytes": 53750000, "duration_s": 10.0}},
        "provenance": {"agent_version": "0.1.0", "runner": "http"},
    }
    decode_result(json.dumps(base), now=NOW)  # the base itself is valid
    return base


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("measurements", "download", "mbps"), -1.0, "$.measurements.download.mbps"),
        (("measurements", "download", "mbps"), 100_001.0, "$.measurements.download.mbps"),
        (("location", "province_code"), "1", "$.location.province_code"),
        (("link", "access"), "satellite", "$.link.access"),
        (("schema",), "qosfleet.result/2", "$.schema"),
        (("id",), "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "$.id"),
        (("finished_at",), "2026-11-24T13:00:00Z", "$.finished_at"),
        (("finished_at",), "2026-11-24T10:59:00Z", "$.finished_at"),
        (("started_at",), "2026-11-24 11:00:00", "$.started_at"),
    ],
)
def test_absurd_values_are_refused_naming_the_field(
    document: dict[str, Any], path: tuple[str, ...], value: object, field: str
) -> None:
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WireError) as caught:
        decode_result(json.dumps(document), now=NOW)
    assert caught.value.field == field


@pytest.mark.parametrize("missing", ["probe_id", "measurements", "finished_at", "link"])
def test_missing_required_field_is_named(document: dict[str, Any], missing: str) -> None:
    del document[missing]
    with pytest.raises(WireError, match=missing):
        decode_result(json.dumps(document), now=NOW)


def test_malformed_json_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(WireError, match="not valid JSON") as caught:
        decode_result(json.dumps(document)[:-5], now=NOW)
    assert caught.value.field == "$"


def test_unknown_fields_are_ignored(document: dict[str, Any]) -> None:
    document["added_in_v1_5"] = {"anything": 1}
    document["measurements"]["dns"] = {"resolve_ms": 12}
    assert decode_result(json.dumps(document), now=NOW).probe_id == "vn-01-bana"


def test_slightly_fast_clock_is_tolerated(document: dict[str, Any]) -> None:
    four_minutes_behind_the_probe = datetime(2026, 11, 24, 10, 56, 10, tzinfo=UTC)
    decode_result(json.dumps(document), now=four_minutes_behind_the_probe)


def test_canonical_bytes_ignore_the_signature(document: dict[str, Any]) -> None:
    result = decode_result(json.dumps(document), now=NOW)
    signed = msgspec.structs.replace(result, signature="c2lnbmF0dXJl")
    assert canonical_bytes(signed) == canonical_bytes(result)
    assert b"signature" not in canonical_bytes(signed)
