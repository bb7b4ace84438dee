"""Ed25519 signatures over a result's canonical bytes: the probe signs, the collector verifies."""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from contract.errors import WireError
from contract.result import Result, canonical_bytes


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The 32-byte raw private key (store it 0600)."""
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def load_private_key(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes: what enrollment registers centrally."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise WireError("public_key", f"not a base64 Ed25519 public key ({exc})") from exc


def sign_result(result: Result, key: Ed25519PrivateKey) -> Result:
    signature = key.sign(canonical_bytes(result))
    return msgspec.structs.replace(result, signature=base64.b64encode(signature).decode())


class Signed(NamedTuple):
    """What one signature check needs, as bytes: it can go to another process cheaply."""

    public_key: bytes  # the 32 raw bytes
    message: bytes  # the result's canonical bytes
    signature: str  # base64, as sent


def signed(result: Result, public_key: Ed25519PublicKey) -> Signed:
    """The parts of a signed result's check (raise WireError when it carries no signature)."""
    if result.signature is None:
        raise WireError("$.signature", "missing", "the probe must sign results (qos-agent enroll)")
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Signed(raw, canonical_bytes(result), result.signature)


def holds(item: Signed) -> bool:
    """Whether the signature is valid base64 of a valid Ed25519 signature over the message."""
    try:
        key = Ed25519PublicKey.from_public_bytes(item.public_key)
        key.verify(base64.b64decode(item.signature, validate=True), item.message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def all_hold(items: list[Signed]) -> list[bool]:
    """`holds` for each: the unit of work the collector hands its signature process."""
    return [holds(item) for item in items]


def verify_result(result: Result, public_key: Ed25519PublicKey) -> None:
    """Raise WireError unless `result` carries a valid signature by `public_key`."""
    if not holds(signed(result, public_key)):
        raise WireError("$.signature", "does not match the result and the probe's key")
