"""One canonical spelling per technology and operator (contract/data/names.toml)."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from collector.series import labels
from contract import names
from contract.errors import ConfigError
from contract.result import Technology
from tests.strategies import sample_result


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("4G", "4g"), ("lte", "4g"), ("LTE-A", "4g"), ("4g", "4g"), ("FTTH", "ftth"),
     ("fibre", "ftth"), ("5G NR", "5g"), ("vdsl2", "dsl")],
)  # fmt: skip
def test_technology_aliases(typed: str, expected: str) -> None:
    assert names.technology(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("viettel", "Viettel"), ("VIETTEL", "Viettel"), ("Viettel Telecom", "Viettel"),
     (" viettel ", "Viettel"), ("vnpt", "VNPT"), ("VNPT-VinaPhone", "VinaPhone"),
     ("mobifone", "MobiFone"), ("Vietnamobile", "Vietnamobile"), ("fpt telecom", "FPT")],
)  # fmt: skip
def test_operator_aliases(typed: str, expected: str) -> None:
    assert names.operator(typed) == expected


def test_every_canonical_technology_is_one_of_the_wire() -> None:
    assert set(names.canonical_names("technologies")) == set(get_args(Technology)) - {"unknown"}


def test_no_spelling_names_two_things() -> None:
    for kind in ("technologies", "operators"):
        spellings = [
            names._key(s)
            for name, aliases in names.canonical_names(kind).items()
            for s in (name, *aliases)
        ]
        assert len(spellings) == len(set(spellings)), kind


def test_a_typo_is_refused_with_the_closest_name() -> None:
    with pytest.raises(ConfigError) as refused:
        names.operator("Vietel", field="--operator")
    assert refused.value.key == "--operator"
    assert "'Vietel' is not a known operator" in refused.value.message
    assert refused.value.hint.startswith("did you mean Viettel")
    with pytest.raises(ConfigError) as refused:
        names.technology("ltee")
    assert "did you mean" in refused.value.hint
    assert "4g" in refused.value.hint


def test_the_collector_keeps_an_unknown_operator_as_sent() -> None:
    assert names.operator_label("viettel") == "Viettel"
    assert names.operator_label("Hanoi Cable Co") == "Hanoi Cable Co"


@pytest.mark.parametrize("sent", ["viettel", "VIETTEL", "Viettel Telecom", "Viettel"])
def test_the_collector_labels_one_operator_one_way(sent: str) -> None:
    result = sample_result()
    result = msgspec.structs.replace(
        result, link=msgspec.structs.replace(result.link, operator=sent)
    )
    assert labels(result)["operator"] == "Viettel"
