"""The shipped province boundaries (dashboards/geo) and the outline enrollment checks against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shapely import unary_union
from shapely.geometry import MultiPolygon, Point, Polygon, shape

from contract import places

ROOT = Path(__file__).resolve().parents[3]
PROVINCES_GEOJSON = ROOT / "dashboards" / "geo" / "vn-provinces.geojson"
# Vietnam's mainland and near islands (Natural Earth draws no Hoàng Sa or Trường Sa, see README).
VIETNAM_BOUNDS = (102.1, 8.3, 109.6, 23.5)


def _features() -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads(PROVINCES_GEOJSON.read_text("utf-8"))["features"]
    return features


def test_one_valid_polygon_per_province_of_the_list() -> None:
    features = _features()
    assert len(features) == 34
    assert [f["properties"]["code"] for f in features] == list(places.provinces())
    for feature in features:
        properties = feature["properties"]
        province = places.provinces()[properties["code"]]
        assert properties == {
            "code": province.code,
            "name_vi": province.name_vi,
            "name_en": province.name_en,
        }
        geometry = shape(feature["geometry"])
        assert isinstance(geometry, Polygon | MultiPolygon)
        assert geometry.is_valid, province.code
        assert geometry.area > 0.01, province.code  # the smallest, Bắc Ninh, is ~0.2 square degree


def test_inside_vietnam_and_without_overlaps() -> None:
    geometries = [shape(f["geometry"]) for f in _features()]
    west, south, east, north = unary_union(geometries).bounds
    assert (west, south) >= VIETNAM_BOUNDS[:2]
    assert (east, north) <= VIETNAM_BOUNDS[2:]
    total = sum(g.area for g in geometries)
    assert unary_union(geometries).area == pytest.approx(total, rel=1e-3)  # no province overlaps


@pytest.mark.parametrize(
    ("place", "lat", "lon", "code"),
    [("Hoàn Kiếm", 21.03, 105.85, "01"), ("Lũng Cú", 23.36, 105.32, "08"),
     ("Phú Quốc", 10.22, 103.96, "91"), ("Côn Đảo", 8.69, 106.61, "79"),
     ("Bạch Long Vĩ", 20.13, 107.72, "31"), ("Đà Lạt", 11.94, 108.44, "68")],
)  # fmt: skip
def test_places_lie_in_their_province(place: str, lat: float, lon: float, code: str) -> None:
    point = Point(lon, lat)
    holding = [
        f["properties"]["code"]
        for f in _features()
        if shape(f["geometry"]).buffer(0.02).contains(point)
    ]
    assert holding == [code], place


@pytest.mark.parametrize(
    ("place", "lat", "lon", "expected"),
    [("Hà Nội", 21.03, 105.85, True), ("Phú Quốc", 10.22, 103.96, True),
     ("Côn Đảo", 8.69, 106.61, True), ("Thổ Chu", 9.29, 103.47, True),
     ("Lũng Cú", 23.36, 105.32, True), ("Trường Sa", 8.64, 111.92, True),
     ("Hoàng Sa", 16.5, 112.0, True), ("Paris", 48.86, 2.35, False),
     ("Vientiane", 17.97, 102.6, False), ("Phnom Penh", 11.56, 104.92, False),
     ("Nanning", 22.82, 108.32, False), ("Bangkok", 13.75, 100.5, False),
     ("Manila", 14.6, 120.98, False), ("lat and lon swapped", 105.85, 21.03, False),
     ("(0, 0)", 0.0, 0.0, False)],
)  # fmt: skip
def test_in_vietnam(place: str, lat: float, lon: float, expected: bool) -> None:
    assert places.in_vietnam(lat, lon) is expected, place


def test_the_outline_holds_every_province() -> None:
    features = json.loads(places.OUTLINE_FILE.read_text("utf-8"))["features"]
    outline = unary_union([shape(f["geometry"]) for f in features])
    assert outline.contains(unary_union([shape(f["geometry"]) for f in _features()]))
