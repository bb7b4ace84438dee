"""The probe registry: enrollment and liveness from retained messages, kept across restarts;
pinned keys and places, changed only by an operator's approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from collector.registry import (
    Approval,
    FleetMessageRejectedError,
    Pin,
    ProbeRegistry,
    encode_approval,
)
from collector.state import open_database
from contract.fleet import (
    MAX_FLEET_MESSAGE_BYTES,
    LinkBudget,
    ProbeHealth,
    ProbeMeta,
    ProbeStatus,
    encode,
)
from contract.result import Clock, Link, Location
from contract.signing import new_private_key, public_key_text

LOCATION = Location(
    province_code="11", commune_code="03211", village="Bản Nà Hin", lat=22.1, lon=103.2
)


KEY = public_key_text(new_private_key())
OTHER_KEY = public_key_text(new_private_key())
AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _meta(
    probe_id: str = "pi-0001",
    *,
    key: str = KEY,
    location: Location = LOCATION,
    agent_version: str = "0.1.0",
) -> bytes:
    return encode(
        ProbeMeta(
            probe_id=probe_id,
            location=location,
            links=(Link(interface="wwan0", access="mobile", technology="4g", operator="Viettel"),),
            public_key=key,
            agent_version=agent_version,
        )
    )


def _approval(
    decision: str = "approved",
    *,
    key: str = OTHER_KEY,
    location: Location = LOCATION,
    at: datetime = AT,
    probe_id: str = "pi-0001",
) -> bytes:
    pin = Pin(public_key=key, location=location) if decision == "approved" else None
    approval = Approval(probe_id=probe_id, decision=decision, at=at, pin=pin)  # type: ignore[arg-type]
    return encode_approval(approval)


def _status(
    state: str,
    probe_id: str = "pi-0001",
    *,
    used: int = 0,
    interfaces: tuple[str, ...] = ("wwan0",),
) -> bytes:
    budgets = tuple(
        LinkBudget(interface=interface, used_bytes=used, cap_bytes=1000) for interface in interfaces
    )
    health = ProbeHealth(clock=Clock(synced=True), budgets=budgets)
    return encode(ProbeStatus(probe_id=probe_id, state=state, health=health))  # type: ignore[arg-type]


DEEP = b'{"schema": "qosfleet.status/1", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"


def test_enrollment_and_liveness_survive_a_restart(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=100.0)
    assert registry.apply_status("pi-0001", _status("online"), now=101.0)
    assert not registry.apply_status("pi-0001", _status("online"), now=102.0)
    registry.seen("pi-0001", 150.0)
    registry.save_last_seen()
    again = ProbeRegistry(open_database(tmp_path))
    enrollment = again.enrollment("pi-0001")
    assert enrollment is not None
    assert enrollment.location == LOCATION
    assert again.state("pi-0001") == "online"
    assert again.last_seen("pi-0001") == 150.0
    assert again.online_count() == 1
    assert again.enrolled_count() == 1


def test_an_empty_retained_meta_does_not_unpin(tmp_path: Path) -> None:
    """Anyone with the probe's broker password can clear its meta, then enroll another key."""
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    assert registry.apply_meta("pi-0001", b"", now=2.0) == "unchanged"
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=3.0) == "disputed"
    enrollment = ProbeRegistry(open_database(tmp_path)).enrollment("pi-0001")
    assert enrollment is not None
    assert public_key_text(enrollment.public_key) == KEY


def test_the_first_meta_pins_and_a_changed_key_or_place_waits_for_an_operator(
    tmp_path: Path,
) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    assert registry.apply_meta("pi-0001", _meta(), now=1.0) == "pinned"
    assert registry.apply_meta("pi-0001", _meta(), now=2.0) == "unchanged"
    assert registry.apply_meta("pi-0001", _meta(agent_version="0.2.0"), now=3.0) == "updated"
    elsewhere = msgspec.structs.replace(LOCATION, village="Bản Khác")
    assert registry.apply_meta("pi-0001", _meta(location=elsewhere), now=4.0) == "disputed"
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=5.0) == "disputed"
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=6.0) == "unchanged"
    for again in (registry, ProbeRegistry(open_database(tmp_path))):
        enrollment = again.enrollment("pi-0001")
        assert enrollment is not None
        assert (enrollment.location, enrollment.standing) == (LOCATION, "disputed")
        assert public_key_text(enrollment.public_key) == KEY
        assert again.disputed() == ["pi-0001"]
        (record,) = again.records()
        assert record.pending is not None
        assert record.pending.public_key == OTHER_KEY


def test_an_approval_pins_the_new_key_and_settles_the_dispute(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=2.0)
    assert registry.apply_approval("pi-0001", _approval(key=OTHER_KEY))
    enrollment = registry.enrollment("pi-0001")
    assert enrollment is not None
    assert enrollment.standing == "trusted"
    assert public_key_text(enrollment.public_key) == OTHER_KEY
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=3.0) == "unchanged"
    # The broker delivers the retained approval again at every (re)subscription: a dispute
    # opened since stays open.
    assert registry.apply_meta("pi-0001", _meta(), now=4.0) == "disputed"
    assert not registry.apply_approval("pi-0001", _approval(key=OTHER_KEY))
    assert registry.disputed() == ["pi-0001"]


