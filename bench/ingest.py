"""Ingest benchmark: signed results from many simulated probes, through real mosquitto, into 1
and then 2 collector processes and a real VictoriaMetrics, all on this machine.

    .venv/bin/python bench/ingest.py                      # 30,000 results at 5,000/s, 1 and 2
    .venv/bin/python bench/ingest.py --rate 0             # as fast as the broker takes them
    .venv/bin/python bench/ingest.py --results 60000 --probes 2000 --collectors 1
    .venv/bin/python bench/ingest.py --batch 50           # spool drains: 50 results a message

Prints, per run: results/s offered and sustained (published to queryable), p50/p95
publish-to-queryable latency, and CPU (% of one core) and peak RSS of every process.

The load generator must not steal the CPU it measures, so it speaks MQTT 3.1.1 itself over one
socket (pre-encoded PUBLISH packets, QoS 1): many probes' topics share that connection, on an
anonymous broker. Collectors run with production checks: enrollment (retained meta for every
probe, published first) and Ed25519 signatures required. One result per probe is stored before
measuring, so the series exist as they would for a fleet that has reported before (creating a
new series costs VictoriaMetrics far more than a sample). "Queryable" is observed by polling
VictoriaMetrics every 100 ms for each probe's highest stored `seq`; a probe publishes its
results in `seq` order, so a result counts as queryable when its probe's maximum reaches it.

With `--batch N` each probe sends its results N at a time in one ResultBatch on its batch topic,
as a probe draining its spool after an outage does; the offered rate still counts results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec

from contract.fleet import ProbeMeta, encode, meta_topic
from contract.result import (
    BATCH_SCHEMA,
    Link,
    ResultBatch,
    encode_batch,
    encode_result,
    result_topic,
    results_topic,
)
from contract.signing import new_private_key, public_key_text, sign_result
from lab.services import Service, mosquitto, qos_collector, victoria_metrics
from tests.strategies import sample_result

POLL_S = 0.1
TICK_S = 0.005
MAX_IN_FLIGHT = 20_000
PROBE_PREFIX = "bench-"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BLOCKED_METRIC = "qos_collector_pipeline_blocked_seconds_total"


# a minimal MQTT 3.1.1 publisher ---------------------------------------------------------------


def _length(value: int) -> bytes:
    """MQTT's variable-length 'remaining length'."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str) -> bytes:
    body = _text("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _text(client_id)
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int, *, retain: bool = False) -> bytes:
    body = _text(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32 | int(retain)]) + _length(len(body)) + body


