"""Which latency method a probe uses depends on its capability only, and a fallback says so.

The measurement runs in a subprocess so that CAP_NET_RAW can be taken away from it (setpriv) the
way a probe's unit would lack it; as root the same code has it, as the unit grants it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import msgspec
import pytest

from agent.measurements.latency import LatencyOutcome
from lab.services import Endpoint

pytestmark = pytest.mark.integration

MEASURE = """
import asyncio, sys
import msgspec
from agent.measurements import latency
from agent.measurements.base import Binding
outcome = asyncio.run(
    latency.measure(sys.argv[1], Binding(), stage="latency-idle", count=3, interval_s=0.01)
)
sys.stdout.write(msgspec.json.encode(outcome).decode())
"""
WITHOUT_NET_RAW = ("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--")


def measure_auto(url: str, prefix: tuple[str, ...] = ()) -> LatencyOutcome:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", MEASURE, url],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return msgspec.json.decode(done.stdout, type=LatencyOutcome)


@pytest.mark.skipif(os.geteuid() != 0, reason="as root a process holds CAP_NET_RAW")
def test_with_the_units_capability_latency_is_icmp(target: Endpoint) -> None:
    outcome = measure_auto(target.url)
    assert outcome.stats is not None
    assert outcome.stats.method == "icmp"
    assert outcome.errors == ()


def test_without_raw_sockets_the_result_says_icmp_was_not_used(target: Endpoint) -> None:
    prefix = WITHOUT_NET_RAW if os.geteuid() == 0 and shutil.which("setpriv") else ()
    outcome = measure_auto(target.url, prefix)
    assert outcome.stats is not None
    assert outcome.stats.method == "tcp-connect"
    [error] = outcome.errors
    assert (error.stage, error.code) == ("latency-idle", "latency-method")
    assert "CAP_NET_RAW" in error.message
