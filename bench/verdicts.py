"""Verdict refresh benchmark: what one refresh costs as the store fills, and as the fleet grows.

    .venv/bin/python bench/verdicts.py                                # 2,000 probes x 250
    .venv/bin/python bench/verdicts.py --probes 2000 --per-probe 25,250  # 10x samples, same probes
    .venv/bin/python bench/verdicts.py --probes 10000 --per-probe 500    # the national row (5 M)

Seeds a real VictoriaMetrics through the collector's own write path (collector/series.py lines,
StoreWriter) with `--probes` x `--per-probe` results spread over the 30-day window (probes in
villages of communes of the 34 provinces, 3 operators, 4G / 5G / fixed with a plan, settings
mixed), then runs the verdict refresh (collector/verdicts.py: rollups, judging, writing the
`qos_compliance_*` series) in a child process: a first one (the store cold after seeding) and
the one a collector repeats every minute, whose wall time and the child's peak RSS are reported.
With several `--per-probe` sizes the store is topped up between rows, on the same probes.

Prints a table row per size and, last, one JSON object: {"rows": [{"results": N, "refresh_s": T,
"rss_mb": M}, ...]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec

from collector.store import StoreWriter, result_line
from collector.verdicts import read_area_stats, refresh_verdicts
from contract.errors import ServiceError
from contract.profiles import bundled_profiles
from contract.result import Link, Location, Plan, Provenance, Setting, Technology, Throughput
from lab.services import victoria_metrics
from tests.strategies import sample_result

PROVINCES = [
    "01",
    "04",
    "08",
    "11",
    "12",
    "14",
    "15",
    "19",
    "20",
    "22",
    "24",
    "25",
    "31",
    "33",
    "37",
    "38",
    "40",
    "42",
    "44",
    "46",
    "48",
    "51",
    "52",
    "56",
    "66",
    "68",
    "75",
    "79",
    "80",
    "82",
    "86",
    "91",
    "92",
    "96",
]
OPERATORS = ("Viettel", "VNPT", "MobiFone")
TECHNOLOGIES: tuple[Technology, ...] = ("4g", "5g", "ftth")
SETTINGS: tuple[Setting, ...] = ("indoor", "outdoor_fixed", "outdoor_moving")
WINDOW = timedelta(days=30)
LINES_PER_WRITE = 5_000
WRITE_ATTEMPTS = 5


def probe_link(index: int) -> tuple[Link, Location]:
    technology = TECHNOLOGIES[index % len(TECHNOLOGIES)]
    fixed = technology == "ftth"
    village = index // 2
    link = Link(
        interface="eth0" if fixed else "wwan0",
        access="fixed" if fixed else "mobile",
        technology=technology,
        operator=OPERATORS[(index // 3) % len(OPERATORS)],
        plan=Plan(download_mbps=300.0, upload_mbps=100.0) if fixed else None,
        setting=SETTINGS[(index // 9) % len(SETTINGS)],
    )
    location = Location(
        province_code=PROVINCES[village % len(PROVINCES)],
        commune_code=f"{village // 4 % 100_000:05d}",
        village=f"Thôn {village}",
        lat=10.0 + (village % 1000) / 100,
        lon=105.0 + (village % 700) / 100,
    )
    return link, location


async def seed(store_url: str, probes: int, count: int, seed_value: int, now: datetime) -> int:
    """`count` results for every probe, at random times in the window; returns lines written."""
    rng = random.Random(seed_value)  # noqa: S311 - reproducible load, not secrets
    profiles = bundled_profiles()
    template = sample_result()
    writer = StoreWriter(store_url)
    lines: list[str] = []
    written = 0
    try:
        for index in range(probes):
            link, location = probe_link(index)
            base = (
                100.0 if link.technology == "5g" else 250.0 if link.technology == "ftth" else 45.0
            )
            for _ in range(count):
                finished = now - timedelta(seconds=rng.uniform(1, WINDOW.total_seconds() - 1))
                rate = max(0.5, rng.gauss(base, base / 4))
                result = msgspec.structs.replace(
                    template,
                    probe_id=f"vn-bench-{index}",
                    finished_at=finished,
                    started_at=finished - timedelta(seconds=8),
                    location=location,
                    link=link,
                    measurements=msgspec.structs.replace(
                        template.measurements,
                        download=Throughput(mbps=rate, bytes=int(rate * 1e6), duration_s=8.0),
                        upload=Throughput(mbps=rate / 3, bytes=int(rate * 3e5), duration_s=8.0),
                    ),
                    provenance=Provenance(
                        agent_version="0.1.0", runner="http", gap_s=rng.uniform(600, 20_000)
                    ),
                )
                lines.append(result_line(result, None, profiles))
                if len(lines) >= LINES_PER_WRITE:
                    written += await write(writer, lines)
                    lines = []
        if lines:
            written += await write(writer, lines)
    finally:
        await writer.close()
    return written


async def write(writer: StoreWriter, lines: list[str]) -> int:
    """Seeding creates series by the ten thousand: a slow answer is retried, not fatal."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            await writer.write_lines(lines)
        except ServiceError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
            await asyncio.sleep(2.0)
        else:
            return len(lines)
    return 0


