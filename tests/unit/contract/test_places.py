"""The shipped administrative data (contract/data/provinces.json) and its loader."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from contract import places
from contract.places import PROVINCES_FILE

# The NSO codes of 2025-07-01 (Resolution 202/2025/QH15): 34 provinces and centrally run cities.
TODAY = [
    "01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25", "31", "33", "37", "38",
    "40", "42", "44", "46", "48", "51", "52", "56", "66", "68", "75", "79", "80", "82", "86", "91",
    "92", "96",
]  # fmt: skip


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_thirty_four_provinces_with_unique_two_digit_codes() -> None:
    raw = json.loads(PROVINCES_FILE.read_text(encoding="utf-8"))["provinces"]
    codes = [entry["code"] for entry in raw]
    assert codes == TODAY  # unique, complete, in code order
    assert list(places.provinces()) == TODAY


def test_every_old_code_is_mapped_once() -> None:
    old = [o.code for p in places.provinces().values() for o in p.merged_from]
    assert len(old) == 63
    assert len(set(old)) == 63
    assert all(re.fullmatch(r"\d{2}", code) for code in old)
    # A new province keeps the code of one of those it joined, so a code valid both before and
    # after names the same area's province.
    for code, province in places.provinces().items():
        assert code in {o.code for o in province.merged_from}
        assert places.successor(code) == province


def test_old_codes_name_their_province_and_successor() -> None:
    assert places.old_province("02") == places.OldProvince(code="02", name_vi="Hà Giang")
    assert places.successor("02") == places.province("08")
    assert places.province_name("02") == "Hà Giang (now Tuyên Quang)"
    assert places.province_name("79") == "Hồ Chí Minh"
    assert places.successor("77") == places.province("79")  # Bà Rịa - Vũng Tàu
    assert places.province("02") is None
    assert places.old_province("99") is None
    assert places.province_name("99") == "99"


def test_names_and_communes() -> None:
    provinces = places.provinces()
    assert provinces["01"].name_vi == "Hà Nội"
    assert provinces["01"].name_en == "Hanoi"
    assert provinces["96"].name_vi == "Cà Mau"
    assert provinces["08"].official_name_vi == "Tỉnh Tuyên Quang"
    assert all(p.name_en.isascii() for p in provinces.values())
    communes = [code for p in provinces.values() for code in p.communes]
    assert len(communes) == 3321
    assert len(set(communes)) == 3321
    assert all(re.fullmatch(r"\d{5}", code) for code in communes)
    kinds = {name.split()[0] for p in provinces.values() for name in p.communes.values()}
    assert kinds == {"Xã", "Phường", "Đặc"}  # xã, phường, đặc khu


def test_every_name_is_nfc_normalised() -> None:
    text = PROVINCES_FILE.read_text(encoding="utf-8")
    strings = _strings(json.loads(text))
    assert len(strings) > 3321 * 2
    for string in strings:
        assert unicodedata.normalize("NFC", string) == string, string
        assert string == string.strip(), string


@pytest.mark.parametrize("code", ["", "1", "001", "xx"])
def test_malformed_codes_name_nothing(code: str) -> None:
    assert places.province(code) is None
    assert places.successor(code) is None
