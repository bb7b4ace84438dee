"""Real services for tests: each started on a free loopback port in the test's own temp dir."""

from __future__ import annotations

import os
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


def pytest_configure(config: pytest.Config) -> None:
    # The tests read the English messages (the catalog's keys); without a locale the commands
    # speak Vietnamese (contract/i18n.py). Set here, so the commands the tests start read it too;
    # tests/unit/contract/test_i18n.py chooses Vietnamese explicitly.
    os.environ["LANGUAGE"] = "en"


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
