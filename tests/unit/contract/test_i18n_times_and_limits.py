"""A verdict window's times and a rule's limits, as each language writes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contract import i18n

# 15:13 in Hà Nội is 08:13 UTC: the window is filed in UTC whatever the clock it came with.
HANOI_AFTERNOON = datetime(2025, 2, 8, 15, 13, tzinfo=timezone(timedelta(hours=7)))


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.use("en")


def test_vietnamese() -> None:
    i18n.use("vi")
    assert i18n.utc_time(HANOI_AFTERNOON) == "08/02/2025 08:13 UTC"
    assert i18n.figure(2000) == "2.000"
    assert i18n.figure(2.5) == "2,5"
    assert i18n.figure(0.001) == "0,001"


def test_english() -> None:
    i18n.use("en")
    assert i18n.utc_time(HANOI_AFTERNOON.astimezone(UTC)) == "2025-02-08 08:13 UTC"
    assert i18n.figure(2000) == "2,000"
    assert i18n.figure(86_400) == "86,400"
