"""The collector's durable buffer and idempotency ledger: one SQLite table of result ids.

A row goes through three states:
- pending: accepted, its line protocol kept, not yet in the store (the buffer while the store is
  down; drained oldest first);
- written: the store acknowledged it (and the probe got its "stored" receipt), but the store may
  still hold it only in memory: VictoriaMetrics keeps the last seconds of acknowledged rows there,
  and a store killed now would lose them. The line is kept until the store has been seen running,
  as the same process, long enough after the write to have put the row on disk ("confirmed"); a
  store seen restarted meanwhile gets every kept line again (collector/pipeline/store.py);
- remembered: only the id is kept, until `ledger_ttl_s`, so a re-sent result is recognised and
  answered with its receipt instead of being written again.

Past the TTL a re-sent result is written again, which the store's deduplication (same labels and
timestamp, `-dedup.minScrapeInterval`) makes harmless: the ledger saves work, the store keeps
"stored once" true.

SQLite in WAL mode with `synchronous=NORMAL` survives a killed process; while the store is down the
journal switches to `synchronous=FULL`, so results waiting for it also survive a power cut. Every
pending row is also still in its probe's spool until a receipt says "stored".
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from collector.state import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    probe_id TEXT NOT NULL,
    finished_at REAL NOT NULL,
    line TEXT,
    written_at REAL
);
CREATE INDEX IF NOT EXISTS results_pending ON results (seq) WHERE written_at IS NULL;
CREATE INDEX IF NOT EXISTS results_written ON results (written_at) WHERE written_at IS NOT NULL;
-- The last seconds of lines not yet confirmed, among days of remembered ids.
CREATE INDEX IF NOT EXISTS results_unconfirmed ON results (written_at)
    WHERE written_at IS NOT NULL AND line IS NOT NULL;
CREATE TABLE IF NOT EXISTS store (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

Known = Literal["pending", "written"]
# Ids per lookup: below SQLite's bound on the parameters of one statement (999 before 3.32).
KNOWN_CHUNK = 500
# SQLite's largest rowid.
MAX_SEQ = 2**63 - 1


class Entry(NamedTuple):
    """One accepted result on its way to the store."""

    id: uuid.UUID
    probe_id: str
    finished_at: float  # seconds since the epoch: the sample's timestamp
    line: str  # line protocol, rendered once when accepted


class Journal:
    def __init__(self, connection: sqlite3.Connection, *, ledger_ttl_s: float) -> None:
        self._db = connection
        self._db.executescript(SCHEMA)
        self.ledger_ttl_s = ledger_ttl_s

    def known(self, result_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Known]:
        """Which of these ids are already buffered or stored (left out: never seen, or forgotten).

        One query for many ids: per result, a query of its own cost more than all the other
        checks of the check stage together.
        """
        found: dict[uuid.UUID, Known] = {}
        for start in range(0, len(result_ids), KNOWN_CHUNK):
            chunk = result_ids[start : start + KNOWN_CHUNK]
            placeholders = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, written_at IS NOT NULL FROM results WHERE id IN ({placeholders})",  # noqa: S608 - placeholders only
                [result_id.bytes for result_id in chunk],
            )
            for id_bytes, written in rows:
                found[uuid.UUID(bytes=id_bytes)] = "written" if written else "pending"
        return found

    def append(self, entries: Iterable[Entry]) -> int:
        """Buffer accepted results (an id already present is left as it is); the last seq."""
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR IGNORE INTO results (id, probe_id, finished_at, line) VALUES (?,?,?,?)",
                [(e.id.bytes, e.probe_id, e.finished_at, e.line) for e in entries],
            )
            return self.last_seq()

    def last_seq(self) -> int:
        """The seq of the newest row (0 when empty): every row kept so far is at or below it."""
        row = self._db.execute("SELECT max(seq) FROM results").fetchone()
        return int(row[0] or 0)

    def pending(self, limit: int, up_to_seq: int = MAX_SEQ) -> list[Entry]:
        """The oldest results not yet in the store, up to `up_to_seq`."""
        rows = self._db.execute(
            "SELECT id, probe_id, finished_at, line FROM results "
            "WHERE written_at IS NULL AND seq <= ? ORDER BY seq LIMIT ?",
            (up_to_seq, limit),
        ).fetchall()
        return [Entry(uuid.UUID(bytes=row[0]), row[1], row[2], row[3]) for row in rows]

    def mark_written(self, entries: Iterable[Entry], at: float) -> None:
        with transaction(self._db):
            self._db.executemany(
                "UPDATE results SET written_at = ? WHERE id = ?",
                [(at, e.id.bytes) for e in entries],
            )

    def unconfirmed(self, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Written lines the store may not have on disk yet, oldest first, past `after_seq`."""
        rows = self._db.execute(
            "SELECT seq, line FROM results INDEXED BY results_unconfirmed WHERE seq > ? "
            "AND written_at IS NOT NULL AND line IS NOT NULL ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def rewritten(self, up_to_seq: int, at: float) -> None:
        """Unconfirmed lines up to `up_to_seq` were written again at `at` (to a new store run)."""
        with transaction(self._db):
            self._db.execute(
                "UPDATE results INDEXED BY results_unconfirmed SET written_at = ? "
                "WHERE seq <= ? AND written_at IS NOT NULL AND line IS NOT NULL",
                (at, up_to_seq),
            )

    def confirm(self, written_before: float) -> int:
        """The store holds on disk everything written up to then: drop those lines (how many)."""
        with transaction(self._db):
            cursor = self._db.execute(
                "UPDATE results INDEXED BY results_unconfirmed SET line = NULL "
                "WHERE written_at <= ? AND written_at IS NOT NULL AND line IS NOT NULL",
                (written_before,),
            )
        return cursor.rowcount

    def unconfirmed_count(self) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM results INDEXED BY results_unconfirmed "
            "WHERE written_at IS NOT NULL AND line IS NOT NULL"
        ).fetchone()
        return int(row[0])

    def store_run(self) -> str | None:
        """The store run (collector/store.py `StoreWriter.run`) every written line went to."""
        row = self._db.execute("SELECT value FROM store WHERE name = 'run'").fetchone()
        return None if row is None else str(row[0])

    def set_store_run(self, run: str) -> None:
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO store (name, value) VALUES ('run', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (run,),
            )

    def depth(self) -> int:
        """How many results wait for the store."""
        row = self._db.execute("SELECT count(*) FROM results WHERE written_at IS NULL").fetchone()
        return int(row[0])

    def prune(self, now: float) -> None:
        """Forget confirmed ids past the ledger's TTL (an unconfirmed line is never dropped)."""
        with transaction(self._db):
            self._db.execute(
                "DELETE FROM results WHERE written_at < ? AND line IS NULL",
                (now - self.ledger_ttl_s,),
            )

    def set_durability(self, *, fsync_every_commit: bool) -> None:
        mode = "FULL" if fsync_every_commit else "NORMAL"
        self._db.execute(f"PRAGMA synchronous={mode}")
