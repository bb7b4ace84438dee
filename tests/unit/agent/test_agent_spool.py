"""The spool keeps results in order until a receipt, trims by policy, and survives a full disk."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from agent.spool import RECENT_KEPT, RESERVE_NAME, Spool, spool_report
from agent.state import open_state_db


def _spool(tmp_path: Path, *, max_results: int = 1000, max_bytes: int = 10_000_000) -> Spool:
    return Spool(open_state_db(tmp_path), max_results=max_results, max_bytes=max_bytes)


def _fill(spool: Spool, count: int, size: int = 100, start: int = 0) -> list[str]:
    ids = [f"r{i:04d}" for i in range(start, start + count)]
    for seq, result_id in enumerate(ids, start):
        assert spool.add(result_id, seq, b"x" * size, now=1000.0 + seq)
    return ids


def test_results_are_sent_oldest_first_and_kept_until_a_receipt(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    ids = _fill(spool, 5)
    assert [r.id for r in spool.due(3, skip=set())] == ids[:3]
    assert [r.id for r in spool.due(10, skip={ids[0], ids[2]})] == [ids[1], ids[3], ids[4]]
    spool.mark_sent(ids[:2])
    assert spool.settle([(ids[0], "stored"), (ids[1], "rejected")]) == {ids[0], ids[1]}
    # A second receipt for a forgotten result changes nothing.
    assert spool.settle([(ids[0], "stored")]) == set()
    report = spool.report()
    assert (report.depth, report.spooled, report.delivered, report.rejected) == (3, 5, 1, 1)
    assert report.oldest_created == 1002.0


def test_the_spool_outlives_its_process(tmp_path: Path) -> None:
    ids = _fill(_spool(tmp_path), 3)
    reopened = _spool(tmp_path)
    assert reopened.depth == 3
    assert [r.id for r in reopened.due(10, skip=set())] == ids
    attempts = reopened._db.execute("SELECT sum(attempts) FROM spool").fetchone()[0]
    assert attempts == 0


def test_the_same_result_is_spooled_once(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    assert spool.add("same", 1, b"payload", now=1.0)
    assert spool.add("same", 1, b"payload", now=2.0)
    assert (spool.depth, spool.report().spooled) == (1, 1)


@pytest.mark.parametrize(("caps", "kept"), [({"max_results": 4}, 4), ({"max_bytes": 550}, 5)])
def test_over_its_cap_the_spool_drops_the_oldest_and_counts_them(
    tmp_path: Path, caps: dict[str, int], kept: int
) -> None:
    spool = _spool(tmp_path, **caps)
    ids = _fill(spool, 10)
    assert [r.id for r in spool.due(100, skip=set())] == ids[-kept:]
    report = spool.report()
    assert (report.depth, report.lost, report.spooled) == (kept, 10 - kept, 10)
    assert spool_report(spool._db) == report  # what `qos-agent status` reads agrees


def test_a_full_disk_trims_the_oldest_and_counts_the_loss_never_raises(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    ids = _fill(spool, 50, size=2000)
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    # The database may not grow any more: the next results only fit where old ones were.
    spool._db.execute(f"PRAGMA max_page_count={pages}")
    more = _fill(spool, 20, size=2000, start=50)
    report = spool.report()
    assert report.lost > 0
    assert report.depth + report.lost == 70
    kept = [r.id for r in spool.due(100, skip=set())]
    assert kept == sorted(kept)
    assert kept[-1] == more[-1]
    assert ids[0] not in kept


def test_a_result_that_cannot_be_written_at_all_is_counted_lost(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool._db.execute("PRAGMA max_page_count=1")  # smaller than the database already is
    assert not spool.add("never", 0, b"x" * 5000, now=1.0)
    assert spool.report().lost == 1
    spool._db.execute("PRAGMA max_page_count=100000")
    assert spool.add("later", 1, b"x", now=2.0)
    # The loss counted in memory reached the disk with the next write.
    fresh = _spool(tmp_path)
    assert fresh.report().lost == 1


def test_recent_results_say_which_were_delivered(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    ids = _fill(spool, RECENT_KEPT + 5)
    spool.settle([(ids[-1], "stored")])
    recent = spool.recent()
    assert len(recent) == RECENT_KEPT
    assert recent[0] == (b"x" * 100, True)
    assert recent[1][1] is False


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(sqlite3.OperationalError):
        open_state_db(tmp_path, read_only=True).execute("CREATE TABLE t (x)")


def _free_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage._replace(free=free))


def test_a_reserve_is_held_released_on_a_full_disk_and_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reserve = tmp_path / RESERVE_NAME
    spool = Spool(
        open_state_db(tmp_path),
        max_results=1000,
        max_bytes=10_000_000,
        reserve=reserve,
        reserve_bytes=64 * 1024,
    )
    assert reserve.stat().st_size == 64 * 1024
    assert reserve.stat().st_blocks * 512 >= 64 * 1024  # allocated, not a sparse file
    _fill(spool, 20, size=2000)
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL from now on
    _free_space(monkeypatch, 0)
    spool.add("on-a-full-disk", 20, b"x" * 2000, now=2000.0)
    assert not reserve.exists()  # given up first, before any result is dropped
    spool._db.execute("PRAGMA max_page_count=100000")
    assert spool.add("still-full", 21, b"x", now=2001.0)
    assert not reserve.exists()  # space is short: taking it back would fill the disk again
    _free_space(monkeypatch, 10**9)
    assert spool.add("room-again", 22, b"x", now=2002.0)
    assert reserve.stat().st_size == 64 * 1024


def test_no_reserve_is_taken_where_space_is_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _free_space(monkeypatch, 100 * 1024)
    reserve = tmp_path / RESERVE_NAME
    Spool(
        open_state_db(tmp_path),
        max_results=10,
        max_bytes=10_000,
        reserve=reserve,
        reserve_bytes=64 * 1024,
    )
    assert not reserve.exists()
    assert not list(tmp_path.glob("*.partial"))
