"""The spool: every result stays on the probe's disk until a collector says it is stored.

A broker's PUBACK only proves the broker has a message (DESIGN.md), so a row is deleted only on
the collector's receipt: "stored" (delivered) or "rejected" (refused for good, counted). Inserting
a result and counting it happen in one transaction, so a power cut leaves either both or neither.

A full disk: SQLite in WAL mode needs room even to delete, so trimming old results cannot make
room once the disk is full. The spool therefore holds a reserve file (`spool.reserve` in the
state directory, 16 MiB by default: some 500 results, as each one's transaction appends about
32 kB of pages to the WAL, which cannot be checkpointed into a database file that cannot grow)
and deletes it at the first SQLITE_FULL,
so the results made while something else fills the disk are still kept; it takes the reserve back
once the disk has twice its size free. Only when the reserve is spent too are results lost
(counted, and reported by `qos-agent status`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from agent.health import disk_free_bytes
from contract.i18n import _

log = logging.getLogger("qosfleet.agent")

# Results kept for `qos-agent status`, delivered or not.
RECENT_KEPT = 20
COUNTERS = ("spooled", "delivered", "rejected", "lost")
# On a full disk: drop this many of the oldest results (or 1 %, if more) and try again, twice.
DISK_FULL_TRIM = 8
DISK_FULL_RETRIES = 2
RESERVE_NAME = "spool.reserve"

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    position INTEGER PRIMARY KEY,  -- insertion order: results are sent oldest first
    id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS spool_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS recent_results (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class SpooledResult(NamedTuple):
    id: str
    seq: int
    payload: bytes


class SpoolReport(msgspec.Struct, frozen=True, kw_only=True):
    """The spool's state; the counters run since the probe was enrolled."""

    depth: int
    bytes: int
    oldest_created: float | None
    spooled: int
    delivered: int
    rejected: int
    lost: int


def is_disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or the database's page limit) has no room for the write."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"


