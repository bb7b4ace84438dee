"""The probe's own history: every result of `qos-agent check` and of the daemon, kept on the probe.

One JSON line per result, `{"source": "check"|"daemon", "result": <the result v1>}`, appended
to `history.jsonl` in the state directory. The result is kept whole, so `qos-agent history`
judges it with the same words as the check screen, in the reader's language.

Bounded, so it cannot fill a Pi's SD card: at most MAX_ENTRIES results and none older than
MAX_AGE, and never more than MAX_BYTES on disk (a result is 2-5 kB, so about 1,000 fit). When an
append takes the file past a bound, the file is rewritten with the newest entries within all of
them, so the card sees one small append per result and a rewrite only now and then.

The history is a convenience, not the record (the spool and the collector are): writing it never
blocks or breaks a measurement or the spool. A busy lock is waited for briefly, then the entry is
given up; any failure is logged and the caller goes on. It is not fsynced: a power cut may lose
the last entry, never a result.

The file is hostile input (a damaged card, a hand edit, a disk that filled mid-line): reading takes
at most the last READ_BYTES, and a line that is not one bounded, valid entry is skipped and
counted, never a crash.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import msgspec

from agent.state import hand_over
from contract.errors import ConfigError, WireError
from contract.i18n import _
from contract.result import MAX_RESULT_BYTES, Result, decode_result, encode_result

log = logging.getLogger("qosfleet.agent")

HISTORY_FILE: Final = "history.jsonl"
LOCK_FILE: Final = "history.lock"
MAX_ENTRIES: Final = 1000
MAX_AGE: Final = timedelta(days=90)
MAX_BYTES: Final = 4 * 1024 * 1024
# What a reader takes from the end of the file: a file grown past its bound (written by hand, or
# by another program) is read at its tail, never whole.
READ_BYTES: Final = 2 * MAX_BYTES
# An entry is a result plus its source: what the collector accepts, and a little more.
MAX_LINE_BYTES: Final = MAX_RESULT_BYTES + 256
# How long an append waits for another process's append or rewrite (a few ms) before giving up.
LOCK_WAIT_S: Final = 1.0
# A history is read whatever the probe's clock said when it wrote it (a clock stepped back after
# a result was kept must not hide it): no entry is "in the future" of this.
_NO_FUTURE: Final = datetime(9000, 1, 1, tzinfo=UTC)

Source = Literal["check", "daemon"]


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    source: Source
    result: Result


class _Line(msgspec.Struct, frozen=True, kw_only=True):
    """An entry as read: the result left as bytes for the contract's own checks."""

    source: Source
    result: msgspec.Raw


_line_decoder: Final = msgspec.json.Decoder(_Line)


class History(msgspec.Struct, frozen=True, kw_only=True):
    """What was read: the valid entries, oldest first, and how many lines were skipped."""

    entries: tuple[Entry, ...] = ()
    skipped: int = 0


def record(state_dir: Path, source: Source, result: Result, *, now: datetime | None = None) -> bool:
    """Append `result` to the history; False (and a log line) when it could not be kept.

    Never raises: the caller is a measurement or the daemon's test loop.
    """
    try:
        line = msgspec.json.encode({"source": source, "result": msgspec.Raw(encode_result(result))})
        with _locked(state_dir) as locked:
            if not locked:
                log.warning(
                    _("history: busy for %.1f s, result %s not kept in it"), LOCK_WAIT_S, result.id
                )
                return False
            path = state_dir / HISTORY_FILE
            with path.open("ab") as history:
                history.write(line + b"\n")
            hand_over(path)
            if _over_bounds(path, now or datetime.now(UTC)):
                _rewrite(path, now or datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - a convenience must never stop a measurement
        log.warning(_("history: result %s not kept (%s)"), result.id, exc)
        return False
    return True


@contextmanager
def _locked(state_dir: Path) -> Iterator[bool]:
    with (state_dir / LOCK_FILE).open("a") as lock:
        hand_over(state_dir / LOCK_FILE)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.01)
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _over_bounds(path: Path, now: datetime) -> bool:
    """Past a bound: too many bytes or lines, or its first entry too old (or unreadable)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        return True
    with path.open("rb") as history:
        data = history.read(size)
    if data.count(b"\n") > MAX_ENTRIES:
        return True
    first = _entry(data.partition(b"\n")[0])
    return first is None or first.result.finished_at < now - MAX_AGE


def _rewrite(path: Path, now: datetime) -> None:
    """Keep the newest valid entries within every bound (a bad line goes here)."""
    kept = _within_bounds(read(path.parent).entries, now)
    lines = [msgspec.json.encode(entry) + b"\n" for entry in kept]
    while sum(map(len, lines)) > MAX_BYTES // 2:
        lines.pop(0)  # half the cap: the next rewrite is many appends away
    scratch = path.with_suffix(".tmp")
    scratch.write_bytes(b"".join(lines))
    hand_over(scratch)
    scratch.replace(path)


def _within_bounds(entries: tuple[Entry, ...], now: datetime) -> list[Entry]:
    recent = [entry for entry in entries if entry.result.finished_at >= now - MAX_AGE]
    return recent[-MAX_ENTRIES:]


def _entry(line: bytes) -> Entry | None:
    """One line as an entry, or None: whatever is wrong with it."""
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        raw = _line_decoder.decode(line)
        return Entry(source=raw.source, result=decode_result(bytes(raw.result), now=_NO_FUTURE))
    except (msgspec.DecodeError, WireError, UnicodeDecodeError, RecursionError, ValueError):
        return None


def read(state_dir: Path) -> History:
    """The history's valid entries, oldest first (as appended), with the count of bad lines."""
    path = state_dir / HISTORY_FILE
    try:
        with path.open("rb") as history:
            size = history.seek(0, os.SEEK_END)
            history.seek(max(size - READ_BYTES, 0))
            data = history.read(READ_BYTES)
    except FileNotFoundError:
        return History()
    except OSError as exc:
        if exc.errno not in {errno.EACCES, errno.EPERM}:
            raise
        raise ConfigError(
            str(path),
            _("cannot read the history ({reason})").format(reason=exc.strerror),
            _("run as root or as the agent's user (sudo qos-agent history)"),
        ) from exc
    lines = data.split(b"\n")
    if size > READ_BYTES:
        lines = lines[1:]  # begins mid-line: the rest of an entry not read
    entries: list[Entry] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        entry = _entry(line)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    return History(entries=tuple(entries), skipped=skipped)
