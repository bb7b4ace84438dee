"""Shared by the adversarial suite: real collector processes with the production defaults.

Each attack is made the way an attacker or an unlucky operator would make it - with a probe's
broker account, a full disk, a crafted HTTP request - against real mosquitto, VictoriaMetrics and
`qos-collector serve` processes, and each test checks what the issue promises: the collector goes
on, the refusal is counted under its reason, and nothing else is lost.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.services import Endpoint, qos_collector
from tests.integration.agent.conftest import wait_until

ADVERSARIAL = pytest.mark.adversarial


@contextmanager
def production_collector(
    workdir: Path,
    broker_url: str,
    store_url: str,
    *,
    name: str = "collector",
    state_dir: Path | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[Endpoint]:
    """`qos-collector serve` with the production policy (signed results of enrolled probes)."""
    with qos_collector(
        workdir,
        broker_url=broker_url,
        store_url=store_url,
        name=name,
        extra_args=("--verdict-interval", "0", *extra_args),
        state_dir=state_dir,
    ) as collector:
        yield collector


def metric(collector: Endpoint, name: str, **labels: str) -> float:
    """A sample of the collector's /metrics with exactly these labels (0 when absent)."""
    with urllib.request.urlopen(collector.url, timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def running(collector: Endpoint) -> bool:
    process = collector.service.process
    return process is not None and process.poll() is None


def restart(collector: Endpoint) -> None:
    """Stop the collector (SIGTERM) and start it again on the same state; ready once subscribed."""

    def subscribed() -> bool:
        try:
            return metric(collector, "qos_collector_broker_connected") == 1.0
        except OSError:  # not listening yet
            return False

    collector.service.stop()
    collector.service.start(subscribed)


def wait_for_metric(
    collector: Endpoint, name: str, at_least: float, *, timeout_s: float = 15.0, **labels: str
) -> float:
    wait_until(
        lambda: metric(collector, name, **labels) >= at_least,
        timeout_s=timeout_s,
        what=f"{name}{labels or ''} >= {at_least:g}",
    )
    return metric(collector, name, **labels)
