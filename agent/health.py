"""The probe's own state that travels with every result: is its clock to be trusted?"""

from __future__ import annotations

import shutil
import subprocess

from contract.result import Clock


def clock_status() -> Clock:
    """Ask systemd whether NTP has synchronised the clock; unknown when it cannot say."""
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None:
        return Clock(synced=None)
    try:
        answer = subprocess.run(
            [timedatectl, "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return Clock(synced=None)
    value = answer.stdout.strip()
    return Clock(synced={"yes": True, "no": False}.get(value))
