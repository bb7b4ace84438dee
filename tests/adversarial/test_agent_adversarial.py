"""Issue 14, the agent's side: what an unlucky operator or an attacker does to a probe.

Each test is one row of bench/RESULTS.md ("Adversarial suite (issue 14)", "Agent"). The agent is
the real `qos-agent` process (or the daemon with an instant synthetic measurement where only its
plumbing is at stake) against real mosquitto, qos-collector with the production defaults,
VictoriaMetrics and qos-target. A refusal is exit status 2 with a message naming the path or key
and the fix, never a traceback; the unit does not restart on 2 (tests/unit/deploy/test_deploy.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.config import DEFAULT_PATH
from agent.spool import Spool
from agent.state import STATE_DB, open_state_db
from contract.errors import ConfigError
from lab.services import (
    Endpoint,
    Mosquitto,
    Service,
    VictoriaMetrics,
    free_port,
    require_binary,
    tcp_answers,
    venv_script,
)
from tests.certificates import make_certificates
from tests.integration.agent.conftest import (
    Agent,
    collector_counter,
    enforcing_collector,
    make_agent,
    stored_seqs,
    wait_until,
)
from tests.unit.agent.builders import FIXED, PROBE_ID, config_table, write_config

pytestmark = [pytest.mark.adversarial, pytest.mark.integration]

LOOPBACK = FIXED | {"interface": "lo"}  # a test bound to its interface stays on loopback
# Real measurements, a few a second: each a short speed test or a light one.
QUICK_SCHEDULE = {
    "speed_mean_s": 0.6,
    "speed_floor_s": 0.3,
    "light_mean_s": 0.3,
    "light_floor_s": 0.1,
    "speed_duration_s": 0.3,
}
SECRET = "Hu3-s3cret-9f2c"
# A refusal is said, not crashed on: no Python traceback reaches the operator.
TRACEBACK = "Traceback (most recent call last)"
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a read-only mount needs root and unshare (util-linux)",
)


def run_agent(
    *args: str, timeout_s: float = 60.0, merged: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`qos-agent ARGS` to its end; stderr captured apart, or `merged` into stdout in order."""
    return subprocess.run(
        [venv_script("qos-agent"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
    )


def results_seen(collector: Endpoint) -> float:
    """Every result the collector took or refused, whatever the reason."""
    with urllib.request.urlopen(collector.url, timeout=5) as response:
        text = response.read().decode()
    names = ("qos_collector_results_accepted_total", "qos_collector_results_rejected_total")
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(names) and not line.startswith("#")
    )


def status_outputs(agent: Agent) -> tuple[dict[str, Any], str]:
    """`qos-agent status`, as JSON and as the technician's table."""
    argv = ("status", "--config", str(agent.config_path))
    as_json = json.loads(run_agent(*argv, "--json").stdout)
    return as_json, run_agent(*argv).stdout


def refused(answer: subprocess.CompletedProcess[str], *words: str) -> str:
    """Assert a refusal: exit 2, each of `words` in the message, no traceback; the message."""
    message = answer.stderr
    assert answer.returncode == 2, (answer.returncode, message)
    assert TRACEBACK not in message
    for word in words:
        assert word in message, (word, message)
    return message


# Corrupt state database ------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(os.urandom(path.stat().st_size))
        return
    data = bytearray(path.read_bytes())
    page = 4096
    middle = len(data) // 2 // page * page
    for offset in range(middle, middle + 8 * page, page):  # page headers, as a failing card might
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _delivered(agent: Agent) -> int:
    """Results delivered from the state database (0 while it is still the damaged one)."""
    try:
        return agent.spool().delivered
    except (ConfigError, sqlite3.DatabaseError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["garbage", "pages"])
def test_a_damaged_state_database_is_set_aside_and_the_probe_measures_on(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, target: Endpoint, how: str
) -> None:
    state_dir = tmp_path / "state"
    db = open_state_db(state_dir)
    spool = Spool(db, max_results=10**6, max_bytes=10**9)
    for number in range(300):  # results waiting for a broker, as on a probe offline for days
        spool.add(f"old-{number}", number, os.urandom(2000), now=0.0)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    _damage(state_dir / STATE_DB, how)
    damaged = (state_dir / STATE_DB).read_bytes()
    table = config_table(
        state_dir,
        broker_url=broker.url,
        target_url=target.url,
        links=(LOOPBACK,),
        schedule=QUICK_SCHEDULE,
    )
    agent = make_agent(tmp_path / "agent", table, synthetic=False)
    with (
        enforcing_collector(tmp_path, broker.url, store.url) as collector,
        agent.running() as process,
    ):
        wait_until(lambda: _delivered(agent) >= 1, timeout_s=60, what="a new result stored")
        assert process.poll() is None, "the daemon runs on"
        stored = collector_counter(collector, "qos_collector_results_accepted_total")
        status, screen = status_outputs(agent)
    log = (agent.workdir / "agent.log").read_text()
    set_aside = state_dir.glob(f"{STATE_DB}.corrupt-*")
    (kept,) = [path for path in set_aside if not path.name.endswith(("-wal", "-shm"))]
    assert kept.read_bytes() == damaged, "the damaged database is kept as found, for recovery"
    assert f"set aside as {kept}" in log
    assert TRACEBACK not in log
    assert status["quarantine"]["moved_to"] == str(kept)
    assert "the state database was damaged" in screen
    assert stored >= 1
    wait_until(lambda: len(stored_seqs(store)) >= 1, timeout_s=10, what="the sample in the store")


# Read-only state ---------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("what", ["directory", "database"])
def test_a_read_only_state_is_refused_with_the_fix(tmp_path: Path, what: str) -> None:
    """An SD card remounted read-only after errors: the daemon says so and exits 2."""
    state_dir = tmp_path / "state"
    open_state_db(state_dir).close()
    agent = make_agent(tmp_path / "agent", config_table(state_dir), synthetic=False)
    frozen = state_dir if what == "directory" else state_dir / STATE_DB
    mount_read_only = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    answer = subprocess.run(
        ["unshare", "--mount", "sh", "-c", mount_read_only, "sh", str(frozen),
         venv_script("qos-agent"), "run", "--config", str(agent.config_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    refused(answer, f"{frozen} is on a file system mounted read-only", "dmesg", "restart qos-agent")


# CA file -------------------------------------------------------------------------------------


def test_a_garbage_ca_file_is_refused_at_start(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(os.urandom(2048))
    broker = {"url": "mqtts://127.0.0.1:8883", "ca_file": str(ca_file)}
    agent = make_agent(
        tmp_path / "agent", config_table(tmp_path / "state", broker=broker), synthetic=False
    )
    refused(
        run_agent("run", "--config", str(agent.config_path)),
        "broker.ca_file",
        f"{ca_file} holds no usable CA certificate",
        "BEGIN CERTIFICATE",
    )
    refused(
        run_agent("check", "--config", str(agent.config_path), "--publish"),
        "broker.ca_file",
    )
    assert not (tmp_path / "state" / STATE_DB).exists(), "refused before touching the state"


@pytest.mark.slow
def test_a_ca_file_gone_bad_while_running_stops_only_the_connection(tmp_path: Path) -> None:
    ca_file, _, _ = make_certificates(tmp_path / "pki")
    broker = {"url": f"mqtts://127.0.0.1:{free_port()}", "ca_file": str(ca_file)}
    agent = make_agent(
        tmp_path / "agent", config_table(tmp_path / "state", broker=broker), synthetic=True
    )
    with agent.running() as process:
        wait_until(lambda: agent.spooled() >= 5, timeout_s=20, what="results spooled")
        ca_file.write_bytes(os.urandom(2048))

        def connection_error() -> str:
            daemon = agent.daemon()
            return (daemon.broker_error or "") if daemon else ""

        wait_until(lambda: "broker.ca_file" in connection_error(), timeout_s=20, what="the error")
        before = agent.spooled()
        wait_until(lambda: agent.spooled() > before + 5, timeout_s=20, what="measuring on")
        assert process.poll() is None
    assert "holds no usable CA certificate" in connection_error()


# Config bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed"),
    [
        ("publish", "status_interval_s", 1e-9, "allowed: ≥ 1 and ≤ 86_400"),
        ("publish", "window", 10**9, "allowed: ≥ 1 and ≤ 1_000"),
        ("schedule", "speed_mean_s", float("nan"), "allowed: ≥ 0.01 and ≤ 7_776_000"),
        ("schedule", "speed_duration_s", float("inf"), "allowed: ≥ 0.1 and ≤ 120"),
        ("spool", "max_results", 0, "allowed: ≥ 1 and ≤ 10_000_000"),
    ],
)
def test_a_number_beyond_its_bounds_is_refused_naming_key_and_range(
    tmp_path: Path, section: str, key: str, value: float, allowed: str
) -> None:
    table = config_table(tmp_path / "state")
    table[section] = table.get(section, {}) | {key: value}
    agent = make_agent(tmp_path / "agent", table, synthetic=False)
    refused(run_agent("run", "--config", str(agent.config_path)), f"{section}.{key}: ", allowed)
    assert not (tmp_path / "state" / STATE_DB).exists(), "refused before doing anything"


# Credentials ------------------------------------------------------------------------------------


def test_an_account_in_the_broker_url_is_refused_and_never_repeated(
    tmp_path: Path, broker: Mosquitto, target: Endpoint
) -> None:
    url = f"mqtt://{PROBE_ID}:{SECRET}@127.0.0.1:{broker.port}"
    agent = make_agent(
        tmp_path / "agent", config_table(tmp_path / "state", broker_url=url), synthetic=False
    )
    message = refused(
        run_agent("run", "--config", str(agent.config_path)),
        "broker.url: mqtt://***@127.0.0.1",
        "[broker] username and password",
    )
    assert SECRET not in message
    answer = run_agent(
        "check", "--target", target.url, "--tests", "latency", "--publish", "--broker", url
    )
    assert SECRET not in refused(answer, "--broker", "holds an account") + answer.stdout


@contextmanager
def password_broker(workdir: Path) -> Iterator[int]:
    """mosquitto on loopback that lets in only the probe's account with its real password."""
    workdir.mkdir(parents=True, exist_ok=True)
    passwords = workdir / "passwords"
    subprocess.run(
        [require_binary("mosquitto_passwd"), "-b", "-c", str(passwords), PROBE_ID, "the-real-one"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\nlog_dest stdout\n",
        encoding="utf-8",
    )
    service = Service(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], workdir / "log"
    )
    with service.running(lambda: tcp_answers("127.0.0.1", port)):
        yield port


@pytest.mark.slow
def test_the_broker_password_is_in_no_log_status_or_state_file(tmp_path: Path) -> None:
    """The broker refuses the (wrong) password again and again: every retry is logged."""
    with password_broker(tmp_path / "mosquitto") as port:
        broker = {"url": f"mqtt://127.0.0.1:{port}", "username": PROBE_ID, "password": SECRET}
        agent = make_agent(
            tmp_path / "agent", config_table(tmp_path / "state", broker=broker), synthetic=True
        )
        with agent.running():

            def refusal() -> str:
                daemon = agent.daemon()
                return (daemon.broker_error or "") if daemon else ""

            wait_until(lambda: agent.spooled() >= 20, timeout_s=20, what="results spooled")
            wait_until(lambda: "not authorized" in refusal().lower(), timeout_s=20, what="refusal")
            status, screen = status_outputs(agent)
    log = (agent.workdir / "agent.log").read_text()
    assert log.count("next try in") >= 2, "retries were logged"
    for text in (log, json.dumps(status), screen):
        assert SECRET not in text
    for path in agent.state_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


# Values that must be possible -------------------------------------------------------------------


def fake_iperf3(directory: Path, *, received_bytes: int, seconds: float, busy_s: float) -> str:
    """An `iperf3` that burns `busy_s` of CPU and reports what it is told: a PATH for the agent.

    It claims host_total 40 % of CPU whatever it used: the agent must see for itself.
    """
    directory.mkdir(parents=True, exist_ok=True)
    report = {
        "start": {"version": "iperf 3.12", "test_start": {"num_streams": 4, "omit": 1}},
        "intervals": [{"sum": {"bytes": received_bytes}}],
        "end": {
            "sum_received": {"bytes": received_bytes, "seconds": seconds},
            "cpu_utilization_percent": {"host_total": 40.0},
        },
    }
    script = directory / "iperf3"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""\
            import json, time
            end = time.process_time() + {busy_s}
            while time.process_time() < end:
                pass
            print(json.dumps({report!r}))
            """),
        encoding="utf-8",
    )
    script.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def check_json(*args: str, path: str | None = None) -> tuple[int, dict[str, Any], str]:
    """`qos-agent check ... --json`: exit status, the result envelope, stderr."""
    env = os.environ | ({"PATH": path} if path else {})
    answer = run_agent("check", *args, "--json", env=env, timeout_s=120)
    assert TRACEBACK not in answer.stderr, answer.stderr
    return answer.returncode, json.loads(answer.stdout), answer.stderr


def test_a_test_that_moved_nothing_is_an_error_not_a_zero(tmp_path: Path, target: Endpoint) -> None:
    path = fake_iperf3(tmp_path / "bin", received_bytes=0, seconds=9.0, busy_s=0.0)
    code, result, _ = check_json(
        "--target", target.url, "--runner", "iperf3", "--tests", "download", path=path
    )
    assert code == 1
    assert "download" not in result["measurements"]
    assert [(e["stage"], e["code"]) for e in result["errors"]] == [("download", "no-data")]


def test_a_budget_too_small_for_a_rate_is_an_error(target: Endpoint) -> None:
    code, result, _ = check_json(
        "--target", target.url, "--tests", "download,upload", "--budget-mb", "0.000002"
    )
    assert code == 1
    assert result["measurements"] == {}
    # The probe's budget, not the link: no access failure charged to the link.
    assert [(e["stage"], e["code"]) for e in result["errors"]] == [("probe", "too-little-data")] * 2
    assert [e["message"].split(":")[0] for e in result["errors"]] == ["download", "upload"]


def test_a_cpu_bound_tool_is_probe_limited_whatever_it_says(
    tmp_path: Path, target: Endpoint
) -> None:
    """11,717 Mb/s from a tool that burned a core for 2 s and said it used 40 % of it."""
    path = fake_iperf3(tmp_path / "bin", received_bytes=14_646_250_000, seconds=10.0, busy_s=2.0)
    _, result, _ = check_json(
        "--target", target.url, "--runner", "iperf3", "--tests", "download", path=path
    )
    assert result["provenance"].get("probe_limited"), result["provenance"]
    assert result["measurements"]["download"]["mbps"] == 11_717.0


def test_a_test_shorter_than_a_cpu_window_has_its_cpu_and_its_rate_is_bytes_over_time(
    target: Endpoint,
) -> None:
    """A 100 MB budget on loopback: each direction over in about 0.1 s, before any 0.5 s window.

    Whether it is flagged depends on who was busy (on loopback the target shares the machine,
    and its CPU is not the probe's); that the CPU was measured does not.
    """
    _, result, _ = check_json(
        "--target", target.url, "--budget-mb", "100", "--tests", "download,upload"
    )
    assert result["provenance"]["cpu_peak_percent"] > 0
    for direction in ("download", "upload"):
        speed = result["measurements"][direction]
        assert speed["stop_reason"] == "budget"
        assert speed["mbps"] == speed["bytes"] * 8 / speed["duration_s"] / 1e6


def test_a_target_that_answers_an_upload_early_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A hostile target: every request answered at once with an empty 200."""
    script = tmp_path / "empty_target.py"
    port = free_port()
    script.write_text(
        textwrap.dedent(f"""\
            import asyncio

            async def answer(reader, writer):
                while line := await reader.readline():
                    if line == b"\\r\\n":
                        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
                writer.close()

            async def main():
                server = await asyncio.start_server(answer, "127.0.0.1", {port})
                await server.serve_forever()

            asyncio.run(main())
            """),
        encoding="utf-8",
    )
    service = Service("empty-target", [sys.executable, str(script)], tmp_path / "target.log")
    with service.running(lambda: tcp_answers("127.0.0.1", port)):
        code, result, _ = check_json(
            "--target", f"http://127.0.0.1:{port}", "--tests", "upload", "--duration", "2"
        )
    assert code == 1
    assert [(e["stage"], e["code"]) for e in result["errors"]] == [("upload", "transfer-failed")]


# check --publish before enrollment ---------------------------------------------------------


@pytest.mark.skipif(DEFAULT_PATH.exists(), reason=f"{DEFAULT_PATH} exists: this probe is enrolled")
def test_publish_without_any_enrollment_says_so_first_and_shows_the_measurement(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, target: Endpoint
) -> None:
    with enforcing_collector(tmp_path, broker.url, store.url) as collector:
        answer = run_agent(
            "check", "--target", target.url, "--tests", "download", "--duration", "1",
            "--publish", "--broker", broker.url, merged=True,
        )  # fmt: skip
        received = results_seen(collector)
    screen = answer.stdout
    assert answer.returncode == 2
    assert TRACEBACK not in screen
    warning = screen.index("this probe is not enrolled")
    assert warning < screen.index("download"), "said before measuring"
    assert "Mb/s" in screen, "the measurement is shown"
    assert "qos-agent enroll" in screen
    assert "not published" in screen
    assert received == 0, "nothing was sent"


@pytest.mark.slow
def test_publish_before_the_daemon_ever_ran_is_stored(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, target: Endpoint
) -> None:
    """Enrolled (config and key), daemon never started: the check sends the enrollment first."""
    table = config_table(
        tmp_path / "state", broker_url=broker.url, target_url=target.url, links=(LOOPBACK,)
    )
    agent = make_agent(tmp_path / "agent", table, synthetic=False)
    with enforcing_collector(tmp_path, broker.url, store.url) as collector:
        code, result, errors = check_json(
            "--config", str(agent.config_path), "--tests", "download,upload", "--duration", "1",
            "--publish",
        )  # fmt: skip
        accepted = collector_counter(collector, "qos_collector_results_accepted_total")
    assert code == 0, errors
    assert result["measurements"]["download"]["mbps"] > 0
    assert accepted == 1
    wait_until(lambda: stored_seqs(store) == [result["seq"]], timeout_s=10, what="the sample")


@pytest.mark.slow
def test_publish_without_a_signing_key_warns_first_and_shows_the_measurement(
    tmp_path: Path, broker: Mosquitto, store: VictoriaMetrics, target: Endpoint
) -> None:
    table = config_table(
        tmp_path / "state", broker_url=broker.url, target_url=target.url, links=(LOOPBACK,)
    )
    path = tmp_path / "agent.toml"
    write_config(path, table)  # no key made
    with enforcing_collector(tmp_path, broker.url, store.url):
        code, result, errors = check_json(
            "--config", str(path), "--tests", "download", "--duration", "1", "--publish",
            "--receipt-timeout", "3",
        )  # fmt: skip
    assert code == 2
    assert result["measurements"]["download"]["mbps"] > 0
    assert errors.index("no signing key") < errors.index("no receipt")
    assert "qos-agent enroll" in errors
    assert stored_seqs(store) == []
