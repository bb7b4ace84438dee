"""msgspec's refusals of a file a person wrote, named by key and said in their language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest

from contract import i18n
from contract.errors import ConfigError
from contract.typed import Strict, convert


class Link(Strict, frozen=True, kw_only=True):
    interface: str
    rtt_ms: int = 0
    access: Literal["mobile", "fixed"] = "mobile"


@pytest.fixture(autouse=True)
def english_after() -> Iterator[None]:
    yield
    i18n.use("en")


def _refusal(table: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as refused:
        convert(table, Link, where="agent.toml: links[0].", hint="")
    return refused.value.message


@pytest.mark.parametrize(
    ("table", "english", "vietnamese"),
    [
        (
            {"interface": "wwan0", "rtt_ms": "40"},
            "links[0].rtt_ms: expected a value of type `int`, got `str`",
            "links[0].rtt_ms: cần giá trị kiểu `int`, nhận được `str`",
        ),
        (
            {"interface": "wwan0", "rtt": 40},
            "unknown key `rtt` (a typo?)",
            "khóa `rtt` không được biết đến (gõ nhầm?)",
        ),
        ({}, "the required key `interface` is missing", "thiếu khóa bắt buộc `interface`"),
        (
            {"interface": "eth0", "access": "cable"},
            "links[0].access: 'cable' is not an allowed value",
            "links[0].access: 'cable' không phải là giá trị được phép",
        ),
    ],
)
def test_each_refusal_in_both_languages(
    table: dict[str, object], english: str, vietnamese: str
) -> None:
    i18n.use("en")
    assert english in _refusal(table)
    i18n.use("vi")
    assert vietnamese in _refusal(table)
