"""The probe registry: who is enrolled (retained meta), who is online (retained status, last will).

Every collector instance subscribes to every probe's meta and status (not shared), keeps the
registry in its state database so a restart knows the fleet before the broker re-sends retained
messages, and writes the fleet-state series of dashboards/SERIES.md (`qos_probe_online`,
`qos_probe_budget_remaining_ratio`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.state import transaction
from collector.store import make_line
from contract.errors import WireError, WireLimitError
from contract.fleet import ProbeMeta, ProbeStatus, decode_meta, decode_status, encode
from contract.result import PROBE_ID_RE, Location
from contract.signing import parse_public_key

log = logging.getLogger("qosfleet.collector.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS probes (
    probe_id TEXT PRIMARY KEY,
    meta BLOB,
    status BLOB,
    last_seen REAL
);
"""
ONLINE_MEASUREMENT = "qos_probe"
State = Literal["online", "offline", "unknown"]


class FleetMessageRejectedError(Exception):
    """A meta or status message the registry refused; `reason` is the counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What a result is checked against: the probe's key and where it was installed."""

    meta: ProbeMeta
    public_key: Ed25519PublicKey

    @property
    def location(self) -> Location:
        return self.meta.location


@dataclass(slots=True)
class _Probe:
    enrollment: Enrollment | None = None
    status: ProbeStatus | None = None
    last_seen: float | None = None


