"""The collector's local state: one SQLite database (journal and probe registry) in --state-dir."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from contract.errors import ServiceError
from contract.i18n import _

DATABASE_NAME = "collector.sqlite3"


def open_database(state_dir: Path) -> sqlite3.Connection:
    """Open (and create on first use) the state database; one connection, used by one thread."""
    path = state_dir / DATABASE_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except (OSError, sqlite3.Error) as exc:
        raise ServiceError(
            _("cannot open the collector state database {path}: {error}").format(
                path=path, error=exc
            ),
            _("give --state-dir a writable directory on a local disk (one per collector process)"),
        ) from exc
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on error; a refusing disk becomes a ServiceError."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        # After SQLITE_FULL or an I/O error SQLite may have rolled back already.
        if connection.in_transaction:
            with suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise ServiceError(
            f"the collector state database refused a write: {exc}",
            "check free space and permissions of --state-dir",
        ) from exc
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
