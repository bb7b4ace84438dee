"""Ed25519 signatures over a result's canonical bytes: the probe signs, the collector verifies."""

from __future__ import annotations

import base64
import binascii

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


def verify_result(result: Result, public_key: Ed25519PublicKey) -> None:
    """Raise WireError unless `result` carries a valid signature by `public_key`."""
    if result.signature is None:
        raise WireError("$.signature", "missing", "the probe must sign results (qos-agent enroll)")
    try:
        public_key.verify(
            base64.b64decode(result.signature, validate=True), canonical_bytes(result)
        )
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise WireError("$.signature", "does not match the result and the probe's key") from exc
