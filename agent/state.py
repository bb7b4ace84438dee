"""Small durable state of the probe: the sequence number of results, and the state database."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import pwd
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec

from contract.errors import ConfigError, QosfleetError
from contract.fleet import ProbeHealth
from contract.i18n import _
from contract.sampling import epoch_ms, gap_s, too_close

log = logging.getLogger("qosfleet.agent")

STATE_DB = "state.db"
WAL_FILES = ("-wal", "-shm")
CACHE_KIB = 256
# SQLite's primary result codes: the file is damaged, or we may not write it.
DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
REFUSED = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


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
            _("cannot create {path} ({reason})").format(path=state_dir, reason=exc.strerror),
            _("set state_dir in the config to a writable directory"),
        ) from exc


def next_seq(state_dir: Path) -> int:
    """Return the next sequence number, persisted (write, fsync, rename) before it is used."""
    ensure_state_dir(state_dir)
    path = state_dir / "seq"
    try:
        return _next_seq(state_dir, path)
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        raise _not_writable(
            Path(exc.filename or path), state_dir, exc.strerror or str(exc)
        ) from exc


def _next_seq(state_dir: Path, path: Path) -> int:
    # Tests on two links (each in its own process) and `qos-agent check` may ask at once.
    with (state_dir / "seq.lock").open("a") as lock:
        hand_over(state_dir / "seq.lock")
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
        hand_over(state_dir / "seq.lock")
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
                log.warning(_("cannot remember the last counted sample in %s: %s"), path, exc)
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
    hand_over(path)


def hand_over(path: Path) -> None:
    """A file root made (`sudo qos-agent check`) goes to the state directory's owner, the
    daemon's user, which must go on writing it (a root-owned seq.lock stopped every result)."""
    if os.geteuid() == 0:
        directory = path.parent.stat()
        if path.stat().st_uid != directory.st_uid:
            os.chown(path, directory.st_uid, directory.st_gid)


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

    Writable, a damaged database is set aside (see `quarantine`) and a new one started, since
    the probe must go on measuring; a read-only directory or database is a ConfigError naming
    the path and the fix, since restarting cannot cure it.
    """
    path = state_dir / STATE_DB
    if read_only:
        if not path.exists():
            raise ConfigError(
                "state_dir",
                _("no state database at {path}").format(path=path),
                _("the daemon has not run yet on this probe: start it with `qos-agent run`"),
            )
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
    ensure_state_dir(state_dir)
    require_writable(state_dir)
    try:
        return _open_checked(path)
    except DamagedDatabaseError as exc:
        damage = exc.reason
    moved = quarantine(path, damage)
    db = _open_checked(path)
    record_quarantine(db, Quarantine(at=datetime.now(UTC), moved_to=str(moved), reason=damage))
    return db


class DamagedDatabaseError(QosfleetError):
    """SQLite says the state database is not one, or is corrupt."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            _("the state database is damaged: {reason}").format(reason=reason),
            _(
                "restart qos-agent: at its start it sets a damaged database aside and begins a "
                "new one"
            ),
        )
        self.reason = reason


class Quarantine(msgspec.Struct, frozen=True, kw_only=True):
    """A damaged state database the daemon set aside at its start, for `qos-agent status`."""

    at: datetime
    moved_to: str
    reason: str


