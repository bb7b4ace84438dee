"""The result sequence number: persisted before use, never going back, even on a full disk."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import state
from agent.state import next_seq
from collector.ingest import MAX_SEQ
from contract.errors import ConfigError


def test_numbers_follow_each_other_from_zero(tmp_path: Path) -> None:
    assert [next_seq(tmp_path) for _ in range(3)] == [0, 1, 2]
    assert (tmp_path / "seq").read_text(encoding="ascii") == "2"


def test_a_garbled_file_moves_the_number_forward_but_keeps_it_storable(tmp_path: Path) -> None:
    for _ in range(5):
        next_seq(tmp_path)
    (tmp_path / "seq").write_text("4x", encoding="ascii")
    value = next_seq(tmp_path)
    # Ahead of every count so far, and below the collector's limit (a float64 sample stays exact).
    assert 1_000_000_000 < value < MAX_SEQ
    assert next_seq(tmp_path) == value + 1


def test_on_a_full_disk_the_number_is_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    next_seq(tmp_path)

    def no_space(path: Path, value: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state, "_replace", no_space)
    assert [next_seq(tmp_path), next_seq(tmp_path)] == [1, 2]
    assert (tmp_path / "seq").read_text(encoding="ascii") == "2"


def test_other_write_errors_are_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    next_seq(tmp_path)

    def failing(path: Path, value: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(state, "_replace", failing)
    with pytest.raises(OSError, match="Input/output"):
        next_seq(tmp_path)


def test_a_read_only_file_system_is_told_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    next_seq(tmp_path)

    def read_only(path: Path, value: int) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(state, "_replace", read_only)
    with pytest.raises(ConfigError, match=r"seq is not writable .*Read-only file system"):
        next_seq(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file for another user")
def test_files_root_writes_stay_the_daemons(tmp_path: Path) -> None:
    """`sudo qos-agent check` numbers a result before the daemon ever has: the daemon's user must
    still open the lock and replace the files after it (a root-owned seq.lock stopped it)."""
    daemon_user = 65534  # nobody
    os.chown(tmp_path, daemon_user, daemon_user)
    next_seq(tmp_path)
    state.sample_gap(tmp_path, "wwan0", datetime.now(UTC), 60.0)
    for name in ("seq", "seq.lock", "last-counted.json"):
        assert (tmp_path / name).stat().st_uid == daemon_user, name
