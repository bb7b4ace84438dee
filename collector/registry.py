"""The probe registry: who is enrolled (retained meta), who is online (retained status, last will).

Every collector instance subscribes to every probe's meta, status and approval (not shared), keeps
the registry in its state database so a restart knows the fleet before the broker re-sends retained
messages, and writes the fleet-state series of dashboards/SERIES.md (`qos_probe_online`,
`qos_probe_budget_remaining_ratio`).

Identity is the enrollment. A probe's first meta pins its public key and location (trust on first
use); a later meta with another key or location does not replace the pin, since anyone holding the
probe's broker password can publish one: it waits as the probe's pending enrollment, the probe is
"disputed", and an operator decides with `qos-collector probes approve` or `revoke`. Those publish
a retained approval on `qos/v1/{probe}/approval`, a topic only the operator's broker account may
write (deploy/mosquitto/acl): every collector instance, including one started later with an empty
state directory, receives the same decision from the broker, in order, before any meta.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from collector.state import transaction
from collector.store import make_line
from contract.errors import QosfleetError, WireError, WireLimitError
from contract.fleet import ProbeMeta, ProbeStatus, decode_meta, decode_status, encode
from contract.result import (
    PROBE_ID_RE,
    TOPIC_PREFIX,
    Frozen,
    Location,
    ProbeId,
    UtcTime,
    check_names,
)
from contract.signing import parse_public_key, public_key_text
from contract.typed import decode_json

log = logging.getLogger("qosfleet.collector.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS probes (
    probe_id TEXT PRIMARY KEY,
    meta BLOB,
    status BLOB,
    last_seen REAL
);
"""
# Added to databases made before enrollments were pinned; `pin` NULL there means "pin the meta".
TRUST_COLUMNS = {"pin": "BLOB", "pending": "BLOB", "revoked": "INTEGER", "decided_at": "REAL"}
ONLINE_MEASUREMENT = "qos_probe"
APPROVAL_SCHEMA = "qosfleet.approval/1"
# An approval is a key and a place: anything near this size is not one.
MAX_APPROVAL_BYTES = 4096
State = Literal["online", "offline", "unknown"]
# trusted: results are checked against the pin; disputed: another key or location waits for an
# operator; revoked: an operator withdrew the probe.
Standing = Literal["trusted", "disputed", "revoked"]
# What a meta message did: pinned a new probe, updated an agreeing one, opened (or renewed) a
# dispute, or nothing.
MetaOutcome = Literal["pinned", "updated", "disputed", "unchanged"]


def approval_topic(probe_id: str) -> str:
    return f"{TOPIC_PREFIX}/{probe_id}/approval"


def key_fingerprint(public_key: str) -> str:
    """What an operator compares and types: 16 hex digits of the raw key's SHA-256."""
    raw = parse_public_key(public_key).public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Pin(Frozen, frozen=True, kw_only=True):
    """What a probe's results are checked against: its key and where it was installed."""

    public_key: str
    location: Location


class Approval(Frozen, frozen=True, kw_only=True):
    """An operator's decision, retained on the probe's approval topic."""

    schema: str = APPROVAL_SCHEMA
    probe_id: ProbeId
    decision: Literal["approved", "revoked"]
    at: UtcTime
    # The pin approved (absent for a revocation).
    pin: Pin | None = None
    # Who decided and why, for the record (`qos-collector probes approve --note`).
    note: str = ""


_approval_decoder = msgspec.json.Decoder(Approval)
_pin_decoder = msgspec.json.Decoder(Pin)


FleetRefusal = Literal["malformed", "too-large", "too-deep", "topic-mismatch", "unknown-interface"]
# What the operator reading the collector's log does about each refusal.
_REFUSAL_HINTS: dict[FleetRefusal, str] = {
    "malformed": "the sender is not a qosfleet agent of this version: compare the probe's "
    "qosfleet version with the collector's (pip show qosfleet)",
    "too-large": "a genuine agent never sends this much: check who holds the probe's password",
    "too-deep": "a genuine agent never nests this deep: check who holds the probe's password",
    "topic-mismatch": "a probe publishes only under its own id: check the agent's probe_id "
    "and the broker's ACL (deploy/mosquitto/acl)",
    "unknown-interface": "re-enroll the probe with every link it measures (qos-agent enroll)",
}


class FleetMessageRejectedError(QosfleetError):
    """A meta, status or approval message the registry refused; `reason` is the counter label."""

    def __init__(self, reason: FleetRefusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}", _REFUSAL_HINTS[reason])
        self.reason: FleetRefusal = reason


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What a result is checked against: the pinned key and location, and the probe's standing."""

    location: Location
    public_key: Ed25519PublicKey
    standing: Standing = "trusted"