def _open_checked(path: Path) -> sqlite3.Connection:
    """Open (or create) the database; DamagedDatabaseError when its pages are bad."""
    if path.exists():
        _check_pages(path)
    db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # Rows are appended, read oldest first and deleted: a small page cache does, and keeps
        # the idle daemon small (the default is 2 MB).
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute("CREATE TABLE IF NOT EXISTS runtime (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    except sqlite3.DatabaseError as exc:
        db.close()
        if error_code(exc) in DAMAGED:
            raise DamagedDatabaseError(str(exc)) from exc
        if error_code(exc) in REFUSED:
            raise _not_writable(path, path.parent, str(exc)) from exc
        raise
    return db


def _check_pages(path: Path) -> None:
    """Read every page once (about 1 s per 100 MB here), at the daemon's start only.

    Read-only, so the check changes nothing: a writer closing a damaged database would fold its
    WAL into it and delete the WAL, and the copy kept for recovery would no longer be the one
    the daemon found.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if error_code(exc) in DAMAGED:
            raise DamagedDatabaseError(str(exc)) from exc
        return  # not a verdict on the pages (e.g. a lock): the writable open tells
    finally:
        db.close()
    if problems != ["ok"]:
        # One log line: SQLite's report comes in lines under a "*** in database main ***" head.
        lines = (line for text in problems for line in text.splitlines())
        raise DamagedDatabaseError("; ".join(line for line in lines if not line.startswith("*")))


def error_code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (0 when it has none)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF


def quarantine(path: Path, reason: str) -> Path:
    """Move a damaged database (and its WAL) aside, named for the time, kept for recovery."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while moved.exists():
        moved = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
        number += 1
    path.replace(moved)
    # Beside it under the names SQLite looks for, so opening the copy replays its WAL.
    for suffix in WAL_FILES:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.replace(moved.with_name(moved.name + suffix))
    log.error(
        _(
            "state: %s is damaged (%s); set aside as %s for recovery. Starting afresh: the results "
            "spooled in it are not sent, the month's budgets restart from zero "
            "(docs/install-probe.md, 'State database damaged')"
        ),
        path,
        reason,
        moved,
    )
    return moved


def require_writable(state_dir: Path) -> None:
    """The state directory and database must be writable: ConfigError naming what is not."""
    database = state_dir / STATE_DB
    for path in (state_dir, database, *(database.with_name(STATE_DB + s) for s in WAL_FILES)):
        if path.exists() and not os.access(path, os.W_OK):
            raise _not_writable(path, state_dir)


def _not_writable(path: Path, state_dir: Path, detail: str = "") -> ConfigError:
    """What is not writable, why (a read-only mount, or owner and mode), and the fix."""
    where = path if path.exists() else state_dir
    try:
        read_only_mount = bool(os.statvfs(where).f_flag & os.ST_RDONLY)
        facts = where.stat()
    except OSError:
        read_only_mount, facts = False, None
    if read_only_mount:
        return ConfigError(
            "state_dir",
            _("{path} is on a file system mounted read-only").format(path=path),
            _(
                "an SD card the kernel remounted read-only after errors? Check `dmesg`, remount "
                "it read-write or replace the card, then `systemctl restart qos-agent`"
            ),
        )
    if facts is not None:
        owner = _user_name(facts.st_uid)
        detail = f"{where} is owned by {owner}, mode {stat.S_IMODE(facts.st_mode):04o}" + (
            f"; {detail}" if detail else ""
        )
    user = _user_name(os.geteuid())
    return ConfigError(
        "state_dir",
        _("{path} is not writable by user {user} ({reason})").format(
            path=path, user=user, reason=detail
        ),
        _(
            "give the state directory back to the daemon's user: `chown -R {user}: {path}` and "
            "`chmod -R u+rwX {path}`, then `systemctl restart qos-agent`"
        ).format(user=user, path=state_dir),
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def record_quarantine(db: sqlite3.Connection, quarantined: Quarantine) -> None:
    db.execute(
        "INSERT OR REPLACE INTO runtime(key, value) VALUES ('quarantine', ?)",
        (msgspec.json.encode(quarantined),),
    )


def read_quarantine(db: sqlite3.Connection) -> Quarantine | None:
    """The damaged database the daemon last set aside, if it ever did."""
    row = db.execute("SELECT value FROM runtime WHERE key = 'quarantine'").fetchone()
    if row is None:
        return None
    try:
        return msgspec.json.decode(row[0], type=Quarantine)
    except msgspec.MsgspecError:
        return None


def record_daemon_state(db: sqlite3.Connection, state: DaemonState) -> None:
    try:
        db.execute(
            "INSERT OR REPLACE INTO runtime(key, value) VALUES ('daemon', ?)",
            (msgspec.json.encode(state),),
        )
    except sqlite3.Error as exc:
        log.warning(_("state: cannot record the daemon's state (%s)"), exc)


def read_daemon_state(db: sqlite3.Connection) -> DaemonState | None:
    row = db.execute("SELECT value FROM runtime WHERE key = 'daemon'").fetchone()
    if row is None:
        return None
    try:
        return msgspec.json.decode(row[0], type=DaemonState)
    except msgspec.MsgspecError:
        return None  # written by another version of the agent
