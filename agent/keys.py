"""The probe's Ed25519 signing key: made once at enrollment, readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.errors import ConfigError
from contract.i18n import N_, _
from contract.signing import load_private_key, new_private_key, private_key_bytes

KEY_BYTES = 32
ENROLL_HINT = N_("run `qos-agent enroll` to make the probe's key, then register its public key")


def create_key(path: Path) -> Ed25519PrivateKey:
    """Write a new key to `path` with mode 0600; an existing key is never overwritten."""
    key = new_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two enrollments racing, or a second one by mistake, cannot replace a key.
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            "key_file",
            _("{path} already exists").format(path=path),
            _(
                "keep it (enroll without --new-key), or remove it if the probe must get a new "
                "identity"
            ),
        ) from None
    try:
        os.fchmod(handle, 0o600)  # the umask may have narrowed the mode, never widened: be exact
        os.write(handle, private_key_bytes(key))
        os.fsync(handle)
    finally:
        os.close(handle)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read the key; refuse one that others can read, as ssh does."""
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "key_file", _("{path} does not exist").format(path=path), _(ENROLL_HINT)
        ) from None
    except PermissionError:
        raise ConfigError(
            "key_file",
            _("{path} is not readable by this user").format(path=path),
            _("run the agent as the user that owns the key (the unit runs as qosfleet)"),
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            "key_file",
            _("{path} is readable by others (mode {mode})").format(
                path=path, mode=f"{stat.S_IMODE(mode):04o}"
            ),
            f"chmod 600 {path}",
        )
    if len(raw) != KEY_BYTES:
        raise ConfigError(
            "key_file",
            _("{path} is not a raw 32-byte Ed25519 key").format(path=path),
            _(ENROLL_HINT),
        )
    return load_private_key(raw)
