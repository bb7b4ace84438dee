"""The state database: a damaged one is set aside and a new one started; a read-only one refused."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from agent import state
from agent.spool import Spool
from agent.state import STATE_DB, open_state_db, read_quarantine
from contract.errors import ConfigError

PAGE = 4096  # SQLite's default page size


def _spool_some(state_dir: Path, count: int) -> None:
    db = open_state_db(state_dir)
    spool = Spool(db, max_results=10**6, max_bytes=10**9)
    for number in range(count):
        spool.add(f"id-{number}", number, os.urandom(3000), now=0.0)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _damage_pages(path: Path) -> None:
    """Overwrite the headers of pages in the middle of the file, as a failing SD card might."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // PAGE * PAGE
    for offset in range(middle, middle + 16 * PAGE, PAGE):
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _set_aside(state_dir: Path) -> list[Path]:
    found = state_dir.glob(f"{STATE_DB}.corrupt-*")
    return sorted(path for path in found if not path.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize("damage", ["garbage", "pages"])
def test_a_damaged_database_is_set_aside_and_a_new_one_started(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _spool_some(tmp_path, 500)
    path = tmp_path / STATE_DB
    if damage == "garbage":
        path.write_bytes(os.urandom(50_000))
    else:
        _damage_pages(path)
    damaged = path.read_bytes()
    db = open_state_db(tmp_path)
    spool = Spool(db, max_results=10, max_bytes=10**6)
    assert spool.depth == 0
    assert spool.add("new", 1, b"{}", now=0.0)
    (kept,) = _set_aside(tmp_path)
    assert kept.read_bytes() == damaged, "the damaged file is kept as it was, for recovery"
    quarantine = read_quarantine(db)
    assert quarantine is not None
    assert quarantine.moved_to == str(kept)
    assert quarantine.reason
    assert f"set aside as {kept}" in caplog.text
    assert "\n" not in quarantine.reason, "one log line"


def test_the_wal_moves_with_its_database(tmp_path: Path) -> None:
    (tmp_path / STATE_DB).write_bytes(b"not a database" * 100)
    (tmp_path / f"{STATE_DB}-wal").write_bytes(b"its journal")
    open_state_db(tmp_path).close()
    (kept,) = _set_aside(tmp_path)
    assert (tmp_path / f"{kept.name}-wal").read_bytes() == b"its journal"


def test_a_healthy_database_is_kept(tmp_path: Path) -> None:
    _spool_some(tmp_path, 10)
    db = open_state_db(tmp_path)
    assert Spool(db, max_results=100, max_bytes=10**6).depth == 10
    assert read_quarantine(db) is None
    assert _set_aside(tmp_path) == []


def test_a_second_damage_in_the_same_second_keeps_both_files(tmp_path: Path) -> None:
    for _ in range(2):
        (tmp_path / STATE_DB).write_bytes(os.urandom(8192))
        open_state_db(tmp_path).close()
    assert len(_set_aside(tmp_path)) == 2


def test_a_read_only_state_directory_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_state_db(tmp_path).close()
    (tmp_path / STATE_DB).chmod(0o444)
    # Root writes through any mode: ask access() as the daemon's user would be answered.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != STATE_DB)
    with pytest.raises(ConfigError) as caught:
        open_state_db(tmp_path)
    text = str(caught.value)
    assert f"{tmp_path / STATE_DB} is not writable by user" in text
    assert "mode 0444" in text
    assert "chown -R" in text
    assert _set_aside(tmp_path) == [], "a read-only database is not damaged: never set aside"


def test_sqlite_refusing_to_write_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ReadOnlyDatabase:
        """What SQLite answers on a file it may read but not write (e.g. chattr +i)."""

        def execute(self, sql: str) -> None:
            error = sqlite3.OperationalError("attempt to write a readonly database")
            error.sqlite_errorcode = sqlite3.SQLITE_READONLY
            raise error

        def close(self) -> None:
            pass

    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: ReadOnlyDatabase())
    with pytest.raises(ConfigError, match="attempt to write a readonly database"):
        open_state_db(tmp_path)


def test_a_sequence_number_in_a_read_only_directory_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "seq.lock"))

    monkeypatch.setattr(Path, "open", read_only)
    with pytest.raises(ConfigError, match=r"seq\.lock is not writable by user"):
        state.next_seq(tmp_path)
