"""Per-link monthly byte budgets: mobile data costs money; a test that would overspend is skipped.

Months are calendar months in UTC. What a test will spend is estimated from what the last test of
its kind on that link spent (with a margin), or from the configured first estimate.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from datetime import datetime
from typing import Literal

from contract.fleet import LinkBudget
from contract.i18n import _

log = logging.getLogger("qosfleet.agent")

TestKind = Literal["speed", "light"]
# Rates vary from one test to the next; a margin keeps an estimate from undershooting.
ESTIMATE_MARGIN = 1.25

SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_months (
    interface TEXT NOT NULL,
    month TEXT NOT NULL,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    skipped_tests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (interface, month)
);
CREATE TABLE IF NOT EXISTS test_bytes (
    interface TEXT NOT NULL,
    kind TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (interface, kind)
);
"""


def month_of(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


class Budget:
    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        caps: dict[str, int | None],
        first_estimates: dict[str, int],
    ) -> None:
        self._db = db
        self.caps = caps
        self.first_estimates = first_estimates
        db.executescript(SCHEMA)

    def used(self, interface: str, now: datetime) -> tuple[int, int]:
        """(bytes used, tests skipped) on `interface` in the month of `now`."""
        return month_usage(self._db, interface, month_of(now))

    def left(self, interface: str, now: datetime) -> int | None:
        """Bytes left this month, or None when the link has no cap."""
        cap = self.caps.get(interface)
        if cap is None:
            return None
        return max(cap - self.used(interface, now)[0], 0)

    def estimate(self, interface: str, kind: TestKind) -> int:
        row = self._db.execute(
            "SELECT bytes FROM test_bytes WHERE interface = ? AND kind = ?", (interface, kind)
        ).fetchone()
        if row is None:
            return self.first_estimates[kind]
        return math.ceil(int(row[0]) * ESTIMATE_MARGIN)

    def allows(self, interface: str, kind: TestKind, now: datetime) -> bool:
        """True when the test's estimated bytes fit in what is left; else the skip is counted."""
        left = self.left(interface, now)
        if left is None or self.estimate(interface, kind) <= left:
            return True
        self._write(
            "INSERT INTO budget_months(interface, month, skipped_tests) VALUES (?, ?, 1) "
            "ON CONFLICT DO UPDATE SET skipped_tests = skipped_tests + 1",
            (interface, month_of(now)),
        )
        return False

    def charge(self, interface: str, kind: TestKind, spent: int, now: datetime) -> None:
        """Count what a test spent, and remember it as the next estimate for its kind."""
        self._write(
            "INSERT INTO budget_months(interface, month, used_bytes) VALUES (?, ?, ?) "
            "ON CONFLICT DO UPDATE SET used_bytes = used_bytes + excluded.used_bytes",
            (interface, month_of(now), spent),
        )
        if spent > 0:
            self._write(
                "INSERT INTO test_bytes(interface, kind, bytes) VALUES (?, ?, ?) "
                "ON CONFLICT DO UPDATE SET bytes = excluded.bytes",
                (interface, kind, spent),
            )

    def _write(self, statement: str, parameters: tuple[str | int, ...]) -> None:
        try:
            self._db.execute(statement, parameters)
        except sqlite3.Error as exc:
            # A full disk must not stop measuring; the budget is then only as good as before.
            log.error(_("budget: cannot record (%s)"), exc)  # noqa: TRY400

    def report(self, now: datetime) -> tuple[LinkBudget, ...]:
        """The capped links' budgets this month (uncapped links are left out)."""
        return link_budgets(self._db, self.caps, month_of(now))


def month_usage(db: sqlite3.Connection, interface: str, month: str) -> tuple[int, int]:
    row = db.execute(
        "SELECT used_bytes, skipped_tests FROM budget_months WHERE interface = ? AND month = ?",
        (interface, month),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def link_budgets(
    db: sqlite3.Connection, caps: dict[str, int | None], month: str
) -> tuple[LinkBudget, ...]:
    budgets = []
    for interface, cap in caps.items():
        if cap is None:
            continue
        used, skipped = month_usage(db, interface, month)
        budgets.append(
            LinkBudget(interface=interface, used_bytes=used, cap_bytes=cap, skipped_tests=skipped)
        )
    return tuple(budgets)
