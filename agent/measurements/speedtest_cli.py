"""The speedtest runner: speedtest-cli's library (module `speedtest`) against qos-target, offline.

For comparison with a widely known tool on the same link. speedtest-cli comes with the agent
extra and is imported only when this runner is chosen. Its constructor fetches the
configuration from speedtest.net; the subclass below answers with the same values locally
(Ookla's published defaults: 10 s per direction, 4 requests per image size, 8 download threads;
8 upload threads, which speedtest-cli itself switches to on any link above 0.1 Mb/s), and the
"server" is qos-target's /speedtest/ endpoints. It binds by source address only: the library
offers no device binding.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from typing import Any, Final

from agent.measurements.base import (
    Binding,
    Direction,
    Progress,
    SpeedOutcome,
    SpeedSettings,
    failed_speed,
    no_progress,
)
from agent.net.cpu import CpuMonitor
from agent.net.rawhttp import TargetError, resolve
from contract.i18n import _
from contract.result import Throughput

RUNNER: Final = "speedtest"
# speedtest-cli scores an unreachable server's three pings as 3600 s each; half of that is a miss.
UNREACHABLE_MS: Final = 1_000_000.0
UPLOAD_SIZES: Final = (524_288, 1_048_576, 7_340_032)
UPLOAD_MAX_CHUNKS: Final = 50


def offline_config(length_s: int) -> dict[str, Any]:
    """What speedtest-cli's get_config() derives from speedtest.net's XML, fixed here."""
    per_size = math.ceil(UPLOAD_MAX_CHUNKS / len(UPLOAD_SIZES))
    return {
        "client": {"ip": "", "isp": "offline", "lat": "0", "lon": "0", "country": ""},
        "ignore_servers": [],
        "sizes": {
            "upload": list(UPLOAD_SIZES),
            "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000],
        },
        "counts": {"upload": per_size, "download": 4},
        "threads": {"upload": 8, "download": 8},
        "length": {"upload": length_s, "download": length_s},
        "upload_max": per_size * len(UPLOAD_SIZES),
    }


def _offline_class(module: Any, length_s: int) -> Any:
    """speedtest.Speedtest whose get_config() never leaves the machine."""

    def get_config(self: Any) -> dict[str, Any]:
        self.config.update(offline_config(length_s))
        self.lat_lon = (0.0, 0.0)
        return dict(self.config)

    return type("OfflineSpeedtest", (module.Speedtest,), {"get_config": get_config})


def _run(
    direction: Direction, server_url: str, source: str | None, settings: SpeedSettings
) -> tuple[float, int, str]:
    """Blocking: (bits per second, bytes, speedtest-cli version); raises on failure."""
    module = importlib.import_module("speedtest")
    length_s = max(1, math.floor(settings.max_duration_s))
    tester = _offline_class(module, length_s)(
        source_address=source, timeout=settings.connect_timeout_s
    )
    server = {"url": server_url, "id": 0, "name": "qos-target", "sponsor": "qosfleet", "d": 0}
    best = tester.get_best_server([server])
    if float(best["latency"]) >= UNREACHABLE_MS:
        raise ConnectionError(f"speedtest-cli could not reach {server_url}")
    if direction == "download":
        bps = float(tester.download())
        used = int(tester.results.bytes_received)
    else:
        bps = float(tester.upload(pre_allocate=True))
        used = int(tester.results.bytes_sent)
    return bps, used, str(module.__version__)


async def measure(
    direction: Direction,
    target_url: str,
    binding: Binding,
    settings: SpeedSettings,
    progress: Progress = no_progress,
) -> SpeedOutcome:
    """speedtest-cli's download or upload against qos-target; failures become errors."""
    try:
        importlib.import_module("speedtest")
    except ImportError:
        return failed_speed(
            direction,
            RUNNER,
            "tool-missing",
            "speedtest-cli cannot be imported: reinstall the agent (the qosfleet-agent package, "
            "or the project with its agent extra), or choose --runner http",
        )
    try:
        endpoint = await resolve(target_url)
    except TargetError as exc:
        return failed_speed(direction, RUNNER, "resolve-failed", str(exc))
    server_url = target_url.rstrip("/") + "/speedtest/upload.php"
    progress(_("{direction}: speedtest-cli").format(direction=_(direction)), None)
    try:
        async with CpuMonitor() as cpu:
            bps, used, version = await asyncio.to_thread(
                _run, direction, server_url, binding.source_for(endpoint.version), settings
            )
    except (OSError, ValueError) as exc:
        return failed_speed(direction, RUNNER, "connect-failed", str(exc))
    if used <= 0 or bps <= 0:
        return failed_speed(
            direction,
            RUNNER,
            "transfer-failed",
            "speedtest-cli moved no data",
            tool_version=version,
        )
    seconds = used * 8 / bps
    peak = cpu.peak()
    return SpeedOutcome(
        throughput=Throughput(
            mbps=bps / 1e6, bytes=used, duration_s=seconds, flows=8, warmup_s=0.0
        ),
        runner=RUNNER,
        tool_version=version,
        bytes_used=used,
        stop_reason="duration",
        cpu_peak_percent=peak.peak_percent,
        probe_limited=peak.probe_limited,
    )
