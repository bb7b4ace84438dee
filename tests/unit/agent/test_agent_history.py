"""The probe's history: kept within its bounds, read whatever the file holds, never in the way of
a measurement; shown newest first in 80 columns with the check screen's verdict words."""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from uuid6 import uuid7

from agent import history
from agent.cli import main
from agent.commands.history import chosen, show
from contract import i18n
from contract.result import (
    SCHEMA,
    Clock,
    Link,
    Measurements,
    Provenance,
    Result,
    Target,
    Throughput,
)

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def _result(
    *, mbps: float = 45.0, interface: str = "wwan0", at: datetime = NOW, technology: str = "4g"
) -> Result:
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id="vn-11-ban-na-hin",
        seq=1,
        started_at=at - timedelta(seconds=20),
        finished_at=at,
        clock=Clock(synced=True),
        link=msgspec.convert(
            {"interface": interface, "access": "mobile", "technology": technology}
            | {"operator": "Viettel", "setting": "outdoor_moving"},
            Link,
        ),
        target=Target(id="hn1", address="198.18.0.1", ip_version=4),
        measurements=Measurements(
            download=Throughput(mbps=mbps, bytes=int(mbps * 1e6 / 8 * 10), duration_s=10, flows=4)
        ),
        provenance=Provenance(agent_version="0.1.0", runner="http", bytes_used=10_000_000),
    )


def _args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**({"link": None, "since": None, "limit": 20} | given))


@pytest.fixture
def vietnamese() -> Iterator[None]:
    i18n.use("vi")
    yield
    i18n.use("en")


def test_an_entry_comes_back_whole_with_its_source(tmp_path: Path) -> None:
    kept = _result()
    assert history.record(tmp_path, "check", kept, now=NOW)
    read = history.read(tmp_path)
    assert read.skipped == 0
    assert [(entry.source, entry.result) for entry in read.entries] == [("check", kept)]


def test_newest_first_filtered_by_link_and_time_and_limited(tmp_path: Path) -> None:
    for minute in range(6):
        interface = "eth0" if minute % 2 else "wwan0"
        at = NOW + timedelta(minutes=minute)
        history.record(tmp_path, "daemon", _result(interface=interface, at=at), now=at)
    read = history.read(tmp_path)
    minutes = [
        int((entry.result.finished_at - NOW).total_seconds() // 60)
        for entry in chosen(read, _args())
    ]
    assert minutes == [5, 4, 3, 2, 1, 0]
    wwan = chosen(read, _args(link="wwan0", since=NOW + timedelta(minutes=1), limit=1))
    assert [entry.result.finished_at for entry in wwan] == [NOW + timedelta(minutes=4)]


HOSTILE_LINES = [
    b"not json",
    b'{"source": "check", "result": {"schema": "qosfleet.result/1"',  # truncated mid-write
    b'{"source": "check", "result": 42}',  # a wrong type
    b'{"source": "elsewhere", "result": {}}',  # an unknown source
    b"\xff\xfe\x00 not UTF-8",
    b"[" * 5000 + b"]" * 5000,  # nested past any bound
    b'{"source": "check", "result": "' + b"x" * (history.MAX_LINE_BYTES + 10) + b'"}',  # huge
    b"\x00" * 100,
]


def test_bad_lines_are_skipped_and_counted_the_rest_is_read(tmp_path: Path) -> None:
    history.record(tmp_path, "check", _result(mbps=10.0), now=NOW)
    with (tmp_path / history.HISTORY_FILE).open("ab") as file:
        file.write(b"\n".join(HOSTILE_LINES) + b"\n")
    history.record(tmp_path, "daemon", _result(mbps=20.0), now=NOW)
    read = history.read(tmp_path)
    assert read.skipped == len(HOSTILE_LINES)
    assert [
        entry.result.measurements.download.mbps
        for entry in read.entries
        if entry.result.measurements.download
    ] == [10.0, 20.0]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(max_size=2000))
def test_any_bytes_in_the_file_never_crash_the_reader(tmp_path: Path, junk: bytes) -> None:
    (tmp_path / history.HISTORY_FILE).write_bytes(junk)
    read = history.read(tmp_path)
    assert read.entries == ()
    assert read.skipped <= junk.count(b"\n") + 1


def test_the_count_bound_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "MAX_ENTRIES", 10)
    for index in range(25):
        history.record(tmp_path, "daemon", _result(mbps=float(index + 1)), now=NOW)
    lines = (tmp_path / history.HISTORY_FILE).read_bytes().count(b"\n")
    assert lines <= 10
    newest = history.read(tmp_path).entries[-1].result.measurements.download
    assert newest is not None
    assert newest.mbps == 25.0


