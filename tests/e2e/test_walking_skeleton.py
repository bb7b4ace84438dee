"""One result from probe to store: real target, agent, mosquitto, collector, VictoriaMetrics."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from lab.services import Endpoint, Mosquitto, VictoriaMetrics, qos_collector, venv_script

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AGENT_CONFIG = """\
probe_id = "vn-01-ban-thuong"
state_dir = "{state_dir}"

[location]
province_code = "01"
commune_code = "00004"
village = "Bản Thượng"
lat = 21.03
lon = 105.85

[[links]]
interface = "lo"
access = "fixed"
technology = "ftth"
operator = "VNPT"
plan = {{ download_mbps = 300, upload_mbps = 300 }}

[[targets]]
id = "lab-target"
url = "{target_url}"

[broker]
url = "{broker_url}"
"""


def test_download_measured_by_the_agent_is_queryable_by_probe_and_village(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, target: Endpoint
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        AGENT_CONFIG.format(
            state_dir=tmp_path / "state", target_url=target.url, broker_url=broker.url
        ),
        encoding="utf-8",
    )
    with qos_collector(tmp_path, broker_url=broker.url, store_url=store.url) as collector:
        agent = subprocess.run(
            [
                venv_script("qos-agent"),
                "check",
                "--config",
                str(config),
                "--duration",
                "1",
                "--publish",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert agent.returncode == 0, agent.stderr
        envelope = json.loads(agent.stdout)
        measured = envelope["measurements"]["download"]["mbps"]
        assert measured > 0
        series = store.wait_for(
            'qos_download_mbps{probe="vn-01-ban-thuong", village="Bản Thượng", '
            'province="01", commune="00004", technology="ftth", operator="VNPT"}',
            at=_epoch(envelope["finished_at"]),
        )
        assert len(series) == 1
        assert float(series[0]["value"][1]) == pytest.approx(measured, rel=1e-9)
        with urllib.request.urlopen(collector.url) as response:
            metrics = response.read().decode()
        assert "qos_collector_results_accepted_total 1.0" in metrics


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()
