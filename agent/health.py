"""The probe's own state: is its clock to be trusted, how much disk is left, how hot is it?"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from contract.result import Clock

THERMAL_ROOT = Path("/sys/class/thermal")
# Zone types that measure the CPU: Raspberry Pi, most ARM boards, Intel, AMD (k10temp via hwmon
# has no thermal zone, so a PC may report none).
CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "soc_thermal", "x86_pkg_temp", "acpitz")


def _run(argv: list[str]) -> str | None:
    try:
        answer = subprocess.run(argv, capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout if answer.returncode == 0 else None


def clock_status() -> Clock:
    """Ask systemd whether NTP has synchronised the clock; unknown when it cannot say."""
    timedatectl = shutil.which("timedatectl")
    answer = (
        _run([timedatectl, "show", "--property=NTPSynchronized", "--value"])
        if timedatectl
        else None
    )
    synced = {"yes": True, "no": False}.get(answer.strip()) if answer is not None else None
    return Clock(synced=synced, offset_ms=chrony_offset_ms())


def chrony_offset_ms() -> float | None:
    """How far the local clock is ahead of NTP time (negative: behind), from chronyd."""
    chronyc = shutil.which("chronyc")
    answer = _run([chronyc, "-c", "tracking"]) if chronyc else None
    return parse_chrony_tracking(answer) if answer else None


def parse_chrony_tracking(csv_line: str) -> float | None:
    """`chronyc -c tracking` field 5 is the correction still to apply, positive when slow."""
    fields = csv_line.strip().split(",")
    try:
        correction_s = float(fields[4])
    except (IndexError, ValueError):
        return None
    return -correction_s * 1000.0


def disk_free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def cpu_temperature_c(thermal_root: Path = THERMAL_ROOT) -> float | None:
    """The CPU's temperature from the kernel's thermal zones; None when the machine has none."""
    readings: dict[str, float] = {}
    for zone in sorted(thermal_root.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text(encoding="ascii").strip()
            millidegrees = int((zone / "temp").read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        readings.setdefault(kind, millidegrees / 1000.0)
    for kind in CPU_ZONE_TYPES:
        if kind in readings:
            return readings[kind]
    return next(iter(readings.values()), None)
