"""The journal: buffer while the store is down, keep written lines until the store has them on
disk, remember what is stored, forget in time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from uuid6 import uuid7

from collector.journal import Entry, Journal
from collector.state import open_database


def _journal(path: Path, *, ttl: float = 3600.0) -> Journal:
    return Journal(open_database(path), ledger_ttl_s=ttl)


def _entries(count: int) -> list[Entry]:
    return [Entry(uuid7(), "vn-79-p", 1000.0 + n, f"qos seq={n}.0 {n}") for n in range(count)]


def test_results_wait_oldest_first_and_are_remembered_once_written(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    entries = _entries(5)
    journal.append(entries[:3])
    journal.append(entries[3:] + entries[:1])  # a copy of a buffered result is ignored
    assert journal.depth() == 5
    assert journal.pending(2) == entries[:2]
    assert journal.known([entries[0].id]) == {entries[0].id: "pending"}
    journal.mark_written(entries[:2], at=2000.0)
    assert journal.known([entries[0].id]) == {entries[0].id: "written"}
    assert journal.known([uuid7()]) == {}
    assert journal.pending(10) == entries[2:]
    assert journal.depth() == 3


def test_written_lines_are_kept_until_confirmed_and_ids_for_the_ttl(tmp_path: Path) -> None:
    journal = _journal(tmp_path, ttl=3600.0)
    entries = _entries(3)
    journal.append(entries)
    journal.mark_written(entries[:1], at=1000.0)
    journal.mark_written(entries[1:2], at=1100.0)
    assert [line for _, line in journal.unconfirmed(0, 10)] == [entries[0].line, entries[1].line]
    journal.prune(now=1000.0 + 3601.0)  # never forgets a line the store may not keep
    assert journal.unconfirmed_count() == 2
    journal.confirm(written_before=1050.0)
    assert [line for _, line in journal.unconfirmed(0, 10)] == [entries[1].line]
    assert journal.known([entries[0].id]) == {entries[0].id: "written"}
    journal.prune(now=1000.0 + 3601.0)
    assert journal.known([entries[0].id]) == {}
    assert journal.known([entries[1].id]) == {entries[1].id: "written"}
    assert journal.known([entries[2].id]) == {entries[2].id: "pending"}


def test_lines_written_again_wait_for_a_new_confirmation(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    entries = _entries(4)
    journal.append(entries)
    journal.mark_written(entries[:3], at=1000.0)
    first = journal.unconfirmed(0, 2)
    assert [line for _, line in first] == [e.line for e in entries[:2]]
    rest = journal.unconfirmed(first[-1][0], 2)
    assert [line for _, line in rest] == [entries[2].line]
    journal.rewritten(rest[-1][0], at=2000.0)
    journal.confirm(written_before=1500.0)  # written again at 2000: not yet
    assert journal.unconfirmed_count() == 3
    journal.confirm(written_before=2000.0)
    assert journal.unconfirmed_count() == 0
    assert journal.pending(10) == entries[3:]  # never written: untouched


def test_the_store_run_is_kept(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    assert journal.store_run() is None
    journal.set_store_run("1796514729")
    journal.set_store_run("1796514801")
    assert _journal(tmp_path).store_run() == "1796514801"


def test_pending_results_survive_reopening(tmp_path: Path) -> None:
    entries = _entries(3)
    first = open_database(tmp_path)
    Journal(first, ledger_ttl_s=60).append(entries)
    first.close()
    assert _journal(tmp_path).pending(10) == entries


def test_durability_switch_sets_the_sqlite_mode(tmp_path: Path) -> None:
    connection = open_database(tmp_path)
    journal = Journal(connection, ledger_ttl_s=60)
    journal.set_durability(fsync_every_commit=True)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    journal.set_durability(fsync_every_commit=False)
    assert connection.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert isinstance(connection, sqlite3.Connection)
