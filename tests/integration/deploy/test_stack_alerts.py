"""The stack watching itself, through real vmagent, VictoriaMetrics, vmalert and Alertmanager.

vmagent scrapes the jobs of deploy/vmagent.yml every second; vmalert evaluates
deploy/alerts/central.rules.yml (every `for` cut to seconds); Alertmanager runs the shipped routes
with each receiver's e-mail and chat replaced by a webhook to a server on loopback, so the test
sees which receiver every alert reached. The broker presents a certificate expiring in 10 days,
signed by a CA expiring in 3: the collector exports both and the expiry alerts reach the
operator. Then the collector is stopped, and its CentralServiceDown must reach the operator too.
A renewed broker certificate, copied over the old one as docs/operate-central.md says, is what the
broker presents after a SIGHUP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.certificates import PresentedCertificate
from lab.alerting import (
    CENTRAL_RULES_FILE,
    alertmanager,
    lab_alertmanager_config,
    rules_with_short_for,
    vmalert,
)
from lab.services import (
    UNSIGNED_CHECKS,
    Service,
    VictoriaMetrics,
    free_port,
    qos_collector,
    require_binary,
    tcp_answers,
)
from lab.stack import vmagent
from tests.certificates import make_certificates

pytestmark = pytest.mark.integration

ALERT_TIMEOUT_S = 40.0


class Notifications:
    """What Alertmanager posted, per receiver (the last path segment of the webhook URL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: list[tuple[str, dict[str, Any]]] = []

    def add(self, receiver: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._alerts.extend((receiver, alert) for alert in payload.get("alerts", []))

    def firing(self, receiver: str) -> list[dict[str, str]]:
        """Labels of every firing alert that reached `receiver`."""
        with self._lock:
            return [
                alert["labels"]
                for name, alert in self._alerts
                if name == receiver and alert.get("status") == "firing"
            ]

    def receivers_of(self, alertname: str) -> set[str]:
        with self._lock:
            return {
                name for name, alert in self._alerts if alert["labels"]["alertname"] == alertname
            }


@contextmanager
def webhook_server() -> Iterator[tuple[str, Notifications]]:
    """A loopback HTTP server taking Alertmanager's webhook posts; yields (base URL, log)."""
    notifications = Notifications()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            notifications.add(self.path.rsplit("/", 1)[-1], payload)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", notifications
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_broker(
    workdir: Path, ca: Path, certificate: Path, key: Path
) -> Iterator[tuple[int, Service]]:
    """mosquitto with one TLS listener (anonymous: a lab) presenting `certificate`: its port and
    its process."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mosquitto.conf"
    config.write_text(
        # Started as root, mosquitto would become user mosquitto, who cannot read the test's files.
        "user root\n"
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"cafile {ca}\ncertfile {certificate}\nkeyfile {key}\n"
        "log_dest stdout\n",
        encoding="utf-8",
    )
    service = Service(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], workdir / "mosquitto.log"
    )
    with service.running(lambda: tcp_answers("127.0.0.1", port)):
        yield port, service


def wait_for(
    store: VictoriaMetrics, notifications: Notifications, receiver: str, wanted: dict[str, str]
) -> dict[str, str]:
    """The first firing alert at `receiver` whose labels include `wanted`."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while time.monotonic() < deadline:
        for labels in notifications.firing(receiver):
            if wanted.items() <= labels.items():
                return labels
        # New series (the certificates') become searchable at once, not ~10 s later.
        store.flush()
        time.sleep(0.5)
    pytest.fail(
        f"no alert {wanted} reached {receiver} in {ALERT_TIMEOUT_S:g} s; "
        f"it got {notifications.firing(receiver)}"
    )


def post_alert(alertmanager_url: str, labels: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "posted by the test"}}])
    request = urllib.request.Request(
        f"{alertmanager_url}/api/v2/alerts",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_expiring_certificates_and_a_stopped_collector_reach_the_operator(
    store: VictoriaMetrics, tmp_path: Path
) -> None:
    ca, certificate, key = make_certificates(
        tmp_path / "pki",
        ca_valid_for=dt.timedelta(days=3),
        server_valid_for=dt.timedelta(days=10),
    )
    rules = rules_with_short_for(
        tmp_path / "rules" / "central.rules.yml", "2s", source=CENTRAL_RULES_FILE
    )
    with (
        webhook_server() as (hooks, notifications),
        alertmanager(
            tmp_path / "alertmanager",
            config=lab_alertmanager_config(
                tmp_path / "alertmanager.yml", webhook_url=hooks, quick=True
            ),
        ) as manager,
        vmalert(
            tmp_path / "vmalert",
            datasource_url=store.url,
            notifier_url=manager.url,
            rule_files=[rules],
        ) as evaluator,
        tls_broker(tmp_path / "mosquitto", ca, certificate, key) as (broker_port, _),
        qos_collector(
            tmp_path,
            broker_url=f"mqtts://127.0.0.1:{broker_port}",
            store_url=store.url,
            extra_args=(*UNSIGNED_CHECKS, "--broker-ca", str(ca), "--verdict-interval", "0"),
        ) as collector,
        vmagent(
            tmp_path / "vmagent",
            remote_write_url=f"{store.url}/api/v1/write",
            scrape_targets={
                "qos-collector": collector.url.removeprefix("http://").removesuffix("/metrics"),
                "victoria-metrics": store.url.removeprefix("http://"),
                "vmalert": evaluator.url.removeprefix("http://"),
                "alertmanager": manager.url.removeprefix("http://"),
            },
            scrape_interval_s=1.0,
        ),
    ):
        server = wait_for(
            store,
            notifications,
            "operator",
            {"alertname": "CertificateExpiresSoon", "role": "broker-server"},
        )
        assert server["subject"] == "CN=localhost"
        assert server["source"] == f"127.0.0.1:{broker_port}"
        assert (server["severity"], server["scope"]) == ("warning", "stack")
        fleet_ca = wait_for(
            store,
            notifications,
            "operator",
            {"alertname": "CertificateExpiresThisWeek", "role": "broker-ca", "source": str(ca)},
        )
        assert fleet_ca["severity"] == "critical"
        wait_for(store, notifications, "heartbeat", {"alertname": "Watchdog"})
        assert not [
            labels
            for labels in notifications.firing("operator")
            if labels["alertname"] == "CentralServiceDown"
        ], "every service answers: nothing is down yet"

        collector.service.stop()
        down = wait_for(
            store,
            notifications,
            "operator",
            {"alertname": "CentralServiceDown", "job": "qos-collector"},
        )
        assert down["severity"] == "critical"

        # A verdict alert, posted as vmalert would send it, goes to the critical receiver only.
        post_alert(
            manager.url,
            {
                "alertname": "QcvnAreaFailing",
                "severity": "critical",
                "part": "regulation",
                "province": "11",
                "village": "Ban Na Hin",
            },
        )
        wait_for(store, notifications, "critical", {"alertname": "QcvnAreaFailing"})
        assert notifications.receivers_of("QcvnAreaFailing") == {"critical"}
        assert notifications.receivers_of("CentralServiceDown") == {"operator"}


async def test_a_renewed_broker_certificate_is_presented_after_a_reload(tmp_path: Path) -> None:
    ca, certificate, key = make_certificates(
        tmp_path / "old", server_valid_for=dt.timedelta(days=10)
    )
    _, renewed, renewed_key = make_certificates(
        tmp_path / "new", server_valid_for=dt.timedelta(days=825)
    )
    with tls_broker(tmp_path / "mosquitto", ca, certificate, key) as (port, broker):
        presented = PresentedCertificate("127.0.0.1", port)
        (before,) = await presented.read()
        # As the renewal steps say: copied over the old files (same inode), then SIGHUP.
        shutil.copyfile(renewed, certificate)
        shutil.copyfile(renewed_key, key)
        assert broker.process is not None
        broker.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10.0
        after = before
        while after == before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            (after,) = await presented.read()
    days = (after.not_after_s - before.not_after_s) / 86_400
    assert round(days) == 825 - 10, "mosquitto still presents the old certificate"