@dataclass(slots=True)
class _Probe:
    pin: Pin | None = None
    # The latest meta agreeing with the pin, and the latest disagreeing one (for an operator).
    meta: ProbeMeta | None = None
    pending: ProbeMeta | None = None
    revoked: bool = False
    # When the operator's last decision was made: a retained approval delivered again is no news.
    decided_at: float | None = None
    status: ProbeStatus | None = None
    last_seen: float | None = None
    enrollment: Enrollment | None = None

    @property
    def standing(self) -> Standing:
        if self.revoked:
            return "revoked"
        return "disputed" if self.pending is not None else "trusted"

    def refresh(self) -> None:
        """Rebuild the enrollment results are checked against (read on every result)."""
        pin = self.pin
        self.enrollment = (
            None
            if pin is None
            else Enrollment(pin.location, parse_public_key(pin.public_key), self.standing)
        )


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """One probe as `qos-collector probes list` shows it."""

    probe_id: str
    standing: Standing | None  # None: never pinned
    pin: Pin | None
    pending: ProbeMeta | None
    last_seen: float | None


class ProbeRegistry:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.executescript(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(probes)")}
        for column, kind in TRUST_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE probes ADD COLUMN {column} {kind}")
        self._probes: dict[str, _Probe] = {}
        self._unsaved_last_seen: set[str] = set()
        for row in self._db.execute(
            "SELECT probe_id, meta, status, last_seen, pin, pending, revoked, decided_at "
            "FROM probes"
        ):
            probe_id, meta, status, last_seen, pin, pending, revoked, decided_at = row
            probe = self._probes.setdefault(probe_id, _Probe(last_seen=last_seen))
            # Rows were validated before they were saved; a row that no longer decodes (an
            # older schema) is skipped and replaced when the broker re-sends the retained message.
            try:
                probe.meta = decode_meta(meta) if meta else None
                probe.pending = decode_meta(pending) if pending else None
                if pin:
                    probe.pin = _pin_decoder.decode(pin)
                elif probe.meta is not None:  # enrolled before pins: the meta is the pin
                    probe.pin = pin_of(probe.meta)
                probe.status = decode_status(status) if status else None
            except (WireError, msgspec.DecodeError) as exc:
                log.warning("registry entry of %r ignored: %s", probe_id, exc)
            probe.revoked = bool(revoked)
            probe.decided_at = decided_at
            probe.refresh()

    def enrollment(self, probe_id: str) -> Enrollment | None:
        probe = self._probes.get(probe_id)
        return probe.enrollment if probe else None

    def records(self) -> list[ProbeRecord]:
        return [
            ProbeRecord(
                probe_id,
                probe.standing if probe.pin is not None or probe.revoked else None,
                probe.pin,
                probe.pending,
                probe.last_seen,
            )
            for probe_id, probe in sorted(self._probes.items())
        ]

    def disputed(self) -> list[str]:
        return sorted(pid for pid, p in self._probes.items() if p.standing == "disputed")

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

    def apply_meta(self, probe_id: str, payload: bytes, now: float) -> MetaOutcome:
        """Pin a new probe's key and location; hold any other for an operator's decision."""
        _check_probe_id(probe_id)
        if not payload:
            # Clearing a retained message is no decision: only an operator unpins (revoke).
            log.info("retained meta of %s cleared; its pinned enrollment stays", probe_id)
            return "unchanged"
        meta = _decoded_meta(probe_id, payload)
        probe = self._probe(probe_id)
        probe.last_seen = max(probe.last_seen or now, now)
        if probe.pin is None and not probe.revoked:
            probe.pin, probe.meta = pin_of(meta), meta
            outcome: MetaOutcome = "pinned"
            log.info(
                "probe %s enrolled in %r, key %s pinned",
                probe_id,
                meta.location.village,
                key_fingerprint(meta.public_key),
            )
        elif not probe.revoked and _agrees(meta, probe.pin):
            outcome = "unchanged" if meta == probe.meta else "updated"
            probe.meta = meta
        elif probe.pending is not None and pin_of(meta) == pin_of(probe.pending):
            outcome = "unchanged"
            probe.pending = meta
        else:
            probe.pending = meta
            outcome = "disputed"
            log.warning(
                "probe %s published another enrollment (key %s in %r; pinned: %s): refused until "
                "an operator runs `qos-collector probes approve` or `revoke`",
                probe_id,
                key_fingerprint(meta.public_key),
                meta.location.village,
                _describe(probe.pin),
            )
        if outcome != "unchanged":
            probe.refresh()
            self._save_trust(probe_id)
        return outcome

    def apply_approval(self, probe_id: str, payload: bytes) -> bool:
        """An operator's retained decision; True when it changed the probe's standing or pin."""
        _check_probe_id(probe_id)
        if not payload:
            return False
        approval = _decoded_approval(probe_id, payload)
        probe = self._probe(probe_id)
        at = approval.at.timestamp()
        if probe.decided_at is not None and at <= probe.decided_at:
            return False  # delivered again (retained): a dispute opened since stays open
        probe.decided_at = at
        pending, probe.pending = probe.pending, None
        if approval.decision == "revoked":
            probe.revoked = True
            log.warning("probe %s revoked by an operator: %r", probe_id, approval.note)
        else:
            assert approval.pin is not None  # _decoded_approval checked it
            probe.revoked = False
            probe.pin = normal_pin(approval.pin)
            # The meta agreeing with the decision, if any, describes the probe from now on.
            agreeing = [m for m in (pending, probe.meta) if m and _agrees(m, probe.pin)]
            probe.meta = agreeing[0] if agreeing else None
            log.warning(
                "probe %s approved by an operator: key %s in %r (%r)",
                probe_id,
                key_fingerprint(approval.pin.public_key),
                approval.pin.location.village,
                approval.note,
            )
        probe.refresh()
        self._save_trust(probe_id)
        return True

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
        enrolled = _interfaces(probe.meta)
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
            location = probe.pin.location if probe.pin else None
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
            enrolled = _interfaces(probe.meta) or frozenset()
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

    def _save_trust(self, probe_id: str) -> None:
        probe = self._probes[probe_id]
        row = (
            probe_id,
            encode(probe.meta) if probe.meta else None,
            msgspec.json.encode(probe.pin) if probe.pin else None,
            encode(probe.pending) if probe.pending else None,
            int(probe.revoked),
            probe.decided_at,
            probe.last_seen,
        )
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO probes (probe_id, meta, pin, pending, revoked, decided_at, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET "
                "meta = excluded.meta, pin = excluded.pin, pending = excluded.pending, "
                "revoked = excluded.revoked, decided_at = excluded.decided_at, "
                "last_seen = excluded.last_seen",
                row,
            )


def _check_probe_id(probe_id: str) -> None:
    """A topic's probe level names a probe, or the message is refused before it is kept."""
    if not PROBE_ID_RE.fullmatch(probe_id):
        raise FleetMessageRejectedError("topic-mismatch", f"{probe_id!r} is not a probe id")


def _refusal(exc: WireError) -> FleetMessageRejectedError:
    reason = exc.limit if isinstance(exc, WireLimitError) else "malformed"
    return FleetMessageRejectedError(reason, exc.message)


def _interfaces(meta: ProbeMeta | None) -> frozenset[str] | None:
    """The enrolled links' interfaces (None: no enrollment agreeing with the pin yet)."""
    if meta is None:
        return None
    return frozenset(link.interface for link in meta.links)


def pin_of(meta: ProbeMeta) -> Pin:
    return normal_pin(Pin(public_key=meta.public_key, location=meta.location))


def normal_pin(pin: Pin) -> Pin:
    """One spelling of the key, so that equal keys compare equal."""
    key = public_key_text(parse_public_key(pin.public_key))
    return Pin(public_key=key, location=pin.location)


def _agrees(meta: ProbeMeta, pin: Pin | None) -> bool:
    return pin is not None and pin_of(meta) == pin


def _describe(pin: Pin | None) -> str:
    if pin is None:
        return "none (revoked before enrollment)"
    return f"key {key_fingerprint(pin.public_key)} in {pin.location.village!r}"


def _decoded_meta(probe_id: str, payload: bytes) -> ProbeMeta:
    try:
        meta = decode_meta(payload)
        parse_public_key(meta.public_key)
    except WireError as exc:
        raise _refusal(exc) from exc
    if meta.probe_id != probe_id:
        raise FleetMessageRejectedError(
            "topic-mismatch", f"meta of {meta.probe_id!r} on the topic of {probe_id!r}"
        )
    return meta


def _decoded_approval(probe_id: str, payload: bytes) -> Approval:
    try:
        approval = decode_json(
            _approval_decoder, payload, max_bytes=MAX_APPROVAL_BYTES, hint="an operator's decision"
        )
        if approval.pin is not None:
            parse_public_key(approval.pin.public_key)
            check_names({"$.pin.location.village": approval.pin.location.village})
    except WireError as exc:
        raise _refusal(exc) from exc
    if approval.schema != APPROVAL_SCHEMA:
        raise FleetMessageRejectedError("malformed", f"unsupported schema {approval.schema!r}")
    if approval.probe_id != probe_id:
        raise FleetMessageRejectedError(
            "topic-mismatch", f"approval of {approval.probe_id!r} on the topic of {probe_id!r}"
        )
    if approval.decision == "approved" and approval.pin is None:
        raise FleetMessageRejectedError("malformed", "an approval must name the pinned key")
    return approval


def encode_approval(approval: Approval) -> bytes:
    return msgspec.json.encode(approval)
