"""Generate contract/data/provinces.json: the NSO list of 2025-07-01, Resolution 202/2025/QH15.

Input: the data directory of the PyPI package vietnam-provinces 2025.10.1, which carries the NSO's
codes and names of the 34 provinces and 3,321 communes (xã, phường, đặc khu):

    pip download --no-deps vietnam-provinces==2025.10.1 && unzip vietnam_provinces-*.whl
    python scripts/geodata/provinces.py vietnam_provinces/data/nested-divisions.json

Only those facts (codes and names) are taken; the package is not a dependency. Which pre-2025
provinces each new one merged from is Resolution 202/2025/QH15, written out below.
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[2] / "contract" / "data" / "provinces.json"

# The 63 provinces before 2025-07-01, by their NSO code.
OLD_PROVINCES = {
    "01": "Hà Nội", "02": "Hà Giang", "04": "Cao Bằng", "06": "Bắc Kạn", "08": "Tuyên Quang",
    "10": "Lào Cai", "11": "Điện Biên", "12": "Lai Châu", "14": "Sơn La", "15": "Yên Bái",
    "17": "Hòa Bình", "19": "Thái Nguyên", "20": "Lạng Sơn", "22": "Quảng Ninh",
    "24": "Bắc Giang", "25": "Phú Thọ", "26": "Vĩnh Phúc", "27": "Bắc Ninh", "30": "Hải Dương",
    "31": "Hải Phòng", "33": "Hưng Yên", "34": "Thái Bình", "35": "Hà Nam", "36": "Nam Định",
    "37": "Ninh Bình", "38": "Thanh Hóa", "40": "Nghệ An", "42": "Hà Tĩnh", "44": "Quảng Bình",
    "45": "Quảng Trị", "46": "Thừa Thiên Huế", "48": "Đà Nẵng", "49": "Quảng Nam",
    "51": "Quảng Ngãi", "52": "Bình Định", "54": "Phú Yên", "56": "Khánh Hòa",
    "58": "Ninh Thuận", "60": "Bình Thuận", "62": "Kon Tum", "64": "Gia Lai", "66": "Đắk Lắk",
    "67": "Đắk Nông", "68": "Lâm Đồng", "70": "Bình Phước", "72": "Tây Ninh",
    "74": "Bình Dương", "75": "Đồng Nai", "77": "Bà Rịa - Vũng Tàu", "79": "Hồ Chí Minh",
    "80": "Long An", "82": "Tiền Giang", "83": "Bến Tre", "84": "Trà Vinh", "86": "Vĩnh Long",
    "87": "Đồng Tháp", "89": "An Giang", "91": "Kiên Giang", "92": "Cần Thơ", "93": "Hậu Giang",
    "94": "Sóc Trăng", "95": "Bạc Liêu", "96": "Cà Mau",
}  # fmt: skip

# Resolution 202/2025/QH15: each new province and the old ones it joined (whole provinces; a new
# province keeps the code of one of them, which is listed first).
MERGED_FROM = {
    "01": ["01"], "04": ["04"], "08": ["08", "02"], "11": ["11"], "12": ["12"], "14": ["14"],
    "15": ["15", "10"], "19": ["19", "06"], "20": ["20"], "22": ["22"], "24": ["24", "27"],
    "25": ["25", "26", "17"], "31": ["31", "30"], "33": ["33", "34"], "37": ["37", "35", "36"],
    "38": ["38"], "40": ["40"], "42": ["42"], "44": ["44", "45"], "46": ["46"],
    "48": ["48", "49"], "51": ["51", "62"], "52": ["52", "64"], "56": ["56", "58"],
    "66": ["66", "54"], "68": ["68", "67", "60"], "75": ["75", "70"], "79": ["79", "74", "77"],
    "80": ["80", "72"], "82": ["82", "87"], "86": ["86", "83", "84"], "91": ["91", "89"],
    "92": ["92", "93", "94"], "96": ["96", "95"],
}  # fmt: skip

# The English forms in common use for the centrally run cities; other names are their ASCII form.
ENGLISH = {
    "Hà Nội": "Hanoi",
    "Hồ Chí Minh": "Ho Chi Minh City",
    "Huế": "Hue",
    "Hải Phòng": "Hai Phong",
    "Đà Nẵng": "Da Nang",
    "Cần Thơ": "Can Tho",
}

CITY_PREFIX = "Thành phố "


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def ascii_form(name: str) -> str:
    """Vietnamese without its marks: đ/Đ are letters of their own, not d with a mark."""
    folded = name.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def province_entry(division: dict[str, Any]) -> dict[str, Any]:
    code = f"{division['code']:02d}"
    official = nfc(division["name"])
    name = official.removeprefix(CITY_PREFIX)
    return {
        "code": code,
        "name_vi": name,
        "official_name_vi": official if official.startswith(CITY_PREFIX) else f"Tỉnh {official}",
        "name_en": ENGLISH.get(name, ascii_form(name)),
        "kind": "city" if official.startswith(CITY_PREFIX) else "province",
        "merged_from": [
            {"code": old, "name_vi": nfc(OLD_PROVINCES[old])} for old in MERGED_FROM[code]
        ],
        "communes": {
            f"{ward['code']:05d}": nfc(ward["name"])
            for ward in sorted(division["wards"], key=lambda ward: int(ward["code"]))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nested_divisions", type=Path, help="vietnam_provinces/data/nested-...")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    divisions = json.loads(args.nested_divisions.read_text(encoding="utf-8"))
    document = {
        "source": "National Statistics Office (Cục Thống kê) list of administrative units from "
        "2025-07-01, as carried by vietnam-provinces 2025.10.1; mergers: Resolution "
        "202/2025/QH15. See contract/data/README.md.",
        "provinces": [province_entry(division) for division in divisions],
    }
    text = json.dumps(document, ensure_ascii=False, indent=1)
    args.output.write_text(text + "\n", encoding="utf-8")
    communes = sum(len(p["communes"]) for p in document["provinces"])
    print(f"{args.output}: {len(document['provinces'])} provinces, {communes} communes")


if __name__ == "__main__":
    main()
