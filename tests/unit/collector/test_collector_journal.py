"""The journal: buffer while the store is down, remember what is stored, forget in time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from uuid6 import uuid7

from collector.journal import Entry, Journal
from collector.state import open_database


def _journal(path: Path, *, margin: float = 60.0, ttl: float = 3600.0) -> Journal:
    return Journal(open_database(path), replay_margin_s=margin, ledger_ttl_s=ttl)


def _entries(count: int) -> list[Entry]:
    return [Entry(uuid7(), "vn-79-p", 1000.0 + n, f"qos seq={n}.0 {n}") for n in range(count)]


def test_results_wait_oldest_first_and_are_remembered_once_written(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    entries = _entries(5)
    journal.append(entries[:3])
    journal.append(entries[3:] + entries[:1])  # a copy of a buffered result is ignored
    assert journal.depth() == 5
    assert journal.pending(2) == entries[:2]
    assert journal.known(entries[0].id) == "pending"
    journal.mark_written(entries[:2], at=2000.0)
    assert journal.known(entries[0].id) == "written"
    assert journal.known(uuid7()) is None
    assert journal.pending(10) == entries[2:]
    assert journal.depth() == 3


def test_written_lines_are_kept_for_the_replay_margin_and_ids_for_the_ttl(tmp_path: Path) -> None:
    journal = _journal(tmp_path, margin=60.0, ttl=3600.0)
    entries = _entries(2)
    journal.append(entries)
    journal.mark_written(entries[:1], at=1000.0)
    journal.mark_written(entries[1:], at=1100.0)
    assert journal.written_since(990.0) == [entries[0].line, entries[1].line]
    journal.prune(now=1100.0)  # the first is past the 60 s margin
    assert journal.written_since(990.0) == [entries[1].line]
    assert journal.known(entries[0].id) == "written"
    journal.prune(now=1000.0 + 3601.0)
    assert journal.known(entries[0].id) is None
    assert journal.known(entries[1].id) == "written"


def test_pending_results_survive_reopening(tmp_path: Path) -> None:
    entries = _entries(3)
    first = open_database(tmp_path)
    Journal(first, replay_margin_s=60, ledger_ttl_s=60).append(entries)
    first.close()
    assert _journal(tmp_path).pending(10) == entries


def test_durability_switch_sets_the_sqlite_mode(tmp_path: Path) -> None:
    connection = open_database(tmp_path)
    journal = Journal(connection, replay_margin_s=60, ledger_ttl_s=60)
    journal.set_durability(fsync_every_commit=True)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    journal.set_durability(fsync_every_commit=False)
    assert connection.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert isinstance(connection, sqlite3.Connection)