class RawPublisher:
    """One MQTT connection that writes pre-encoded QoS 1 PUBLISH packets and counts PUBACKs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.sent = 0
        self.acked = 0
        self._acks = asyncio.Event()
        self._ack_reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int, client_id: str) -> RawPublisher:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(connect_packet(client_id))
        connack = await reader.readexactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the connection: {connack!r}")
        publisher = cls(reader, writer)
        publisher._ack_reader = asyncio.create_task(publisher._read_acks())
        return publisher

    def packet_id(self, offset: int) -> int:
        """The id of the packet `offset` places after those sent so far (1 to 65535)."""
        return (self.sent + offset) % 65535 + 1

    async def send(self, packets: Sequence[bytes]) -> None:
        while self.sent - self.acked > MAX_IN_FLIGHT:  # keep packet ids unique in flight
            self._acks.clear()
            await self._acks.wait()
        self._writer.write(b"".join(packets))
        self.sent += len(packets)
        await self._writer.drain()

    async def _read_acks(self) -> None:
        while True:
            header = await self._reader.readexactly(2)
            body = await self._reader.readexactly(header[1])
            if header[0] == 0x40 and len(body) == 2:
                self.acked += 1
                self._acks.set()

    async def drained(self) -> None:
        while self.acked < self.sent:
            self._acks.clear()
            await self._acks.wait()

    async def close(self) -> None:
        if self._ack_reader is not None:
            self._ack_reader.cancel()
        self._writer.write(b"\xe0\x00")  # DISCONNECT
        self._writer.close()


# the workload ---------------------------------------------------------------------------------


@dataclass
class Workload:
    metas: list[tuple[str, bytes]]
    # One result per probe (seq 0), stored before measuring: it creates the probes' series, as
    # a fleet that has reported before would have them.
    warmup: list[tuple[str, bytes]]
    # (probe id, seq, topic, payload) in publishing order: round-robin over probes, seq rising.
    results: list[tuple[str, int, str, bytes]]
    # What goes on the wire: (topic, payload, indexes into `results` it carries).
    messages: list[tuple[str, bytes, list[int]]]


def build_workload(total: int, probes: int, batch: int = 1) -> Workload:
    link = Link(interface="wwan0", access="mobile", technology="4g", operator="Viettel")
    keys = [new_private_key() for _ in range(probes)]
    ids = [f"{PROBE_PREFIX}{n:05d}" for n in range(probes)]
    metas = []
    for probe_id, key in zip(ids, keys, strict=True):
        location = sample_result(probe_id, village=f"Thôn {probe_id[-3:]}").location
        assert location is not None
        meta = ProbeMeta(
            probe_id=probe_id,
            location=location,
            links=(link,),
            public_key=public_key_text(key),
            agent_version="bench",
        )
        metas.append((meta_topic(probe_id), encode(meta)))
    start = datetime.now(UTC) - timedelta(minutes=30)
    warmup = []
    for n, (probe_id, key) in enumerate(zip(ids, keys, strict=True)):
        finished = start - timedelta(milliseconds=n + 1)
        first = sample_result(probe_id, finished_at=finished, village=f"Thôn {probe_id[-3:]}")
        signed = sign_result(msgspec.structs.replace(first, seq=0), key)
        warmup.append((result_topic(probe_id), encode_result(signed)))
    results = []
    signed_results = []
    for n in range(total):
        probe, seq = n % probes, n // probes + 1
        # Distinct timestamps per probe: one link cannot finish two tests in the same millisecond.
        finished = start + timedelta(milliseconds=n)
        result = sample_result(ids[probe], finished_at=finished, village=f"Thôn {ids[probe][-3:]}")
        signed = sign_result(msgspec.structs.replace(result, seq=seq), keys[probe])
        signed_results.append(signed)
        results.append((ids[probe], seq, result_topic(ids[probe]), encode_result(signed)))
    if batch <= 1:
        messages = [(topic, payload, [n]) for n, (_, _, topic, payload) in enumerate(results)]
        return Workload(metas, warmup, results, messages)
    # Round-robin over probes as before, each turn a probe's next `batch` results in one message.
    per_probe = [list(range(p, total, probes)) for p in range(probes)]
    messages = []
    for turn in range(0, max(map(len, per_probe), default=0), batch):
        for probe, indexes in enumerate(per_probe):
            chunk = indexes[turn : turn + batch]
            if chunk:
                envelope = ResultBatch(
                    schema=BATCH_SCHEMA, results=tuple(signed_results[n] for n in chunk)
                )
                messages.append((results_topic(ids[probe]), encode_batch(envelope), chunk))
    return Workload(metas, warmup, results, messages)


# measuring ------------------------------------------------------------------------------------


@dataclass
class ProcessStats:
    name: str
    pid: int
    cpu_start: float = 0.0
    cpu_share: float = 0.0  # of one core, over the run
    peak_rss_mb: float = 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def sample_rss(self) -> None:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)


@dataclass
class Run:
    collectors: int
    published: int = 0
    first_publish: float = 0.0
    last_publish: float = 0.0
    last_queryable: float = 0.0
    latencies: list[float] = field(default_factory=list)
    processes: list[ProcessStats] = field(default_factory=list)
    # The machine's 1-minute load average when the run started and ended (it is shared).
    load: tuple[float, float] = (0.0, 0.0)
    # Seconds the collectors' stages waited for room in the queue into each stage.
    blocked_s: dict[str, float] = field(default_factory=dict)

    def sustained(self) -> float:
        return len(self.latencies) / max(self.last_queryable - self.first_publish, 1e-9)

    def offered(self) -> float:
        return self.published / max(self.last_publish - self.first_publish, 1e-9)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


async def watch_queryable(
    store_url: str, workload: Workload, sent_at: list[float], run: Run, deadline: float
) -> None:
    """Poll each probe's highest stored seq; mark every result up to it queryable."""
    by_probe: dict[str, list[int]] = {}
    for index, (probe_id, _, _, _) in enumerate(workload.results):
        by_probe.setdefault(probe_id, []).append(index)
    reached = dict.fromkeys(by_probe, 0)
    query = f'max by (probe) (max_over_time(qos_seq{{probe=~"{PROBE_PREFIX}.+"}}[2h]))'
    remaining = len(workload.results)
    async with aiohttp.ClientSession() as session:
        while remaining and time.time() < deadline:
            await asyncio.sleep(POLL_S)
            async with session.get(f"{store_url}/api/v1/query", params={"query": query}) as reply:
                answer = await reply.json()
            now = time.time()
            for series in answer["data"]["result"]:
                probe_id, top = series["metric"]["probe"], int(float(series["value"][1]))
                indexes = by_probe[probe_id]
                while reached[probe_id] < min(top, len(indexes)):
                    index = indexes[reached[probe_id]]
                    if sent_at[index] == 0.0:
                        break
                    run.latencies.append(now - sent_at[index])
                    run.last_queryable = now
                    reached[probe_id] += 1
                    remaining -= 1


