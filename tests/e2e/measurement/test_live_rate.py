"""The live rate under `qos-agent check`'s spinner, for every runner, on a shaped lab link.

The check runs on a terminal (a pseudo-terminal) inside a probe namespace whose link is shaped to
40/20 Mb/s; the live line's rates, read from the interface's counters, must show that link
(TCP goodput through tbf is 0.956 x the shaped rate, DESIGN.md), whichever runner moves the bytes.
Off a terminal, the same check writes no live line at all.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from lab.netns import NEEDS_ROOT, Lab, LinkSpec, ProbeSpec
from lab.services import venv_script

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT),
]

DOWN_MBPS, UP_MBPS = 40, 20
GOODPUT = 0.956
HTTP_PORT, IPERF3_PORT = 8080, 5201
# A live sample is half a second of the link's bytes, its frames and ACKs included.
TOLERANCE = 0.15
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FRAME = re.compile(
    r"^(?P<stage>download|upload):.* — ↓ (?P<down>[\d,.]+) Mb/s ↑ (?P<up>[\d,.]+) Mb/s$"
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed: apt-get install iperf3")
    probe = ProbeSpec(name="village-a", links=(LinkSpec(down_mbps=DOWN_MBPS, up_mbps=UP_MBPS),))
    with Lab((probe,)) as built:
        built.popen(
            "target",
            [
                venv_script("qos-target"), "serve", "--listen", f"0.0.0.0:{HTTP_PORT}",
                "--iperf3-port", str(IPERF3_PORT),
            ],
        )  # fmt: skip
        built.wait_listening("target", HTTP_PORT)
        built.wait_listening("target", IPERF3_PORT)
        yield built


def _check_argv(lab: Lab, runner: str) -> list[str]:
    return lab.argv(
        "village-a",
        [
            venv_script("qos-agent"), "--lang", "en", "check",
            "--target", f"http://{lab.target_address(4)}:{HTTP_PORT}",
            "--runner", runner, "--iperf3-port", str(IPERF3_PORT),
            "--tests", "download,upload", "--duration", "4",
        ],
    )  # fmt: skip


def _on_a_terminal(argv: list[str], timeout_s: float = 90.0) -> str:
    """What argv writes to a terminal, until it exits."""
    main, child_end = pty.openpty()
    process = subprocess.Popen(argv, stdin=child_end, stdout=child_end, stderr=child_end)
    os.close(child_end)
    written = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                written += chunk
            elif process.poll() is not None:
                break
    finally:
        process.kill()
        process.wait()
        os.close(main)
    return written.decode(errors="replace")


def _live_rates(screen: str) -> dict[str, list[float]]:
    """The live line's rate in each direction while that direction was measured."""
    rates: dict[str, list[float]] = {"download": [], "upload": []}
    for frame in re.split(r"[\r\n]", _ANSI.sub("", screen)):
        found = _FRAME.match(frame.strip().lstrip("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "))
        if found:
            figure = found["down"] if found["stage"] == "download" else found["up"]
            rates[found["stage"]].append(float(figure.replace(",", "")))
    return rates


@pytest.mark.parametrize("runner", ["http", "iperf3", "speedtest"])
def test_the_live_line_shows_the_shaped_rate_for_every_runner(lab: Lab, runner: str) -> None:
    rates = _live_rates(_on_a_terminal(_check_argv(lab, runner)))
    for direction, shaped in (("download", DOWN_MBPS), ("upload", UP_MBPS)):
        samples = rates[direction]
        assert len(samples) >= 2, f"{runner} {direction}: no live rate ({samples})"
        truth = GOODPUT * shaped
        assert max(samples) == pytest.approx(truth, rel=TOLERANCE), (runner, direction, samples)


def test_off_a_terminal_there_is_no_live_line(lab: Lab) -> None:
    done = subprocess.run(
        _check_argv(lab, "iperf3"), capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "↓" not in done.stderr
    assert "↓" not in done.stdout
    assert "download" in done.stdout  # the result itself is shown