async def refresh_once(store_url: str, at: float) -> dict[str, float]:
    """A first refresh (the store's caches cold after the seeding), then the one a collector
    repeats every minute, timed whole and for its rollups alone (what limits it)."""
    profiles = bundled_profiles()
    writer = StoreWriter(store_url)
    moment = datetime.fromtimestamp(at, UTC)
    try:
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await refresh_verdicts(session, writer, profiles, now=moment)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            verdicts = await refresh_verdicts(session, writer, profiles, now=moment)
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            await read_area_stats(session, store_url, profiles, now=moment)
            rollups_s = time.perf_counter() - started
    finally:
        await writer.close()
    return {
        "first_s": first_s,
        "refresh_s": elapsed,
        "rollups_s": rollups_s,
        "areas": float(len(verdicts)),
    }


def measure_refresh(store_url: str, at: float) -> tuple[float, float, float, float, int]:
    """Refreshes in a child process: (first, steady and rollups' seconds, the child's peak RSS
    in MB, areas judged)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--refresh-once", store_url, "--at", str(at)],
        stdout=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"refresh child failed ({status})")
    answer = json.loads(output)
    return (
        answer["first_s"],
        answer["refresh_s"],
        answer["rollups_s"],
        usage.ru_maxrss / 1024,
        int(answer["areas"]),
    )


def flush(store_url: str) -> None:
    import urllib.request  # noqa: PLC0415 - only the parent flushes

    with urllib.request.urlopen(f"{store_url}/internal/force_flush", timeout=60):  # noqa: S310
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--per-probe", default="250", help="results per probe, e.g. 25,250")
    parser.add_argument("--refresh-once", metavar="STORE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.refresh_once:
        print(json.dumps(asyncio.run(refresh_once(args.refresh_once, args.at))))
        return 0
    sizes = [int(part) for part in args.per_probe.split(",")]
    if sorted(sizes) != sizes or sizes[0] < 1:
        parser.error("--per-probe: growing sizes, e.g. 25,250")
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, {now:%Y-%m-%d}")
    header = ("results", "probes", "areas", "seed s", "first s", "refresh s", "rollups s", "RSS MB")
    print("".join(f"{name:>11}" for name in header))
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as workdir, victoria_metrics(Path(workdir)) as store:
        total = 0
        for step, size in enumerate(sizes):
            started = time.perf_counter()
            total += asyncio.run(
                seed(store.url, args.probes, size - (sizes[step - 1] if step else 0), step, now)
            )
            flush(store.url)
            seeded = time.perf_counter() - started
            first_s, refresh_s, rollups_s, rss_mb, areas = measure_refresh(
                store.url, now.timestamp()
            )
            cells = (f"{total:,}", f"{args.probes:,}", f"{areas:,}", f"{seeded:.1f}",
                     f"{first_s:.3f}", f"{refresh_s:.3f}", f"{rollups_s:.3f}",
                     f"{rss_mb:.1f}")  # fmt: skip
            print("".join(f"{cell:>11}" for cell in cells), flush=True)
            rows.append(
                {"results": total, "refresh_s": round(refresh_s, 4), "rss_mb": round(rss_mb, 1)}
            )
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
