"""A process killed (SIGKILL) in the middle of spool writes loses nothing it had committed."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.spool import Spool
from agent.state import open_state_db

pytestmark = [pytest.mark.integration]

# Spools results as fast as it can and prints each id once its transaction has committed.
WRITER = """
import sys, time
from pathlib import Path
from agent.spool import Spool
from agent.state import open_state_db

spool = Spool(open_state_db(Path(sys.argv[1])), max_results=10**6, max_bytes=10**9)
seq = int(sys.argv[2])
while True:
    if spool.add(f"result-{seq:06d}", seq, b"x" * 1500, now=time.time()):
        print(seq, flush=True)
    seq += 1
"""


def test_sigkill_mid_write_keeps_every_committed_result_and_no_torn_one(tmp_path: Path) -> None:
    rng = random.Random(5)
    committed: set[int] = set()
    next_seq = 0
    for _ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(next_seq)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        first = writer.stdout.readline()  # the writer is up and committing
        time.sleep(rng.uniform(0.05, 0.3))
        writer.send_signal(signal.SIGKILL)
        printed, _ = writer.communicate()
        committed |= {int(line) for line in (first + printed).split()}
        stored = _stored(tmp_path)
        # Every commit the writer reported is on disk; at most one more (killed before printing).
        assert committed <= stored
        assert len(stored - committed) <= 1
        committed = stored
        next_seq = max(stored) + 1
    spool = Spool(open_state_db(tmp_path), max_results=10**6, max_bytes=10**9)
    report = spool.report()
    assert report.spooled == report.depth == len(committed) > 100
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _stored(state_dir: Path) -> set[int]:
    db = open_state_db(state_dir, read_only=True)
    try:
        return {int(seq) for (seq,) in db.execute("SELECT seq FROM spool")}
    finally:
        db.close()
