"""A long path (a satellite backhaul's 600 ms of round trip): measured right, or said to be
unmeasured, never a wrong rate (issue 18).

`qos-agent check` runs inside a probe namespace behind the lab's delay line against qos-target;
the truth is TCP goodput through tbf, 0.956 x the shaped rate.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from lab.netns import NEEDS_ROOT, Lab, LinkSpec, ProbeSpec
from lab.services import venv_script

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT),
]

GOODPUT = 0.956
HTTP_PORT = 8080
RATE_MBPS = 250
# The goal: within 5 % (and under half the bytes of a fixed 10 s test, in the bench).
TOLERANCE = 0.05
FIXED_TEST_BYTES = 10 * GOODPUT * RATE_MBPS * 1e6 / 8
RUNS = 3


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    link = LinkSpec(down_mbps=RATE_MBPS, up_mbps=RATE_MBPS, rtt_ms=600)
    with Lab([ProbeSpec(name="island", links=(link,))]) as built:
        built.popen(
            "target",
            [venv_script("qos-target"), "serve", "--listen", f"0.0.0.0:{HTTP_PORT}"],
        )
        built.wait_listening("target", HTTP_PORT)
        yield built


def download(lab: Lab, *options: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The download block and the provenance of one `qos-agent check --json`."""
    argv = [
        venv_script("qos-agent"), "check", "--json", "--tests", "download",
        "--target", f"http://{lab.target_address(4)}:{HTTP_PORT}", *options,
    ]  # fmt: skip
    done = lab.run("island", argv, check=False, timeout=120)
    result = json.loads(done.stdout)
    assert done.returncode == 0, result["errors"]
    return result["measurements"]["download"], result["provenance"]


def assert_right_or_flagged(block: dict[str, Any]) -> None:
    """The rule the issue asks for: a rate off the link's says it did not converge."""
    right = block["mbps"] == pytest.approx(GOODPUT * RATE_MBPS, rel=TOLERANCE)
    assert right or block.get("converged") is False, block


def test_a_satellite_path_is_measured_right_and_frugally(lab: Lab) -> None:
    # The bytes of one run depend on when its first loss falls (bench/RESULTS.md, "Long paths":
    # 0.35 x a fixed 10 s test in the median there, up to 1.44 x in one run in ten). The goal,
    # <= 0.5 x, is the bench's to show over many runs; three runs here must each be right or
    # flagged, and cost no more than the fixed test in their median.
    runs = [download(lab) for _ in range(RUNS)]
    for block, _ in runs:
        assert_right_or_flagged(block)
        assert block["flows"] == 8  # all at once on a long path
    right = [
        block
        for block, _ in runs
        if block.get("converged", True)
        and block["mbps"] == pytest.approx(GOODPUT * RATE_MBPS, rel=TOLERANCE)
    ]
    assert len(right) >= RUNS - 1, [block for block, _ in runs]
    spent = [provenance["bytes_used"] for _, provenance in runs]
    assert statistics.median(spent) <= FIXED_TEST_BYTES, spent


def test_a_test_cut_short_on_a_satellite_path_says_its_rate_is_not_the_links(lab: Lab) -> None:
    # 3 s (6 s stretched) cannot open a 600 ms path's windows: the rate is still climbing.
    block, _ = download(lab, "--duration", "3")
    assert_right_or_flagged(block)
    assert block["converged"] is False
    assert block["mbps"] < 0.8 * GOODPUT * RATE_MBPS
