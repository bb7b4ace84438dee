"""Every decoder of outside bytes is bounded: size, depth, and the characters a name may hold."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.errors import WireError, WireLimitError
from contract.fleet import MAX_FLEET_MESSAGE_BYTES, decode_meta, decode_status
from contract.result import (
    MAX_BATCH,
    MAX_RECEIPT_BYTES,
    MAX_RESULT_BYTES,
    decode_receipt,
    decode_result,
    encode_result,
    split_batch,
)
from tests.strategies import NOW, sample_result

DECODERS: dict[str, tuple[Callable[[bytes], object], int]] = {
    "result": (lambda data: decode_result(data, now=NOW), MAX_RESULT_BYTES),
    "batch": (split_batch, MAX_BATCH * MAX_RESULT_BYTES),
    "receipt": (decode_receipt, MAX_RECEIPT_BYTES),
    "meta": (decode_meta, MAX_FLEET_MESSAGE_BYTES),
    "status": (decode_status, MAX_FLEET_MESSAGE_BYTES),
}


def _nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    # An unknown field: readers skip it, and skipping is where msgspec recursed without bound.
    return b'{"skipped": ' + opening * depth + closing * depth + b"}"


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("brackets", [(b"[", b"]"), (b'{"a":', b"}")])
def test_json_nested_deeper_than_any_message_is_refused_as_too_deep(
    name: str, brackets: tuple[bytes, bytes]
) -> None:
    decode, _ = DECODERS[name]
    with pytest.raises(WireLimitError) as caught:
        decode(_nested(2_000, *brackets))  # twice the bound, within every size bound
    assert caught.value.limit == "too-deep"
    # The interpreter is as it was: the next message decodes, and recursion works as before.
    assert decode_result(encode_result(sample_result(finished_at=NOW)), now=NOW).probe_id
    assert sys.getrecursionlimit() == 1000
    with pytest.raises(WireError):
        decode(_nested(500))  # deep but well within the bound: an ordinary refusal


@pytest.mark.parametrize("name", DECODERS)
def test_a_message_over_its_size_bound_is_refused_unread(name: str) -> None:
    decode, max_bytes = DECODERS[name]
    with pytest.raises(WireLimitError) as caught:
        decode(b" " * (max_bytes + 1))
    assert caught.value.limit == "too-large"


@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"a":', b",", b"1"]), max_size=3000))
@settings(max_examples=200)
def test_bracket_soup_is_refused_with_a_reason(parts: list[bytes]) -> None:
    payload = b"".join(parts)
    for decode, _ in DECODERS.values():
        try:
            decode(payload)
        except WireError as exc:
            assert exc.field.startswith("$")


@pytest.mark.parametrize(
    "village", ["Ấp A\nINFO forged", "A\r", "A\x1b[31m", "A\x85", "A\u2028B", "A\u202eB", "A\x00"]
)
def test_a_name_with_a_control_character_is_refused(village: str) -> None:
    result = sample_result(village=village, finished_at=NOW)
    with pytest.raises(WireError) as caught:
        decode_result(encode_result(result), now=NOW)
    assert caught.value.field == "$.location.village"


@pytest.mark.parametrize("village", ["Ấp Thạnh Hòa", "Bản Nà Hin (xóm 2)", "=HYPERLINK()"])
def test_names_in_vietnamese_and_punctuation_pass(village: str) -> None:
    result = sample_result(village=village, finished_at=NOW)
    assert decode_result(encode_result(result), now=NOW) == result