async def publish(
    host: str, port: int, workload: Workload, *, rate: float, sent_at: list[float], run: Run
) -> None:
    publisher = await RawPublisher.open(host, port, "bench-load")
    run.first_publish = time.time()
    index = 0  # into workload.messages
    published = 0  # results in the messages sent so far
    total = len(workload.results)
    while index < len(workload.messages):
        elapsed = time.time() - run.first_publish
        due = total if rate <= 0 else min(total, int(elapsed * rate) + 1)
        packets: list[bytes] = []
        now = time.time()
        while index < len(workload.messages) and published < due:
            topic, payload, carried = workload.messages[index]
            packets.append(publish_packet(topic, payload, publisher.packet_id(len(packets))))
            for n in carried:
                sent_at[n] = now
            published += len(carried)
            index += 1
        if packets:
            await publisher.send(packets)
        if rate > 0:
            await asyncio.sleep(TICK_S)
    run.last_publish = time.time()
    run.published = total
    await publisher.drained()
    await publisher.close()


async def send_all(
    host: str, port: int, messages: list[tuple[str, bytes]], *, retain: bool = False
) -> None:
    publisher = await RawPublisher.open(host, port, "bench-setup")
    for start in range(0, len(messages), 500):
        chunk = messages[start : start + 500]
        await publisher.send(
            [
                publish_packet(topic, payload, publisher.packet_id(n), retain=retain)
                for n, (topic, payload) in enumerate(chunk)
            ]
        )
    await publisher.drained()
    await publisher.close()


async def warm_up(host: str, port: int, store_url: str, workload: Workload) -> None:
    """Store one result per probe and wait until all are queryable."""
    await send_all(host, port, workload.warmup)
    query = f'count(last_over_time(qos_seq{{probe=~"{PROBE_PREFIX}.+"}}[2h]))'
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            async with session.get(f"{store_url}/api/v1/query", params={"query": query}) as reply:
                found = (await reply.json())["data"]["result"]
            if found and int(found[0]["value"][1]) == len(workload.warmup):
                return
            await asyncio.sleep(POLL_S)
    raise RuntimeError("warm-up results did not become queryable in 60 s")


