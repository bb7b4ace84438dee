"""Signatures: a signed result verifies; any change, or another probe's key, does not."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings

from contract.errors import WireError
from contract.result import Result, decode_result, encode_result
from contract.signing import (
    load_private_key,
    new_private_key,
    parse_public_key,
    private_key_bytes,
    public_key_text,
    sign_result,
    verify_result,
)
from tests.strategies import NOW, results, sample_result

KEY = new_private_key()


@given(results())
@settings(max_examples=50)
def test_signed_results_verify_after_the_wire(result: Result) -> None:
    signed = sign_result(result, KEY)
    received = decode_result(encode_result(signed), now=NOW)
    verify_result(received, parse_public_key(public_key_text(KEY)))


def test_a_changed_result_fails() -> None:
    signed = sign_result(sample_result(), KEY)
    forged = msgspec.structs.replace(signed, seq=signed.seq + 1)
    with pytest.raises(WireError, match="does not match"):
        verify_result(forged, KEY.public_key())


def test_another_probes_key_fails_and_unsigned_is_refused() -> None:
    signed = sign_result(sample_result(), new_private_key())
    with pytest.raises(WireError, match="does not match"):
        verify_result(signed, KEY.public_key())
    with pytest.raises(WireError, match="missing"):
        verify_result(sample_result(), KEY.public_key())


def test_keys_round_trip_through_their_stored_forms() -> None:
    again = load_private_key(private_key_bytes(KEY))
    assert public_key_text(again) == public_key_text(KEY)
    with pytest.raises(WireError, match="public_key"):
        parse_public_key("not-base64!")