class ProbeRegistry:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.executescript(SCHEMA)
        self._probes: dict[str, _Probe] = {}
        self._unsaved_last_seen: set[str] = set()
        for probe_id, meta, status, last_seen in self._db.execute(
            "SELECT probe_id, meta, status, last_seen FROM probes"
        ):
            probe = self._probes.setdefault(probe_id, _Probe(last_seen=last_seen))
            # Rows were validated before they were saved; a row that no longer decodes (an
            # older schema) is skipped and replaced when the broker re-sends the retained message.
            try:
                probe.enrollment = _enrollment(decode_meta(meta)) if meta else None
                probe.status = decode_status(status) if status else None
            except WireError as exc:
                log.warning("registry entry of %r ignored: %s", probe_id, exc)

    def enrollment(self, probe_id: str) -> Enrollment | None:
        probe = self._probes.get(probe_id)
        return probe.enrollment if probe else None

    def state(self, probe_id: str) -> State:
        probe = self._probes.get(probe_id)
        return probe.status.state if probe and probe.status else "unknown"

    def last_seen(self, probe_id: str) -> float | None:
        probe = self._probes.get(probe_id)
        return probe.last_seen if probe else None

    def online_count(self) -> int:
        return sum(1 for p in self._probes.values() if p.status and p.status.state == "online")

    def enrolled_count(self) -> int:
        return sum(1 for p in self._probes.values() if p.enrollment)

    def apply_meta(self, probe_id: str, payload: bytes, now: float) -> None:
        """Enroll (or re-enroll) from a retained meta message; an empty payload un-enrolls."""
        _check_probe_id(probe_id)
        if not payload:
            self._probe(probe_id).enrollment = None
            self._save(probe_id, "meta", None)
            log.info("probe %r un-enrolled (retained meta cleared)", probe_id)
            return
        try:
            meta = decode_meta(payload)
            enrollment = _enrollment(meta)
        except WireError as exc:
            raise _refusal(exc) from exc
        if meta.probe_id != probe_id:
            raise FleetMessageRejectedError(
                "topic-mismatch", f"meta of {meta.probe_id!r} on the topic of {probe_id!r}"
            )
        probe = self._probe(probe_id)
        probe.enrollment = enrollment
        probe.last_seen = max(probe.last_seen or now, now)
        self._save(probe_id, "meta", encode(meta))
        log.info("probe %s enrolled in %r", probe_id, meta.location.village)

    def apply_status(self, probe_id: str, payload: bytes, now: float) -> bool:
        """Record a birth message or last will; True when the probe's state changed."""
        _check_probe_id(probe_id)
        if not payload:
            return False
        try:
            status = decode_status(payload)
        except WireError as exc:
            raise _refusal(exc) from exc
        if status.probe_id != probe_id:
            raise FleetMessageRejectedError(
                "topic-mismatch", f"status of {status.probe_id!r} on the topic of {probe_id!r}"
            )
        probe = self._probe(probe_id)
        enrolled = _interfaces(probe.enrollment)
        unknown = [
            budget.interface
            for budget in (status.health.budgets if status.health else ())
            if enrolled is not None and budget.interface not in enrolled
        ]
        if unknown:
            raise FleetMessageRejectedError(
                "unknown-interface", f"budgets of links {unknown!r} the enrollment does not list"
            )
        changed = probe.status is None or probe.status.state != status.state
        probe.status = status
        if status.state == "online":
            probe.last_seen = max(probe.last_seen or now, now)
        self._save(probe_id, "status", encode(status))
        return changed

    def seen(self, probe_id: str, at: float) -> None:
        """A result arrived from the probe (kept in memory, saved by `save_last_seen`)."""
        probe = self._probe(probe_id)
        if probe.last_seen is None or at > probe.last_seen:
            probe.last_seen = at
            self._unsaved_last_seen.add(probe_id)

    def save_last_seen(self) -> None:
        if not self._unsaved_last_seen:
            return
        rows = [(pid, self._probes[pid].last_seen) for pid in sorted(self._unsaved_last_seen)]
        with transaction(self._db):
            self._db.executemany(
                "INSERT INTO probes (probe_id, last_seen) VALUES (?, ?) "
                "ON CONFLICT (probe_id) DO UPDATE SET last_seen = excluded.last_seen",
                rows,
            )
        self._unsaved_last_seen.clear()

    def fleet_lines(self, at_ms: int, only: Collection[str] | None = None) -> list[str]:
        """`qos_probe_online` and budgets left, for every probe with a known state (or `only`)."""
        lines: list[str] = []
        for probe_id in sorted(self._probes if only is None else only):
            probe = self._probes.get(probe_id)
            status = probe.status if probe else None
            if probe is None or status is None:
                continue
            location = probe.enrollment.location if probe.enrollment else None
            tags = {
                "probe": probe_id,
                "province": location.province_code if location else "",
                "commune": location.commune_code if location else "",
                "village": location.village if location else "",
            }
            online = 1.0 if status.state == "online" else 0.0
            lines.append(make_line(ONLINE_MEASUREMENT, tags, {"online": online}, at_ms))
            # A budget becomes a series only for an enrolled link: a probe's series are bounded
            # by its enrollment, whatever its status messages say.
            enrolled = _interfaces(probe.enrollment) or frozenset()
            for budget in status.health.budgets if status.health else ():
                if budget.cap_bytes > 0 and budget.interface in enrolled:
                    left = max(budget.cap_bytes - budget.used_bytes, 0) / budget.cap_bytes
                    budget_tags = {"probe": probe_id, "interface": budget.interface}
                    fields = {"budget_remaining_ratio": left}
                    lines.append(make_line(ONLINE_MEASUREMENT, budget_tags, fields, at_ms))
        return lines

    def _probe(self, probe_id: str) -> _Probe:
        return self._probes.setdefault(probe_id, _Probe())

    def _save(self, probe_id: str, column: Literal["meta", "status"], value: bytes | None) -> None:
        last_seen = self._probes[probe_id].last_seen
        with transaction(self._db):
            self._db.execute(
                f"INSERT INTO probes (probe_id, {column}, last_seen) VALUES (?, ?, ?) "  # noqa: S608 - column is one of two literals
                f"ON CONFLICT (probe_id) DO UPDATE SET {column} = excluded.{column}, "
                "last_seen = excluded.last_seen",
                (probe_id, value, last_seen),
            )


def _check_probe_id(probe_id: str) -> None:
    """A topic's probe level names a probe, or the message is refused before it is kept."""
    if not PROBE_ID_RE.fullmatch(probe_id):
        raise FleetMessageRejectedError("topic-mismatch", f"{probe_id!r} is not a probe id")


def _refusal(exc: WireError) -> FleetMessageRejectedError:
    reason = exc.limit if isinstance(exc, WireLimitError) else "malformed"
    return FleetMessageRejectedError(reason, exc.message)


def _interfaces(enrollment: Enrollment | None) -> frozenset[str] | None:
    """The enrolled links' interfaces (None: not enrolled)."""
    if enrollment is None:
        return None
    return frozenset(link.interface for link in enrollment.meta.links)


def _enrollment(meta: ProbeMeta) -> Enrollment:
    return Enrollment(meta=meta, public_key=parse_public_key(meta.public_key))
