"""The probe registry: enrollment and liveness from retained messages, kept across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.registry import FleetMessageRejectedError, ProbeRegistry
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


def _meta(probe_id: str = "pi-0001") -> bytes:
    return encode(
        ProbeMeta(
            probe_id=probe_id,
            location=LOCATION,
            links=(Link(interface="wwan0", access="mobile", technology="4g", operator="Viettel"),),
            public_key=public_key_text(new_private_key()),
            agent_version="0.1.0",
        )
    )


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


def test_an_empty_retained_meta_un_enrolls(tmp_path: Path) -> None:
    registry = ProbeRegistry(open_database(tmp_path))
    registry.apply_meta("pi-0001", _meta(), now=1.0)
    registry.apply_meta("pi-0001", b"", now=2.0)
    assert registry.enrollment("pi-0001") is None
    assert ProbeRegistry(open_database(tmp_path)).enrollment("pi-0001") is None


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("meta", _meta("pi-0002"), "topic-mismatch"),
        ("meta", b"{}", "malformed"),
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
