"""The signing key: made at enrollment with mode 0600, never overwritten, refused when exposed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.keys import create_key, load_key
from contract.errors import ConfigError
from contract.signing import public_key_text


def test_a_new_key_is_private_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "probe.key"
    key = create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_text(load_key(path)) == public_key_text(key)


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "probe.key"
    create_key(path)
    with pytest.raises(ConfigError, match="already exists"):
        create_key(path)


def test_a_key_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "probe.key"
    create_key(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load_key(path)


@pytest.mark.parametrize("content", [None, b"short"])
def test_a_missing_or_broken_key_points_to_enroll(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "probe.key"
    if content is not None:
        path.write_bytes(content)
        path.chmod(0o600)
    with pytest.raises(ConfigError, match="qos-agent enroll"):
        load_key(path)
