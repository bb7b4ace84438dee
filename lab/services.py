"""Real services (mosquitto, VictoriaMetrics, qos-target, qos-collector) as local processes.

Each starts on a free loopback port in a directory the caller owns, waits until it answers, and is
stopped (terminate, then kill) when its context ends, also on error.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.errors import ServiceError
from contract.i18n import N_, _, figure

INSTALL_HINT = N_("run `bash scripts/setup` (installs mosquitto, victoria-metrics, iperf3, ...)")
READY_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(_("{name} is not installed").format(name=name), _(INSTALL_HINT))
    return path


def venv_script(name: str) -> str:
    """A console script of this project, next to the running interpreter when installed there."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else require_binary(name)


def tcp_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)  # noqa: PLR2004
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Service:
    """One running process, its log, and how to tell it is ready."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, ready: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(
                    _("{service} exited at start (code {code}): {tail}").format(
                        service=self.name, code=self.process.returncode, tail=self.tail()
                    ),
                    _("see {path}").format(path=self.log_path),
                )
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            _("{service} did not become ready in {seconds} s: {tail}").format(
                service=self.name, seconds=figure(timeout_s), tail=self.tail()
            ),
            _("see {path}").format(path=self.log_path),
        )

    @contextmanager
    def running(
        self, ready: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S
    ) -> Iterator[Service]:
        """Started and ready inside the block; stopped when it ends, also on error."""
        try:
            self.start(ready, timeout_s)
            yield self
        finally:
            self.stop()

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: for tests of what survives a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Mosquitto:
    service: Service
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextmanager
def mosquitto(
    workdir: Path, *, port: int | None = None, unix_socket: Path | None = None
) -> Iterator[Mosquitto]:
    """A mosquitto broker on loopback with persistence in `workdir` (anonymous access: lab only).

    `unix_socket` adds a listener on that path: processes in other network namespaces (the
    village lab's agents) reach the broker through it.
    """
    binary = require_binary("mosquitto")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {workdir}/",
        "log_dest stdout",
        "max_queued_messages 100000",
        # Run as whoever started it: mosquitto started as root would otherwise switch to its own
        # user and could not write persistence or a socket in the caller's private temp dir.
        f"user {getpass.getuser()}",
    ]
    if unix_socket is not None:
        lines += [f"listener 0 {unix_socket}", "allow_anonymous true"]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    service = Service("mosquitto", [binary, "-c", str(config)], workdir / "mosquitto.log")
    with service.running(lambda: tcp_answers("127.0.0.1", port)):
        yield Mosquitto(service, "127.0.0.1", port)


@dataclass
class VictoriaMetrics:
    service: Service
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop gracefully (it flushes to disk), keeping the data directory and the port."""
        self.service.stop()

    def start(self) -> None:
        """Start again on the same data directory and port (after `stop`, for outage tests)."""
        self.service.start(lambda: http_ok(f"{self.url}/health"))

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns the `result` list of the Prometheus API answer."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - own loopback
            answer = json.load(response)
        if answer.get("status") != "success":
            raise ServiceError(f"query {promql!r} failed: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(
        self, promql: str, *, at: float | None = None, count: int = 1, timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until the query returns `count` series; fresh writes are flushed first."""
        deadline = time.monotonic() + timeout_s
        self.flush()
        while True:
            series = self.query(promql, at)
            if len(series) >= count or time.monotonic() > deadline:
                return series
            time.sleep(0.2)

    def flush(self) -> None:
        """Make everything written so far searchable now (VictoriaMetrics force_flush)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):  # noqa: S310
            pass

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every raw sample of the series matching `match` (JSON lines of /api/v1/export)."""
        url = f"{self.url}/api/v1/export?{urllib.parse.urlencode({'match[]': match})}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - own loopback
            return [json.loads(line) for line in response.read().splitlines() if line.strip()]


@contextmanager
def victoria_metrics(workdir: Path, *, port: int | None = None) -> Iterator[VictoriaMetrics]:
    """Single-node VictoriaMetrics on loopback, data in `workdir`.

    Dedup at 1 ms keeps one sample per series and timestamp, so a result stored twice counts once;
    the latency offset is off so a just-written result is queryable at once.
    """
    binary = require_binary("victoria-metrics")
    port = port or free_port()
    argv = [
        binary,
        f"-storageDataPath={workdir / 'data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
        "-dedup.minScrapeInterval=1ms",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
    ]
    service = Service("victoria-metrics", argv, workdir / "victoria-metrics.log")
    with service.running(lambda: http_ok(f"http://127.0.0.1:{port}/health")):
        yield VictoriaMetrics(service, port)


@dataclass
class Endpoint:
    service: Service
    url: str


@contextmanager
def qos_target(workdir: Path, *, port: int | None = None) -> Iterator[Endpoint]:
    port = port or free_port()
    argv = [venv_script("qos-target"), "serve", "--listen", f"127.0.0.1:{port}"]
    service = Service("qos-target", argv, workdir / "qos-target.log")
    with service.running(lambda: http_ok(f"http://127.0.0.1:{port}/health")):
        yield Endpoint(service, f"http://127.0.0.1:{port}")


# `qos-agent check --publish` sends unsigned results of unenrolled probes; these flags accept them.
UNSIGNED_CHECKS = ("--signatures", "optional", "--enrollment", "optional")


@contextmanager
def qos_collector(
    workdir: Path,
    *,
    broker_url: str,
    store_url: str,
    name: str = "qos-collector",
    extra_args: Sequence[str] = UNSIGNED_CHECKS,
    state_dir: Path | None = None,
) -> Iterator[Endpoint]:
    """A collector process; ready once its metrics say it is subscribed to the broker.

    Its journal and registry live in `state_dir`, by default `<workdir>/<name>-state` (kept
    across restarts). By default it stores unsigned results of probes it has no enrollment for,
    as `qos-agent check` sends them; pass `extra_args=()` for the production defaults (signed,
    enrolled).
    """
    port = free_port()
    argv = [
        venv_script("qos-collector"),
        "serve",
        "--broker",
        broker_url,
        "--store",
        store_url,
        "--metrics-listen",
        f"127.0.0.1:{port}",
        "--state-dir",
        str(state_dir or workdir / f"{name}-state"),
        *extra_args,
    ]
    service = Service(name, argv, workdir / f"{name}.log")
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def subscribed() -> bool:
        try:
            with urllib.request.urlopen(metrics_url, timeout=1) as response:
                text: str = response.read().decode()
        except (OSError, urllib.error.URLError):
            return False
        return "qos_collector_broker_connected 1.0" in text

    with service.running(subscribed):
        yield Endpoint(service, metrics_url)
