"""The demos' output when it is not a terminal (a log, a pipe, CI): a line per step, URLs whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from lab.progress import lab_console, step
from lab.village import DAEMON_TEST_GAP_S, VILLAGES, LabVillage, agent_config

LONG_URL = "http://127.0.0.1:45678/vmui/?g0.expr=" + "qos_download_mbps" * 12


def test_a_step_is_a_line_when_the_output_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = lab_console()
    assert not console.is_terminal
    with step(console, "starting the central stack"):
        console.print("  store up")
    assert capsys.readouterr().out == "starting the central stack ...\n  store up\n"


def test_a_url_is_never_wrapped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for columns in (None, "80"):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        lab_console().print(f"  VictoriaMetrics UI   {LONG_URL}  (live until the lab ends)")
        assert LONG_URL in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("village", VILLAGES, ids=lambda v: v.probe)
def test_a_lab_agent_config_is_valid_and_its_daemon_never_tests(
    village: LabVillage, tmp_path: Path
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        agent_config(
            village,
            target_url="http://198.18.0.2:8080",
            broker_url="unix:///tmp/mqtt.sock",
            state_dir=tmp_path / "state",
        ),
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.schedule.speed_floor_s == DAEMON_TEST_GAP_S
    assert config.schedule.light_floor_s == DAEMON_TEST_GAP_S
