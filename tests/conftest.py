"""Real services for tests: each started on a free loopback port in the test's own temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.services import (
    Endpoint,
    Mosquitto,
    VictoriaMetrics,
    mosquitto,
    qos_target,
    victoria_metrics,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with mosquitto(tmp_path / "mosquitto") as service:
        yield service


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with victoria_metrics(tmp_path / "victoria-metrics") as service:
        yield service


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Endpoint]:
    with qos_target(tmp_path / "target") as service:
        yield service