def test_the_age_bound_holds(tmp_path: Path) -> None:
    old = NOW - history.MAX_AGE - timedelta(days=1)
    history.record(tmp_path, "daemon", _result(at=old), now=old)
    history.record(tmp_path, "daemon", _result(at=NOW), now=NOW)
    assert [entry.result.finished_at for entry in history.read(tmp_path).entries] == [NOW]


def test_a_huge_file_is_read_at_its_tail_and_cut_back_on_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / history.HISTORY_FILE
    line = msgspec.json.encode({"source": "daemon", "result": _result()}) + b"\n"
    with path.open("wb") as file:
        file.write(b"x" * history.READ_BYTES + b"\n")  # a damaged start, more than a reader takes
        file.write(line * 3)
    read = history.read(tmp_path)
    assert (len(read.entries), read.skipped) == (3, 0)
    assert history.record(tmp_path, "check", _result(), now=NOW)
    assert path.stat().st_size <= history.MAX_BYTES
    assert [entry.source for entry in history.read(tmp_path).entries] == ["daemon"] * 3 + ["check"]


def test_recording_never_raises_and_says_so(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    assert not history.record(not_a_directory, "daemon", _result(), now=NOW)


def test_a_busy_history_is_given_up_not_waited_for(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with (tmp_path / history.LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        started = time.monotonic()
        assert not history.record(tmp_path, "check", _result(), now=NOW)
        assert time.monotonic() - started < history.LOCK_WAIT_S + 0.5
    finally:
        release.set()
        holder.join()


@pytest.mark.usefixtures("vietnamese")
def test_the_screen_fits_80_columns_with_the_check_screens_verdict_words(tmp_path: Path) -> None:
    history.record(tmp_path, "daemon", _result(mbps=45.0), now=NOW)  # 4G needs >= 40 Mb/s
    history.record(tmp_path, "check", _result(mbps=12.0), now=NOW)
    history.record(tmp_path, "check", _result(technology="unknown"), now=NOW)
    console = Console(width=80, file=io.StringIO(), color_system=None)
    show(console, chosen(history.read(tmp_path), _args()))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    lines = shown.splitlines()
    assert max(map(len, lines)) <= 80
    headlines = [line for line in lines if not line.startswith(" ")]
    verdicts = [line.split("  ", 1)[1].split(" — ")[0] for line in headlines]
    assert verdicts == ["CHƯA ĐÁNH GIÁ", "KHÔNG ĐẠT", "ĐẠT"]
    assert "12,0 Mb/s" in shown  # Vietnamese decimals
    assert "kiểm tra" in shown or "dịch vụ nền" in shown


def test_json_and_csv_carry_every_entry_with_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history.record(tmp_path, "daemon", _result(mbps=45.0), now=NOW)
    history.record(tmp_path, "check", _result(mbps=12.0), now=NOW)
    assert main(["history", "--state-dir", str(tmp_path), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [(e["source"], e["verdict"]["outcome"]) for e in answer["entries"]] == [
        ("check", "fail"),
        ("daemon", "pass"),
    ]
    assert answer["entries"][0]["result"]["measurements"]["download"]["mbps"] == 12.0
    assert main(["history", "--state-dir", str(tmp_path), "--csv", "--limit", "1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(row["source"], row["verdict"], row["download_mbps"]) for row in rows] == [
        ("check", "fail", "12")
    ]


def test_unreadable_entries_are_said_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history.record(tmp_path, "check", _result(), now=NOW)
    with (tmp_path / history.HISTORY_FILE).open("ab") as file:
        file.write(b"garbage\n{}\n")
    assert main(["history", "--state-dir", str(tmp_path), "--json"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["skipped"] == 2
    assert "2 unreadable entries" in said.err


@pytest.mark.parametrize("since", ["7d", "24h", "30m", "2026-12-01", "2026-12-01T08:00"])
def test_since_takes_ages_and_dates(tmp_path: Path, since: str) -> None:
    history.record(tmp_path, "check", _result(at=datetime.now(UTC)))
    assert main(["history", "--state-dir", str(tmp_path), "--since", since, "--json"]) == 0


@pytest.mark.parametrize("option", [["--since", "yesterday"], ["--limit", "0"], ["--limit", "x"]])
def test_bad_options_are_refused_with_a_reason(
    tmp_path: Path, option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["history", "--state-dir", str(tmp_path), *option])
    assert stopped.value.code == 2
    assert option[1] in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file for another user")
def test_a_history_root_writes_stays_the_daemons(tmp_path: Path) -> None:
    """`sudo qos-agent check` appends first; the daemon's user must still append after it."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    daemon_user = 65534  # nobody
    os.chown(state_dir, daemon_user, daemon_user)
    history.record(state_dir, "check", _result(), now=NOW)
    for name in (history.HISTORY_FILE, history.LOCK_FILE):
        assert (state_dir / name).stat().st_uid == daemon_user