async def sample_rss(processes: list[ProcessStats], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for process in processes:
            process.sample_rss()
        await asyncio.sleep(0.5)


def run_once(workload: Workload, collectors: int, rate: float, timeout_s: float) -> Run:
    run = Run(collectors)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qosfleet-bench-")))
        broker = stack.enter_context(mosquitto(root / "mosquitto"))
        store = stack.enter_context(victoria_metrics(root / "victoria-metrics"))
        asyncio.run(send_all(broker.host, broker.port, workload.metas, retain=True))
        services: list[Service] = [broker.service, store.service]
        metrics_urls: list[str] = []
        for n in range(collectors):
            collector = stack.enter_context(
                qos_collector(
                    root,
                    broker_url=broker.url,
                    store_url=store.url,
                    name=f"qos-collector-{n + 1}",
                    extra_args=("--verdict-interval", "0", "--log-level", "WARNING"),
                )
            )
            services.append(collector.service)
            metrics_urls.append(collector.url)
        run.processes = [ProcessStats(s.name, _pid(s)) for s in services]
        run.processes.append(ProcessStats("bench (load + poll)", os.getpid()))
        run.load = (os.getloadavg()[0], 0.0)
        asyncio.run(
            _measure(
                broker.host,
                broker.port,
                store.url,
                workload,
                rate=rate,
                run=run,
                timeout_s=timeout_s,
            )
        )
        run.load = (run.load[0], os.getloadavg()[0])
        run.blocked_s = asyncio.run(_blocked_seconds(metrics_urls))
    return run


async def _blocked_seconds(metrics_urls: Sequence[str]) -> dict[str, float]:
    """`qos_collector_pipeline_blocked_seconds_total` by queue, summed over the collectors."""
    blocked: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for url in metrics_urls:
            async with session.get(url) as response:
                text = await response.text()
            for line in text.splitlines():
                name, _, value = line.rpartition(" ")
                if name.startswith(f'{BLOCKED_METRIC}{{queue="'):
                    queue = name.split('"')[1]
                    blocked[queue] = blocked.get(queue, 0.0) + float(value)
    return blocked


async def _measure(
    host: str,
    port: int,
    store_url: str,
    workload: Workload,
    *,
    rate: float,
    run: Run,
    timeout_s: float,
) -> None:
    await warm_up(host, port, store_url, workload)
    services = [p for p in run.processes if p.name.startswith("qos-collector")]
    _track_children(run, services)
    sent_at = [0.0] * len(workload.results)
    for process in run.processes:
        process.cpu_start = process.cpu_seconds()
    started = time.monotonic()
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        rss = tasks.create_task(sample_rss(run.processes, stop), name="rss")
        tasks.create_task(
            publish(host, port, workload, rate=rate, sent_at=sent_at, run=run), name="publish"
        )
        await watch_queryable(store_url, workload, sent_at, run, time.time() + timeout_s)
        stop.set()
        await rss
    # A collector's own processes (its signature checks) may start during the run (from 0 s).
    _track_children(run, services)
    wall = max(run.last_queryable - run.first_publish, time.monotonic() - started, 1e-9)
    for process in run.processes:
        process.cpu_share = (process.cpu_seconds() - process.cpu_start) / wall


def _track_children(run: Run, services: list[ProcessStats]) -> None:
    known = {process.pid for process in run.processes}
    parents = {service.pid: service.name for service in services}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if parent in parents and pid not in known:
            run.processes.append(ProcessStats(f"{parents[parent]}: child {pid}", pid))


def _pid(service: Service) -> int:
    assert service.process is not None
    return service.process.pid


def report(runs: list[Run], rate: float, batch: int) -> Iterator[str]:
    offered = "as fast as possible" if rate <= 0 else f"{rate:,.0f}/s"
    yield f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    yield f"offered load: {offered}, results per message: up to {batch}"
    yield ""
    yield "| collectors | results | offered/s | sustained/s | p50 s | p95 s | stored |"
    yield "|---|---|---|---|---|---|---|"
    for run in runs:
        yield (
            f"| {run.collectors} | {run.published:,} | {run.offered():,.0f} | "
            f"{run.sustained():,.0f} | {run.percentile(0.5):.2f} | {run.percentile(0.95):.2f} | "
            f"{len(run.latencies):,} |"
        )
    yield ""
    yield "| collectors | load average (1 min) at start / end | s blocked on a full queue |"
    yield "|---|---|---|"
    for run in runs:
        blocked = ", ".join(f"{queue} {sec:.1f}" for queue, sec in sorted(run.blocked_s.items()))
        yield f"| {run.collectors} | {run.load[0]:.1f} / {run.load[1]:.1f} | {blocked or '-'} |"
    yield ""
    yield "| collectors | process | CPU % of one core | peak RSS MB |"
    yield "|---|---|---|---|"
    for run in runs:
        for process in run.processes:
            yield (
                f"| {run.collectors} | {process.name} | {process.cpu_share * 100:.0f} | "
                f"{process.peak_rss_mb:.0f} |"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=int, default=30_000)
    parser.add_argument("--probes", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=5_000, help="results/s offered; 0: flood")
    parser.add_argument("--collectors", default="1,2", help="comma-separated instance counts")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait per run")
    parser.add_argument(
        "--batch", type=int, default=1, help="results per message (a spool drain); 1: one each"
    )
    args = parser.parse_args(argv)
    print(f"signing {args.results:,} results of {args.probes:,} probes ...", file=sys.stderr)
    workload = build_workload(args.results, args.probes, args.batch)
    runs = []
    for count in (int(n) for n in args.collectors.split(",")):
        print(f"run with {count} collector(s) ...", file=sys.stderr)
        runs.append(run_once(workload, count, args.rate, args.timeout))
    print("\n".join(report(runs, args.rate, args.batch)))
    return 0 if all(len(run.latencies) == args.results for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
