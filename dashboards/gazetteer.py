"""Where each province's marker goes on the Grafana map: a gazetteer made from the boundaries.

Grafana's geomap places a row by a lookup key (here the province code) in a gazetteer file:
a JSON list of `key`, `name`, `latitude`, `longitude`. It is generated from
`geo/vn-provinces.geojson`, so markers and boundaries come from one source, and both are served
by Grafana itself from the mounted `geo/` folder: nothing is fetched from the internet.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

GEO_DIR = Path(__file__).resolve().parent / "geo"
BOUNDARIES = "vn-provinces.geojson"
GAZETTEER = "vn-provinces-gazetteer.json"
# Where deploy/compose.yaml mounts geo/ inside Grafana's static files.
GEO_URL = "public/maps/qosfleet"

Ring = list[tuple[float, float]]


def ring_area(ring: Ring) -> float:
    """Signed area (shoelace), in square degrees."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def centroid_latitude(ring: Ring) -> float:
    area = ring_area(ring)
    pairs = itertools.pairwise(ring)
    return sum((y0 + y1) * (x0 * y1 - x1 * y0) for (x0, y0), (x1, y1) in pairs) / (6 * area)


def label_point(ring: Ring) -> tuple[float, float]:
    """A point surely inside the ring, near its middle: the middle of the widest stretch of the
    east-west line through its centroid (a long, bent province's centroid can lie outside it)."""
    latitude = centroid_latitude(ring)
    crossings = sorted(
        x0 + (latitude - y0) * (x1 - x0) / (y1 - y0)
        for (x0, y0), (x1, y1) in itertools.pairwise(ring)
        if (y0 <= latitude < y1) or (y1 <= latitude < y0)
    )
    inside = zip(crossings[::2], crossings[1::2], strict=False)
    west, east = max(inside, key=lambda stretch: stretch[1] - stretch[0])
    return (west + east) / 2, latitude


def outer_rings(geometry: dict[str, Any]) -> list[Ring]:
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    return [[(float(x), float(y)) for x, y in polygon[0]] for polygon in polygons]


def gazetteer(boundaries: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per province, at a point inside its largest polygon."""
    entries = []
    for feature in boundaries["features"]:
        largest = max(outer_rings(feature["geometry"]), key=lambda ring: abs(ring_area(ring)))
        longitude, latitude = label_point(largest)
        properties = feature["properties"]
        entries.append(
            {
                "key": properties["code"],
                "name": properties["name_vi"],
                "latitude": round(latitude, 4),
                "longitude": round(longitude, 4),
            }
        )
    return entries


def gazetteer_json() -> str:
    boundaries = json.loads((GEO_DIR / BOUNDARIES).read_text(encoding="utf-8"))
    return json.dumps(gazetteer(boundaries), ensure_ascii=False, indent=1) + "\n"
