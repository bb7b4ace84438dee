"""Accuracy and data cost of the speed runners on shaped lab links (needs root).

For each shaped rate (and added round-trip time, through the lab's userspace delay line), one
probe namespace with a tbf-shaped link; qos-target (with its iperf3 server) in the target
namespace. Each runner measures the download `--repeats` times through the
real `qos-agent check --json --tests download`; the truth is TCP goodput through tbf, 0.956 x the
shaped rate (measured on these machines). Prints, per runner and rate: median and P95
absolute error, median bytes used, and bytes relative to a fixed 10 s test at that goodput.

    sudo .venv/bin/python bench/accuracy.py [--rates 10,40,100,300,1000] [--rtts 0]
        [--repeats 3] [--runners "http,iperf3 -P1,iperf3 -P4,speedtest-cli"]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from lab.netns import NEEDS_ROOT, ROOT_HINT, Lab, LinkSpec, ProbeSpec
from lab.services import require_binary, venv_script

GOODPUT = 0.956
HTTP_PORT = 8080
IPERF3_PORT = 5201
FIXED_TEST_S = 10.0
# name -> extra `qos-agent check` options. iperf3 runs 1 s omitted + 4 s measured; speedtest-cli
# gets 5 s per direction instead of its usual 10 s, to keep the benchmark short.
RUNNERS: dict[str, tuple[str, ...]] = {
    "http": ("--runner", "http"),
    "iperf3 -P1": ("--runner", "iperf3", "--max-flows", "1", "--duration", "5"),
    "iperf3 -P4": ("--runner", "iperf3", "--max-flows", "4", "--duration", "5"),
    "speedtest-cli": ("--runner", "speedtest", "--duration", "5"),
    # Not run by default: the http runner held to 2 flows, to show what flow growth costs.
    "http -P2": ("--runner", "http", "--max-flows", "2"),
}
DEFAULT_RUNNERS = ("http", "iperf3 -P1", "iperf3 -P4", "speedtest-cli")


class Sample(NamedTuple):
    runner: str
    rate_mbps: float
    rtt_ms: float
    mbps: float | None  # None: the run failed
    bytes_used: int
    probe_limited: bool
    converged: bool  # False: the runner said its rate was still climbing (a lower bound)
    stop_reason: str
    flows: int | None

    @property
    def error(self) -> float:
        truth = GOODPUT * self.rate_mbps
        return math.inf if self.mbps is None else abs(self.mbps - truth) / truth

    @property
    def bytes_ratio(self) -> float:
        return self.bytes_used / (FIXED_TEST_S * GOODPUT * self.rate_mbps * 1e6 / 8)


def probe_name(rate: float, rtt: float) -> str:
    return f"rate-{rate:g}-rtt-{rtt:g}".replace(".", "-")


def link_label(rate: float, rtt: float) -> str:
    return f"{rate:g}" if rtt == 0 else f"{rate:g}, +{rtt:g} ms"


def measure(lab: Lab, runner: str, rate: float, rtt: float) -> Sample:
    argv = [
        venv_script("qos-agent"), "check", "--json", "--tests", "download",
        "--target", f"http://{lab.target_address(4)}:{HTTP_PORT}", *RUNNERS[runner],
    ]  # fmt: skip
    done = lab.run(probe_name(rate, rtt), argv, check=False, timeout=120)
    result = json.loads(done.stdout)
    for error in result.get("errors", ()):
        print(f"  {link_label(rate, rtt)} Mb/s {runner}: {error}", file=sys.stderr)
    download = result["measurements"].get("download")
    provenance = result["provenance"]
    return Sample(
        runner=runner,
        rate_mbps=rate,
        rtt_ms=rtt,
        mbps=download["mbps"] if download else None,
        bytes_used=provenance.get("bytes_used", 0),  # left off the wire when 0
        probe_limited=provenance.get("probe_limited", False),
        converged=download.get("converged", True) if download else True,
        stop_reason=provenance.get("stop_reason", "duration"),
        flows=provenance.get("flows"),
    )


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summary_row(label: str, samples: Sequence[Sample]) -> str:
    errors = [sample.error for sample in samples]
    ratios = [sample.bytes_ratio for sample in samples]
    used = statistics.median(sample.bytes_used for sample in samples)
    limited = sum(sample.probe_limited for sample in samples)
    unconverged = sum(not sample.converged for sample in samples)
    failed = sum(sample.mbps is None for sample in samples)
    rates = [
        f"{sample.mbps:.1f}{'' if sample.converged else '*'}" if sample.mbps else "fail"
        for sample in samples
    ]
    stops = Counter(sample.stop_reason for sample in samples)
    flows = Counter(sample.flows for sample in samples if sample.flows is not None)
    return (
        f"| {label} | {len(samples)} | {statistics.median(errors):.1%} | {p95(errors):.1%} "
        f"| {used / 1e6:,.1f} MB | {statistics.median(ratios):.2f} | {max(ratios):.2f} "
        f"| {limited} | {unconverged} | {failed} | {_counts(stops)} | {_counts(flows)} "
        f"| {' '.join(rates)} |"
    )


def _counts(counter: Counter[str] | Counter[int]) -> str:
    """E.g. "stable 3, duration 1", most common first."""
    return ", ".join(f"{key} x{count}" for key, count in counter.most_common())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10,40,100,300,1000", help="shaped Mb/s, comma list")
    parser.add_argument(
        "--rtts", default="0", help="round-trip times added by the delay line, ms, comma list"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--runners",
        default=",".join(DEFAULT_RUNNERS),
        help=f"comma list of runners, from: {', '.join(RUNNERS)}",
    )
    args = parser.parse_args(argv)
    rates = [float(rate) for rate in args.rates.split(",")]
    rtts = [float(rtt) for rtt in args.rtts.split(",")]
    links = [(rate, rtt) for rate in rates for rtt in rtts]
    runners = [name.strip() for name in args.runners.split(",")]
    unknown = [name for name in runners if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown runners {unknown}; known: {', '.join(RUNNERS)}")
    if os.geteuid() != 0:
        print(f"accuracy: {NEEDS_ROOT}\n  -> {ROOT_HINT}", file=sys.stderr)
        return 2
    require_binary("iperf3")
    probes = [
        ProbeSpec(
            name=probe_name(rate, rtt),
            links=(LinkSpec(down_mbps=rate, up_mbps=rate, rtt_ms=rtt),),
        )
        for rate, rtt in links
    ]
    samples: list[Sample] = []
    with Lab(probes) as lab:
        lab.popen(
            "target",
            [
                venv_script("qos-target"), "serve", "--listen", f"0.0.0.0:{HTTP_PORT}",
                "--iperf3-port", str(IPERF3_PORT),
            ],
        )  # fmt: skip
        lab.wait_listening("target", HTTP_PORT)
        lab.wait_listening("target", IPERF3_PORT)
        for rate, rtt in links:
            for _ in range(args.repeats):
                for runner in runners:  # interleaved, so a busy moment hits every runner alike
                    sample = measure(lab, runner, rate, rtt)
                    samples.append(sample)
                    print(
                        f"  {link_label(rate, rtt)} Mb/s {runner}: {sample.mbps} Mb/s, "
                        f"{sample.stop_reason}{'' if sample.converged else ' (unconverged)'}, "
                        f"{sample.flows} flows, bytes x10s {sample.bytes_ratio:.2f}",
                        file=sys.stderr,
                    )
    print(f"\n{datetime.now(UTC):%Y-%m-%d}, {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; truth = {GOODPUT} x shaped rate; "
          f"bytes x10s = bytes used / a fixed 10 s test at that goodput\n")  # fmt: skip
    header = (
        "| runner @ shaped rate | n | median error | P95 error | median bytes | bytes x10s "
        "| max bytes x10s | probe-limited | unconverged | failed | stop reasons | flows "
        "| Mb/s measured (* unconverged) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for runner in runners:
        for rate, rtt in links:
            chosen = [
                s for s in samples if s.runner == runner and (s.rate_mbps, s.rtt_ms) == (rate, rtt)
            ]
            print(summary_row(f"{runner} @ {link_label(rate, rtt)}", chosen))
    for runner in runners:
        print(summary_row(f"**{runner}, all links**", [s for s in samples if s.runner == runner]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
