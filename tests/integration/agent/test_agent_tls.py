"""The agent over TLS with a per-probe account: a CA made here, mosquitto's TLS listener."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab.services import Endpoint, Service, VictoriaMetrics, free_port, require_binary, tcp_answers
from tests.certificates import make_certificates
from tests.integration.agent.conftest import (
    collector_counter,
    enforcing_collector,
    make_agent,
    wait_until,
)
from tests.unit.agent.builders import PROBE_ID, config_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "probe-secret"


@contextmanager
def tls_broker(workdir: Path) -> Iterator[tuple[int, int, Path]]:
    """mosquitto with a plain listener (for the collector) and a TLS one needing an account.

    Yields (plain port, TLS port, CA file).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ca, certificate, key = make_certificates(workdir)
    passwords = workdir / "passwords"
    subprocess.run(
        [require_binary("mosquitto_passwd"), "-b", "-c", str(passwords), PROBE_ID, PASSWORD],
        check=True,
        capture_output=True,
    )
    plain, tls = free_port(), free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        # Started as root, mosquitto would become user mosquitto, who cannot read the test's files.
        "user root\n"
        "per_listener_settings true\n"
        f"listener {plain} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"listener {tls} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {passwords}\n"
        f"cafile {ca}\ncertfile {certificate}\nkeyfile {key}\n"
        "log_dest stdout\n",
        encoding="utf-8",
    )
    service = Service(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], workdir / "log"
    )
    try:
        service.start(lambda: tcp_answers("127.0.0.1", plain) and tcp_answers("127.0.0.1", tls))
        yield plain, tls, ca
    finally:
        service.stop()


def test_results_travel_over_tls_only_with_the_probes_account(
    tmp_path: Path, store: VictoriaMetrics
) -> None:
    with tls_broker(tmp_path / "mosquitto") as (plain, tls, ca):
        broker = {
            "url": f"mqtts://127.0.0.1:{tls}",
            "username": PROBE_ID,
            "password": "wrong",
            "ca_file": str(ca),
        }
        agent = make_agent(
            tmp_path / "agent", config_table(tmp_path / "state", broker=broker), synthetic=True
        )
        collector: Endpoint
        with enforcing_collector(tmp_path, f"mqtt://127.0.0.1:{plain}", store.url) as collector:
            with agent.running("refused"):
                wait_until(lambda: agent.spooled() >= 5, timeout_s=20, what="results spooled")

                def refusal() -> str:
                    daemon = agent.daemon()
                    return (daemon.broker_error or "") if daemon else ""

                wait_until(
                    lambda: "not authorized" in refusal().lower(),
                    timeout_s=10,
                    what="the broker's refusal, for `qos-agent status` to show",
                )
                assert agent.spool().delivered == 0
            agent.write(broker=broker | {"password": PASSWORD})
            with agent.running("accepted"):
                wait_until(
                    lambda: agent.spool().delivered >= 5, timeout_s=20, what="delivery over TLS"
                )
            report = agent.drain()
            assert report.delivered == report.spooled
            wait_until(
                lambda: (
                    collector_counter(collector, "qos_collector_results_accepted_total")
                    == report.spooled
                ),
                timeout_s=10,
                what="every result accepted once",
            )
