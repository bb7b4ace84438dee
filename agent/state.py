"""Small durable state of the probe: the sequence number of results, and the state database."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec

from contract.errors import ConfigError
from contract.fleet import ProbeHealth
from contract.sampling import epoch_ms, gap_s, too_close

log = logging.getLogger("qosfleet.agent")

STATE_DB = "state.db"
CACHE_KIB = 256


class DaemonState(msgspec.Struct, frozen=True, kw_only=True):
    """What the running daemon last said about itself, for `qos-agent status`."""

    pid: int
    started_at: datetime
    updated_at: datetime
    broker_url: str
    broker_connected: bool = False
    broker_since: datetime | None = None
    broker_error: str | None = None
    tests_run: int = 0
    # Skipped because the link's monthly budget had too little left (also in the status message).
    tests_skipped_budget: int = 0
    # The agent itself failed to run a test (logged with its traceback).
    tests_failed: int = 0
    health: ProbeHealth | None = None


def ensure_state_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "state_dir",
            f"cannot create {state_dir} ({exc.strerror})",
            "set state_dir in the config to a writable directory",
        ) from exc


def next_seq(state_dir: Path) -> int:
    """Return the next sequence number, persisted (write, fsync, rename) before it is used."""
    ensure_state_dir(state_dir)
    path = state_dir / "seq"
    # Tests on two links (each in its own process) and `qos-agent check` may ask at once.
    with (state_dir / "seq.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = int(path.read_text(encoding="ascii"))
        except FileNotFoundError:
            current = -1
        except ValueError:
            # A hand-edited (or, after an in-place write, torn) file. Never go back: microseconds
            # since the epoch exceed any count so far and stay below 2**53, the collector's limit.
            current = path.stat().st_mtime_ns // 1000
        value = current + 1
        try:
            _replace(path, value)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            # A full disk has no block for a new file, but the old file has one: overwrite it in
            # place, so a result measured now still reaches the spool (kept, or counted lost).
            _overwrite(path, value)
    return value


def sample_gap(
    state_dir: Path, interface: str, finished_at: datetime, min_gap_s: float
) -> float | None:
    """Seconds since this link's previous counted speed attempt (contract.sampling), remembered.

    The probe keeps the chain because it alone sees its attempts in order: the collector gets
    them out of order (spool drains) and split between instances. An unreadable file starts the
    chains afresh (the next attempt of each link counts).
    """
    ensure_state_dir(state_dir)
    path = state_dir / "last-counted.json"
    with (state_dir / "seq.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            chains = _chains.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            chains = {}
        last = chains.get(interface)
        previous = None if last is None else datetime.fromtimestamp(last / 1000, UTC)
        gap = gap_s(previous, finished_at)
        if not too_close(gap, min_gap_s):
            chains[interface] = epoch_ms(finished_at)
            try:
                _replace(path, msgspec.json.encode(chains).decode())
            except OSError as exc:
                # Not fatal: the gap is evidence, the measurement is what matters.
                log.warning("cannot remember the last counted sample in %s: %s", path, exc)
    return gap


# interface -> epoch ms of its last counted attempt; bounded to the years a probe may see.
_chains = msgspec.json.Decoder(dict[str, Annotated[int, msgspec.Meta(ge=0, lt=2**53)]])


def _replace(path: Path, value: int | str) -> None:
    """Write, fsync, rename: the file holds the old value or the new one, never a torn one."""
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(str(value))
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _overwrite(path: Path, value: int) -> None:
    with path.open("r+", encoding="ascii") as handle:
        handle.write(str(value))
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def open_state_db(state_dir: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """The probe's SQLite database (spool, budgets, daemon state) with its durability settings.

    WAL lets `qos-agent status` read while the daemon writes. synchronous=FULL fsyncs the WAL at
    every commit: a result the probe paid mobile data for must survive a power cut right after it
    was spooled (NORMAL could lose the last commits, though never corrupt the file).
    """
    path = state_dir / STATE_DB
    if read_only:
        if not path.exists():
            raise ConfigError(
                "state_dir",
                f"no state database at {path}",
                "the daemon has not run yet on this probe: start it with `qos-agent run`",
            )
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
    else:
        ensure_state_dir(state_dir)
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # Rows are appended, read oldest first and deleted: a small page cache does, and keeps
        # the idle daemon small (the default is 2 MB).
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute("CREATE TABLE IF NOT EXISTS runtime (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    return db


def record_daemon_state(db: sqlite3.Connection, state: DaemonState) -> None:
    try:
        db.execute(
            "INSERT OR REPLACE INTO runtime(key, value) VALUES ('daemon', ?)",
            (msgspec.json.encode(state),),
        )
    except sqlite3.Error as exc:
        log.warning("state: cannot record the daemon's state (%s)", exc)


def read_daemon_state(db: sqlite3.Connection) -> DaemonState | None:
    row = db.execute("SELECT value FROM runtime WHERE key = 'daemon'").fetchone()
    if row is None:
        return None
    try:
        return msgspec.json.decode(row[0], type=DaemonState)
    except msgspec.MsgspecError:
        return None  # written by another version of the agent
