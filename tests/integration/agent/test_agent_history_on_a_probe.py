"""`qos-agent history` of a real probe: the real daemon and a real `qos-agent check` measure
against qos-target on loopback; the history lists both, newest first, and survives damage."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.history import HISTORY_FILE
from lab.services import Endpoint, free_port, venv_script
from tests.integration.agent.conftest import make_agent, wait_until
from tests.unit.agent.builders import FIXED, config_table

pytestmark = [pytest.mark.integration]


def _agent(*arguments: str, language: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("qos-agent"), "--lang", language, *arguments],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_checks_and_daemon_results_are_listed_newest_first(
    tmp_path: Path, target: Endpoint
) -> None:
    loopback = FIXED | {"interface": "lo"}  # a test bound to its interface stays on loopback
    table = config_table(
        tmp_path / "state",
        broker_url=f"mqtt://127.0.0.1:{free_port()}",  # no broker: results wait in the spool
        target_url=target.url,
        links=(loopback,),
        schedule={
            "speed_mean_s": 0.6,
            "speed_floor_s": 0.3,
            "light_mean_s": 0.3,
            "light_floor_s": 0.1,
            "speed_duration_s": 0.3,
        },
    )
    agent = make_agent(tmp_path / "agent", table, synthetic=False)
    config = str(agent.config_path)
    history = agent.state_dir / HISTORY_FILE
    with agent.running():
        wait_until(
            lambda: history.exists() and history.read_bytes().count(b"\n") >= 2,
            timeout_s=30,
            what="two daemon results in the history",
        )
    checked = _agent(
        "check", "--config", config, "--tests", "latency,download", "--duration", "0.5", "--csv"
    )
    assert checked.returncode in {0, 1}, checked.stderr
    spooled = agent.spooled()

    listed = _agent("history", "--config", config, "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    answer: dict[str, Any] = json.loads(listed.stdout)
    entries = answer["entries"]
    assert answer["skipped"] == 0
    # The check on top; below it every result the daemon spooled (the last may have been cut
    # off by the stop between the spool and the history).
    sources = [entry["source"] for entry in entries]
    assert sources[0] == "check"
    assert sources[1:] == ["daemon"] * (len(sources) - 1)
    assert spooled - 1 <= len(sources) - 1 <= spooled
    finished = [entry["result"]["finished_at"] for entry in entries]
    assert finished == sorted(finished, reverse=True)
    assert all(entry["verdict"]["outcome"] in {"pass", "fail", "not_judged"} for entry in entries)

    # The same check row as `check --csv` printed, with its source first.
    rows = list(csv.DictReader(io.StringIO(_agent("history", "--config", config, "--csv").stdout)))
    checked_row = next(csv.DictReader(io.StringIO(checked.stdout)))
    assert rows[0] == {"source": "check"} | checked_row

    # Damage: a line cut mid-write and a line of junk. Counted, said, and the rest still shown.
    with history.open("ab") as file:
        file.write(b'{"source": "daemon", "result": {"schema"\n\x00\xff junk\n')
    shown = _agent("history", "--config", config, "--limit", "3", language="vi")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 6  # three entries, a headline and a detail line each
    assert all(len(line) <= 80 for line in lines)
    assert any(word in lines[0] for word in ("ĐẠT", "KHÔNG ĐẠT", "CHƯA ĐÁNH GIÁ"))
    assert "kiểm tra" in lines[1]
    assert "2" in shown.stderr
    # Filters: another link has no entries; the check's own link has all.
    none = _agent("history", "--config", config, "--link", "wwan0", "--json")
    assert json.loads(none.stdout)["entries"] == []