def test_an_approval_before_the_first_meta_closes_trust_on_first_use(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_approval("pi-0001", _approval(key=KEY))
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=1.0) == "disputed"
    assert registry.apply_meta("pi-0002", _meta("pi-0002"), now=1.0) == "pinned"


def test_a_revoked_probe_stays_revoked_whatever_it_publishes(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    assert registry.apply_approval("pi-0001", _approval("revoked"))
    assert registry.apply_meta("pi-0001", _meta(), now=2.0) == "disputed"
    for again in (registry, ProbeRegistry(open_database(tmp_path))):
        enrollment = again.enrollment("pi-0001")
        assert enrollment is not None
        assert enrollment.standing == "revoked"
    later = AT + timedelta(hours=1)
    assert registry.apply_approval("pi-0001", _approval(key=KEY, at=later))
    enrollment = registry.enrollment("pi-0001")
    assert enrollment is not None
    assert enrollment.standing == "trusted"


def test_a_database_from_before_pins_pins_its_enrollments(tmp_path: Path) -> None:
    connection = open_database(tmp_path)
    connection.execute(
        "CREATE TABLE probes (probe_id TEXT PRIMARY KEY, meta BLOB, status BLOB, last_seen REAL)"
    )
    connection.execute("INSERT INTO probes VALUES ('pi-0001', ?, NULL, 1.0)", (_meta(),))
    registry = ProbeRegistry(connection)
    enrollment = registry.enrollment("pi-0001")
    assert enrollment is not None
    assert public_key_text(enrollment.public_key) == KEY
    assert registry.apply_meta("pi-0001", _meta(key=OTHER_KEY), now=2.0) == "disputed"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * 5000, "too-large"),
        (b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}", "too-deep"),
        (_approval(location=msgspec.structs.replace(LOCATION, village="A\u202ex")), "malformed"),
        (_approval(probe_id="pi-0002"), "topic-mismatch"),
        (_approval().replace(b'"pin":', b'"nip":'), "malformed"),
        (
            msgspec.json.encode(
                {**msgspec.json.decode(_approval()), "schema": "qosfleet.approval/2"}
            ),
            "malformed",
        ),
    ],
)
def test_bad_approvals_are_refused(tmp_path: Path, payload: bytes, reason: str) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    with pytest.raises(FleetMessageRejectedError) as caught:
        registry.apply_approval("pi-0001", payload)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("meta", _meta("pi-0002"), "topic-mismatch"),
        ("meta", b"{}", "malformed"),
        (
            "meta",
            _meta(location=msgspec.structs.replace(LOCATION, village="A\nqos x=1")),
            "malformed",
        ),
        ("status", _status("online", "pi-0002"), "topic-mismatch"),
        ("status", b"[1]", "malformed"),
        ("meta", DEEP, "too-deep"),
        ("status", DEEP, "too-deep"),
        ("meta", b" " * (MAX_FLEET_MESSAGE_BYTES + 1), "too-large"),
        ("status", _status("online", interfaces=tuple(f"eth{n}" for n in range(9))), "malformed"),
        ("status", _status("online", interfaces=("wwan\u20280",)), "malformed"),
        ("meta", _meta().replace(b"Viettel", rb"Viettel\n"), "malformed"),
        ("meta", _meta().replace("Bản Nà Hin".encode(), b"\\u202eevil"), "malformed"),
    ],
)
def test_bad_fleet_messages_are_refused(
    tmp_path: Path, kind: str, payload: bytes, reason: str
) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    apply = registry.apply_meta if kind == "meta" else registry.apply_status
    with pytest.raises(FleetMessageRejectedError) as caught:
        apply("pi-0001", payload, 1.0)
    assert caught.value.reason == reason
    assert registry.enrollment("pi-0001") is None


def test_fleet_lines_carry_the_series_of_dashboards_series_md(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    registry.apply_status("pi-0001", _status("offline", used=250), now=2.0)
    registry.apply_status("pi-0009", _status("online", "pi-0009", used=1500), now=2.0)
    # A probe not enrolled has no links, so its budgets make no series.
    assert registry.fleet_lines(5000) == [
        r"qos_probe,probe=pi-0001,province=11,commune=03211,village=Bản\ Nà\ Hin online=0.0 5000",
        "qos_probe,probe=pi-0001,interface=wwan0 budget_remaining_ratio=0.75 5000",
        "qos_probe,probe=pi-0009 online=1.0 5000",
    ]
    assert registry.fleet_lines(5000, only={"pi-0009", "pi-unknown"}) == [
        "qos_probe,probe=pi-0009 online=1.0 5000",
    ]


@pytest.mark.parametrize("kind", ["meta", "status"])
def test_a_topic_that_names_no_probe_is_refused(tmp_path: Path, kind: str) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    apply = registry.apply_meta if kind == "meta" else registry.apply_status
    with pytest.raises(FleetMessageRejectedError) as caught:
        apply("pi\n0001", b"", 1.0)
    assert caught.value.reason == "topic-mismatch"
    assert ProbeRegistry(open_database(tmp_path)).enrolled_count() == 0


def test_a_status_may_only_budget_the_enrolled_links(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    with pytest.raises(FleetMessageRejectedError) as caught:
        registry.apply_status("pi-0001", _status("online", interfaces=("wwan0", "eth7")), 2.0)
    assert caught.value.reason == "unknown-interface"
    assert registry.state("pi-0001") == "unknown"
