"""The documented probe installation, run for real on this machine (issue 17).

The Debian package is built from this repository (packaging/deb/build), the playbook
(deploy/ansible/enroll-probe.yml, connection local) installs it and enrolls the probe against a
real mosquitto running the shipped config with TLS, first in check mode on the fresh machine, then
for real. The agent starts as its installed unit says (systemd is not PID 1 here: the unit's
ExecStart under its user, group, umask and capability, by setpriv), measures, and a real
collector stores its signed result. Everything the installation made (package, user, /etc,
/var/lib, /opt, processes) is removed at the end, also when the test fails.

The real broker starts with the probe's account already in its password file but not reloaded:
the state a run that failed after `mosquitto_passwd` leaves. The playbook must find the broker
refusing the probe, reload it and see the probe log in.
"""

from __future__ import annotations

import configparser
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
import yaml

from agent.spool import recent_results
from agent.state import open_state_db
from contract.result import Result
from lab.services import (
    Endpoint,
    VictoriaMetrics,
    qos_collector,
    qos_target,
    require_binary,
    victoria_metrics,
)
from tests.integration.collector.support import Broker, shipped_broker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a Debian package and a user: root"),
]

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "deploy" / "ansible" / "enroll-probe.yml"
PROBE_ID = "vn-01-field-install"
PACKAGE = "qosfleet-agent"
USER = "qosfleet"
# What the package and the playbook make on a probe; none of it may exist before the test.
MADE = tuple(
    map(Path, ("/opt/qosfleet", "/etc/qosfleet", "/var/lib/qosfleet", "/var/cache/qosfleet"))
)
UNIT = Path("/lib/systemd/system/qos-agent.service")
# The environment systemd gives a service: nothing of this test's (no PYTHONPATH, no pip config).
UNIT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return "install ok installed" in done.stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def a_clean_machine_afterwards() -> Iterator[None]:
    """Refuse to run on a machine that is a probe already; leave none of the probe behind."""
    present = [str(path) for path in MADE if path.exists()]
    if installed(PACKAGE) or user_exists(USER) or present:
        pytest.skip(f"this machine has a qosfleet probe installed ({PACKAGE}, {USER}, {present})")
    try:
        yield
    finally:
        subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True, check=False, timeout=120)
        if user_exists(USER):
            subprocess.run(["userdel", USER], capture_output=True, check=False, timeout=30)
        for path in MADE:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def building_the_package(out: Path) -> Iterator[Callable[[], Path]]:
    """packaging/deb/build in the background (it waits on PyPI); the block's call waits for it."""
    build = subprocess.Popen(
        ["bash", str(REPO / "packaging" / "deb" / "build"), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield lambda: built(build)
    finally:
        if build.poll() is None:
            build.kill()
        build.communicate()


def built(build: subprocess.Popen[str]) -> Path:
    stdout, stderr = build.communicate(timeout=300)
    assert build.returncode == 0, stderr
    package = Path(stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"qosfleet-agent_[0-9.]+_(amd64|arm64)\.deb", package.name), package
    return package


def inventory(path: Path, package: Path, broker: Broker, password: str, target: Endpoint) -> Path:
    assert broker.service is not None
    assert broker.service.process is not None
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    probe = local | {
        "qosfleet_deb": str(package),
        "qosfleet_packages": [],  # no modem here, and no apt index update in a test
        "qosfleet_broker_url": f"mqtts://localhost:{broker.tls_port}",
        "qosfleet_broker_ca": str(broker.ca_file),
        "qosfleet_broker_password": password,
        "qosfleet_broker_passwd_file": str(broker.etc / "passwd"),
        "qosfleet_broker_reload": ["kill", "-HUP", str(broker.service.process.pid)],
        "qosfleet_broker_login_port": broker.plain_port,
        "qosfleet_location": {
            "province_code": "01",
            "commune_code": "00004",
            "village": "Bản Cài Đặt",
            "lat": 21.03,
            "lon": 105.85,
        },
        "qosfleet_links": [
            {
                "interface": "lo",
                "access": "fixed",
                "technology": "ftth",
                "operator": "VNPT",
                "setting": "indoor",
                "plan": {"download_mbps": 300, "upload_mbps": 300},
            }
        ],
        "qosfleet_targets": [{"id": "lab", "url": target.url}],
        # A speed test at once (its idle and loaded latency with it), and a fresh status.
        "qosfleet_agent_tuning": {
            "schedule": {
                "speed_mean_s": 0.5,
                "speed_floor_s": 0.0,
                "speed_duration_s": 1.0,
                "light_mean_s": 3600.0,
                "light_floor_s": 3600.0,
            },
            "publish": {"status_interval_s": 1.0},
        },
    }
    hosts = {"broker": {"hosts": {"broker": local}}, "probes": {"hosts": {PROBE_ID: probe}}}
    path.write_text(yaml.safe_dump({"all": {"children": hosts}}), encoding="utf-8")
    return path


def playbook(inventory_file: Path, workdir: Path, *options: str) -> str:
    """ansible-playbook as the office runs it; its output (failing the test when it fails)."""
    env = {
        **UNIT_ENV,
        "HOME": str(workdir),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
    }
    done = subprocess.run(
        [require_binary("ansible-playbook"), "-i", str(inventory_file), str(PLAYBOOK), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done.stdout


def recap(output: str) -> dict[str, int]:
    line = re.search(rf"^{PROBE_ID}\s+:\s+(.*)$", output, re.MULTILINE)
    assert line is not None, output
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line.group(1))}


def task_outcome(output: str, task: str) -> str:
    """ok, changed, skipping or failed: how the playbook's output says `task` went."""
    heading = rf"^TASK \[qosfleet_probe : {re.escape(task)}[^\n]*\n(\w+)"
    outcome = re.search(heading, output, re.MULTILINE)
    assert outcome is not None, output
    return outcome.group(1)


def unit_command() -> list[str]:
    """The installed unit's ExecStart under its User, Group, UMask and capabilities."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    service = parser["Service"]
    caps = ",".join(
        "+" + cap.removeprefix("CAP_").lower() for cap in service["AmbientCapabilities"].split()
    )
    bounding = ",".join(
        "+" + cap.removeprefix("CAP_").lower() for cap in service["CapabilityBoundingSet"].split()
    )
    assert service["NoNewPrivileges"] == "yes"
    return [
        require_binary("setpriv"),
        f"--reuid={service['User']}",
        f"--regid={service['Group']}",
        "--init-groups",
        f"--inh-caps=-all,{caps}",
        f"--ambient-caps=-all,{caps}",
        f"--bounding-set=-all,{bounding}",
        "--no-new-privs",
        "--",
        "sh",
        "-c",
        f'umask {service["UMask"]} && exec "$@"',
        "qos-agent",
        *shlex.split(service["ExecStart"]),
    ]


@contextmanager
def agent_as_the_unit(log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            unit_command(), stdout=output, stderr=subprocess.STDOUT, env=UNIT_ENV,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def stored_result(process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> Result:
    """The agent's first result the collector confirmed stored (its receipt), from its spool."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        if (Path("/var/lib/qosfleet") / "state.db").exists():
            db = open_state_db(Path("/var/lib/qosfleet"), read_only=True)
            try:
                delivered = [payload for payload, done in recent_results(db) if done]
            finally:
                db.close()
            if delivered:
                return msgspec.json.decode(delivered[-1], type=Result)
        time.sleep(0.3)
    pytest.fail(f"no result stored in {timeout_s:g} s: {log.read_text(errors='replace')[-3000:]}")


def technicians_status() -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        ["/opt/qosfleet/bin/qos-agent", "status", "--json"],
        capture_output=True, text=True, timeout=30, check=False, env=UNIT_ENV,
    )  # fmt: skip
    report: dict[str, object] = json.loads(done.stdout)
    return done.returncode, report


def test_the_documented_installation_measures_and_delivers(tmp_path: Path) -> None:
    require_binary("dpkg-deb")
    password = secrets.token_urlsafe(24)
    collector_password = secrets.token_urlsafe(24)
    with a_clean_machine_afterwards():
        accounts = {"collector.1": collector_password}
        with (
            building_the_package(tmp_path / "dist") as package_built,
            shipped_broker(tmp_path / "broker", accounts) as broker,
            victoria_metrics(tmp_path / "store") as store,
            qos_target(tmp_path / "target") as target,
        ):
            # A failed earlier run: the account is in the file, the broker was never reloaded.
            subprocess.run(
                [require_binary("mosquitto_passwd"), "-b", str(broker.etc / "passwd"),
                 PROBE_ID, password],
                check=True, timeout=10,
            )  # fmt: skip
            secret = tmp_path / "collector-password"
            secret.write_text(collector_password, encoding="utf-8")
            production = ("--broker-username", "collector.1", "--broker-password-file", str(secret))
            with qos_collector(
                tmp_path, broker_url=broker.url, store_url=store.url, extra_args=production
            ):
                package = package_built()
                hosts = inventory(tmp_path / "inventory.yml", package, broker, password, target)
                checked = playbook(hosts, tmp_path, "--check")
                assert recap(checked)["failed"] == 0
                assert not installed(PACKAGE), "check mode installed the package"
                assert not Path("/etc/qosfleet").exists(), "check mode wrote the config"

                enrolled = playbook(hosts, tmp_path)
                assert "public key" in enrolled
                assert task_outcome(enrolled, "Reload the broker") == "changed"
                assert installed(PACKAGE)
                assert Path("/opt/qosfleet/bin/python3").resolve() == Path("/usr/bin/python3.11")
                key = Path("/var/lib/qosfleet/probe.key").stat()
                assert (key.st_uid, key.st_mode & 0o777) == (pwd.getpwnam(USER).pw_uid, 0o600)

                log = tmp_path / "qos-agent.log"
                with agent_as_the_unit(log) as agent:
                    result = stored_result(agent, log, timeout_s=40)
                    code, status = technicians_status()
                    assert code == 0, status
                    assert status["daemon_running"] is True
                    assert status["broker_connected"] is True
                assert_measured_as_the_lab(result, store)

                code, status = technicians_status()
                assert code == 1
                assert status["broker_connected"] is False

                again = playbook(hosts, tmp_path)
                assert recap(again)["changed"] == 0, again


def assert_measured_as_the_lab(result: Result, store: VictoriaMetrics) -> None:
    assert result.probe_id == PROBE_ID
    assert result.signature
    assert result.errors == (), result.errors
    latency = result.measurements.latency
    assert latency is not None
    assert latency.idle is not None
    # The unit's CAP_NET_RAW and the package's scapy: ICMP, as in the lab.
    assert latency.idle.method == "icmp"
    download = result.measurements.download
    assert download is not None
    series = store.wait_for(
        f'qos_download_mbps{{probe="{PROBE_ID}", village="Bản Cài Đặt"}}',
        at=result.finished_at.timestamp(),
    )
    assert float(series[0]["value"][1]) == pytest.approx(download.mbps, rel=1e-9)
