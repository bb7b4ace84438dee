"""How fast the wire contract encodes, decodes and validates results (one core).

    .venv/bin/python bench/wire_codec.py [--count N]

The collector's ingest goal is 5,000 results/s on 2 cores; decoding must be a small share of that.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime

from contract.result import decode_result, encode_result
from tests.strategies import sample_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50_000)
    count = parser.parse_args().count
    results = [sample_result(f"vn-79-probe-{i % 500:03d}") for i in range(count)]
    now = datetime.now(UTC)

    started = time.perf_counter()
    payloads = [encode_result(result) for result in results]
    encode_s = time.perf_counter() - started

    started = time.perf_counter()
    for payload in payloads:
        decode_result(payload, now=now)
    decode_s = time.perf_counter() - started

    size = sum(len(p) for p in payloads) / count
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(f"{'operation':<22}{'results/s':>14}{'µs/result':>12}")
    print(f"{'encode':<22}{count / encode_s:>14,.0f}{encode_s / count * 1e6:>12.1f}")
    print(f"{'decode + validate':<22}{count / decode_s:>14,.0f}{decode_s / count * 1e6:>12.1f}")
    print(f"mean payload: {size:.0f} bytes")


if __name__ == "__main__":
    main()
