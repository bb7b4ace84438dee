"""One measurement on demand: what a technician runs on site, and what the daemon will repeat."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.envelope import build_result
from agent.health import clock_status
from agent.runners.http import measure_download
from agent.state import next_seq
from contract.result import Link, Result, Target

UNENROLLED_LINK = Link(interface="auto", access="fixed", technology="unknown", operator="unknown")


def probe_id_from_hostname() -> str:
    name = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower()).strip("-")
    return name[:63] if len(name) > 1 else "unenrolled-probe"


def target_for(url: str, config: AgentConfig | None) -> Target:
    host = urlsplit(url).hostname or url
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        version = 4
    target_id = next((t.id for t in config.targets if t.url == url), "adhoc") if config else "adhoc"
    return Target(id=target_id, address=host, ip_version=6 if version == 6 else 4)  # noqa: PLR2004


async def run_check(
    *,
    target_url: str,
    config: AgentConfig | None,
    interface: str | None,
    duration_s: float,
    flows: int,
) -> Result:
    """Run one download test on a link and wrap it in a result envelope."""
    link = config.link(interface) if config else UNENROLLED_LINK
    if config is None and interface is not None:
        link = Link(interface=interface, access="fixed", technology="unknown", operator="unknown")
    started_at = datetime.now(UTC)
    download = await measure_download(target_url, duration_s=duration_s, flows=flows)
    finished_at = datetime.now(UTC)
    seq = next_seq(Path(config.state_dir)) if config else 0
    return build_result(
        probe_id=config.probe_id if config else probe_id_from_hostname(),
        seq=seq,
        started_at=started_at,
        finished_at=finished_at,
        location=config.location if config else None,
        link=link,
        target=target_for(target_url, config),
        download=download,
        clock=clock_status(),
    )
