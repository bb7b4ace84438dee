"""Agent configs and a synthetic measurement, shared by the agent's unit and integration tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.budget import TestKind
from agent.commands.enroll import render_toml
from agent.config import AgentConfig, TargetConfig, load_config
from agent.measurements import speed
from agent.measurements.base import SpeedOutcome
from agent.measurements.kind import LinkOutcome, Outcome
from agent.schedule import Job
from contract.result import Throughput

PROBE_ID = "vn-11-ban-test"
MOBILE = {"interface": "wwan0", "access": "mobile", "technology": "4g", "operator": "Viettel"}
FIXED = {
    "interface": "eth0",
    "access": "fixed",
    "technology": "ftth",
    "operator": "VNPT",
    "plan": {"download_mbps": 300.0, "upload_mbps": 100.0},
}
# Tests many times a second, re-sends and reconnects quickly: the "accelerated" mode.
FAST_SCHEDULE = {
    "speed_mean_s": 0.05,
    "speed_floor_s": 0.01,
    "light_mean_s": 0.02,
    "light_floor_s": 0.005,
    "speed_duration_s": 0.5,
}
FAST_PUBLISH = {
    "receipt_timeout_s": 2.0,
    "resend_cap_s": 4.0,
    "reconnect_first_s": 0.1,
    "reconnect_cap_s": 0.5,
    "status_interval_s": 1.0,
}


def config_table(
    state_dir: Path,
    *,
    broker_url: str = "mqtt://127.0.0.1:9",
    target_url: str = "http://127.0.0.1:9",
    links: tuple[dict[str, Any], ...] = (MOBILE, FIXED),
    **tables: Any,
) -> dict[str, Any]:
    table: dict[str, Any] = {
        "probe_id": PROBE_ID,
        "state_dir": str(state_dir),
        "location": {
            "province_code": "11",
            "commune_code": "03211",
            "village": "Bản Nà Hin",
            "lat": 21.39,
            "lon": 103.02,
        },
        "links": list(links),
        "targets": [{"id": "t1", "url": target_url}],
        "broker": {"url": broker_url},
        "schedule": FAST_SCHEDULE,
        "publish": FAST_PUBLISH,
    }
    table.update(tables)
    return table


def write_config(path: Path, table: dict[str, Any]) -> AgentConfig:
    path.write_text(render_toml(table), encoding="utf-8")
    return load_config(path)


class SyntheticMeasure:
    """An instant "measurement" with a plausible result: the daemon's plumbing, without a link."""

    kinds: frozenset[TestKind] = frozenset({"speed", "light"})

    def __init__(self, mbps: float = 42.0, bytes_used: int = 50_000) -> None:
        self.mbps = mbps
        self.bytes_used = bytes_used
        self.calls: list[tuple[Job, int | None]] = []

    async def __call__(
        self, config: AgentConfig, job: Job, target: TargetConfig, budget_bytes: int | None
    ) -> LinkOutcome:
        self.calls.append((job, budget_bytes))
        started_at = datetime.now(UTC)
        # Results a few milliseconds apart: the store keeps one sample per series and millisecond.
        await asyncio.sleep(0.003)
        finished_at = datetime.now(UTC)
        duration_s = (finished_at - started_at).total_seconds()
        # The measured bytes are what the rate moves in that time (collectors check it).
        measured = round(self.mbps * 1e6 / 8 * duration_s)
        download = SpeedOutcome(
            throughput=Throughput(mbps=self.mbps, bytes=measured, duration_s=duration_s, flows=1),
            runner="synthetic",
            bytes_used=self.bytes_used,
        )
        outcome = Outcome(
            kind="download",
            slot=("download",),
            started_at=started_at,
            finished_at=finished_at,
            reading=speed.reading_of("download", download),
        )
        return LinkOutcome(
            runner="synthetic",
            started_at=started_at,
            finished_at=finished_at,
            outcomes=(outcome,),
        )