class Spool:
    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        max_results: int,
        max_bytes: int,
        reserve: Path | None = None,
        reserve_bytes: int = 0,
    ) -> None:
        self._db = db
        self._reserve = reserve if reserve_bytes > 0 else None
        self._reserve_bytes = reserve_bytes
        self.max_results = max_results
        self.max_bytes = max_bytes
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT OR IGNORE INTO spool_counters(name, value) VALUES (?, 0)",
            [(name,) for name in COUNTERS],
        )
        # Kept in memory (counted once here) so a cap check never scans the table.
        row = db.execute("SELECT count(*), total(length(payload)) FROM spool").fetchone()
        self._depth, self._bytes = int(row[0]), int(row[1])
        # Losses that could not be written because the disk was full; written with the next commit.
        self._lost_unwritten = 0
        self.hold_reserve()

    def hold_reserve(self) -> None:
        """Take the reserve file (see the module docstring) if it is missing and space allows."""
        path = self._reserve
        if path is None or path.exists():
            return
        free = disk_free_bytes(path.parent)
        if free is None:
            log.warning(
                _("spool: cannot hold a disk reserve in %s: its free space is unknown"), path.parent
            )
            return
        if free < 2 * self._reserve_bytes:
            return  # space is short: the reserve would only bring the full disk closer
        partial = path.with_name(f"{path.name}.partial")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, self._reserve_bytes)  # real blocks, not sparse
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            partial.replace(path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            log.warning(_("spool: cannot hold a disk reserve in %s: %s"), path.parent, exc)

    def _release_reserve(self) -> bool:
        """Give the reserve's space to the spool (the disk is full); False if there is none."""
        if self._reserve is None or not self._reserve.exists():
            return False
        self._reserve.unlink()
        log.warning(
            _(
                "spool: disk full; released the %d-byte reserve so results are still kept: "
                "free space on %s (the reserve is taken back once there is room)"
            ),
            self._reserve_bytes,
            self._reserve.parent,
        )
        return True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            # A COMMIT that failed (disk full) can leave the transaction open: end it.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @property
    def depth(self) -> int:
        return self._depth

    def add(self, result_id: str, seq: int, payload: bytes, *, now: float) -> bool:
        """Durably spool one result (oldest trimmed beyond the caps); False when it was lost.

        On a full disk: the reserve first, then trimming the oldest results (which WAL mode may
        not manage), then the result is lost.
        """
        for attempt in range(DISK_FULL_RETRIES + 1):
            try:
                self._insert(result_id, seq, payload, now)
            except sqlite3.Error as exc:
                if not is_disk_full(exc) or attempt == DISK_FULL_RETRIES:
                    return self._lose(result_id, seq, exc)
                if not self._release_reserve():
                    log.warning(_("spool: disk full; dropping the oldest results to make room"))
                    self._trim(max(DISK_FULL_TRIM, self._depth // 100), reason=_("disk full"))
            else:
                if self._reserve is not None and not self._reserve.exists():
                    self.hold_reserve()
                return True
        raise AssertionError("unreachable: the last attempt returns")

    def _lose(self, result_id: str, seq: int, exc: sqlite3.Error) -> bool:
        """A result that could not be spooled is counted (in memory until a write succeeds)."""
        self._lost_unwritten += 1
        log.error(_("spool: result %s (seq %d) lost: %s"), result_id, seq, exc)
        return False

    def _insert(self, result_id: str, seq: int, payload: bytes, now: float) -> None:
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO spool(id, seq, payload, created) VALUES (?, ?, ?, ?)",
                (result_id, seq, payload, now),
            ).rowcount
            if not inserted:
                return
            self._count(db, "spooled", 1)
            self._count(db, "lost", self._lost_unwritten)
            db.execute(
                "INSERT INTO recent_results(id, payload) VALUES (?, ?)", (result_id, payload)
            )
            db.execute(
                "DELETE FROM recent_results WHERE position <= "
                "(SELECT max(position) FROM recent_results) - ?",
                (RECENT_KEPT,),
            )
            depth, size = self._depth + 1, self._bytes + len(payload)
            trimmed, freed = self._delete_oldest_beyond_caps(db, depth, size)
        self._lost_unwritten = 0
        self._depth, self._bytes = depth - trimmed, size - freed
        if trimmed:
            log.warning(_("spool: over its cap, %d oldest results dropped unsent"), trimmed)

    def _delete_oldest_beyond_caps(
        self, db: sqlite3.Connection, depth: int, size: int
    ) -> tuple[int, int]:
        trimmed = freed = 0
        while self._over_caps(depth - trimmed, size - freed):
            oldest = db.execute(
                "SELECT position, length(payload) FROM spool ORDER BY position LIMIT 64"
            ).fetchall()
            for position, length in oldest:
                if not self._over_caps(depth - trimmed, size - freed):
                    break
                db.execute("DELETE FROM spool WHERE position = ?", (position,))
                trimmed, freed = trimmed + 1, freed + int(length)
        self._count(db, "lost", trimmed)
        return trimmed, freed

    def _over_caps(self, depth: int, size: int) -> bool:
        return depth > self.max_results or size > self.max_bytes

    def _trim(self, count: int, *, reason: str) -> None:
        """Drop the `count` oldest results, counted as lost."""
        try:
            with self._transaction() as db:
                rows = db.execute(
                    "SELECT position, length(payload) FROM spool ORDER BY position LIMIT ?",
                    (count,),
                ).fetchall()
                db.executemany("DELETE FROM spool WHERE position = ?", [(r[0],) for r in rows])
                self._count(db, "lost", len(rows) + self._lost_unwritten)
        except sqlite3.Error as exc:
            log.error(_("spool: cannot drop results either (%s)"), exc)  # noqa: TRY400
            return
        self._lost_unwritten = 0
        self._depth -= len(rows)
        self._bytes -= sum(int(r[1]) for r in rows)
        log.warning(_("spool: %s, %d oldest results dropped unsent"), reason, len(rows))

    def due(self, limit: int, *, skip: set[str]) -> list[SpooledResult]:
        """Up to `limit` results in the order they were spooled, leaving out those in `skip`."""
        found: list[SpooledResult] = []
        if limit <= 0:
            return found
        cursor = self._db.execute("SELECT id, seq, payload FROM spool ORDER BY position")
        try:
            for result_id, seq, payload in cursor:
                if result_id not in skip:
                    found.append(SpooledResult(result_id, int(seq), bytes(payload)))
                    if len(found) >= limit:
                        break
        finally:
            cursor.close()
        return found

    def mark_sent(self, ids: Iterable[str]) -> None:
        """Count a send of each result (for diagnosis: a full disk must not stop the sending)."""
        try:
            with self._transaction() as db:
                db.executemany(
                    "UPDATE spool SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids]
                )
        except sqlite3.Error as exc:
            log.warning(_("spool: cannot count sends (%s)"), exc)

    def settle(self, receipts: Iterable[tuple[str, Literal["stored", "rejected"]]]) -> set[str]:
        """Forget the results a collector has stored or refused; return the ids removed."""
        removed: set[str] = set()
        freed = 0
        with self._transaction() as db:
            for result_id, status in receipts:
                row = db.execute(
                    "DELETE FROM spool WHERE id = ? RETURNING length(payload)", (result_id,)
                ).fetchone()
                if row is None:
                    continue  # a duplicate receipt for a result already forgotten
                removed.add(result_id)
                freed += int(row[0])
                self._count(db, "delivered" if status == "stored" else "rejected", 1)
        self._depth -= len(removed)
        self._bytes -= freed
        return removed

    def _count(self, db: sqlite3.Connection, name: str, increment: int) -> None:
        if increment:
            db.execute(
                "UPDATE spool_counters SET value = value + ? WHERE name = ?", (increment, name)
            )

    def report(self) -> SpoolReport:
        """The spool's state, from the in-memory depth and size (no table scan)."""
        return _report(self._db, self._depth, self._bytes, self._lost_unwritten)

    def recent(self) -> list[tuple[bytes, bool]]:
        """The last results spooled, newest first, each with whether a collector has it."""
        return recent_results(self._db)


def spool_report(db: sqlite3.Connection) -> SpoolReport:
    """The spool's state from another process (`qos-agent status`, read-only)."""
    depth, size = db.execute("SELECT count(*), total(length(payload)) FROM spool").fetchone()
    return _report(db, int(depth), int(size), 0)


def _report(db: sqlite3.Connection, depth: int, size: int, lost_unwritten: int) -> SpoolReport:
    oldest = db.execute("SELECT created FROM spool ORDER BY position LIMIT 1").fetchone()
    counters = dict(db.execute("SELECT name, value FROM spool_counters").fetchall())
    return SpoolReport(
        depth=depth,
        bytes=size,
        oldest_created=float(oldest[0]) if oldest else None,
        spooled=int(counters.get("spooled", 0)),
        delivered=int(counters.get("delivered", 0)),
        rejected=int(counters.get("rejected", 0)),
        lost=int(counters.get("lost", 0)) + lost_unwritten,
    )


def recent_results(db: sqlite3.Connection) -> list[tuple[bytes, bool]]:
    rows = db.execute(
        "SELECT r.payload, s.id IS NULL FROM recent_results AS r "
        "LEFT JOIN spool AS s ON s.id = r.id ORDER BY r.position DESC"
    ).fetchall()
    return [(bytes(payload), bool(delivered)) for payload, delivered in rows]
