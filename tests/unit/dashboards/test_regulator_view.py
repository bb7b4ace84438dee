"""The regulator's view: names not codes, verdicts over the picked range, links, offline maps."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from shapely.geometry import Point, shape

from contract.places import provinces
from dashboards.gazetteer import BOUNDARIES, GAZETTEER, GEO_DIR, GEO_URL, gazetteer
from dashboards.promql import JSON_DIR, custom_options, load_dashboards, panels, variables

DASHBOARDS = {str(d["uid"]): d for d in load_dashboards()}
ENGLISH = {str(d["uid"]): d for d in load_dashboards(JSON_DIR / "en")}
COMPOSE = Path(__file__).resolve().parents[3] / "deploy" / "compose.yaml"
GRAFANA_STATIC = PurePosixPath("/usr/share/grafana")


def overrides(panel: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for rule in panel.get("fieldConfig", {}).get("overrides", []):
        if rule["matcher"] == {"id": "byName", "options": name}:
            found |= {prop["id"]: prop["value"] for prop in rule["properties"]}
    return found


def every_panel() -> list[tuple[str, dict[str, Any]]]:
    return [(uid, panel) for uid, d in DASHBOARDS.items() for panel in panels(d)]


def test_every_table_and_map_shows_province_names_not_codes() -> None:
    names = {code: province.name_vi for code, province in provinces().items()}
    checked = 0
    for _, panel in every_panel():
        if panel["type"] not in {"table", "geomap"}:
            continue
        if not any("province" in target["expr"] for target in panel["targets"]):
            continue
        (mapping,) = overrides(panel, "province")["mappings"]
        shown = {code: option["text"] for code, option in mapping["options"].items()}
        assert shown == names, panel["title"]
        checked += 1
    assert checked >= 4


def test_a_legend_naming_a_province_is_shown_by_its_name() -> None:
    for _, panel in every_panel():
        for target in panel["targets"]:
            if "{{province}}" in target.get("legendFormat", ""):
                assert target["legendFormat"] == "{{province}}", panel["title"]
                assert overrides(panel, "01")["displayName"] == "Hà Nội"
                assert len(panel["fieldConfig"]["overrides"]) >= len(provinces())


def test_the_province_variables_list_the_34_by_name() -> None:
    for uid in ("qosfleet-area", "qosfleet-overview"):
        (province,) = (v for v in variables(DASHBOARDS[uid]) if v["name"] == "province")
        assert custom_options(province) == list(provinces())
        assert "Hà Nội : 01" in province["query"]
        assert province["allValue"] == ".*"


def test_verdicts_are_read_over_the_picked_range_not_a_fixed_window() -> None:
    """A stat or table of verdicts follows the time picker: `[$__range]`, never `[10m]`."""
    for _, panel in every_panel():
        for target in panel["targets"]:
            expr = target["expr"]
            for window in re.findall(r"qos_compliance_\w+\{[^}]*\}\[([^\]]+)\]", expr):
                assert window == "$__range", (panel["title"], expr)


def test_the_area_and_the_overview_show_verdicts_over_time() -> None:
    for uid in ("qosfleet-area", "qosfleet-overview"):
        timelines = [p for p in panels(DASHBOARDS[uid]) if p["type"] == "state-timeline"]
        assert timelines, uid
        for panel in timelines:
            (target,) = panel["targets"]
            assert not target.get("instant"), "a range query: one verdict per step"
            assert "qos_compliance_status" in target["expr"]
            texts = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
            assert (texts["0"]["text"], texts["0"]["color"]) == ("KHÔNG ĐẠT", "red")


def test_operators_are_ranked_best_first_with_n_and_verdict() -> None:
    (ranking,) = (
        p for p in panels(ENGLISH["qosfleet-overview-en"]) if p["title"].startswith("Operator rank")
    )
    assert ranking["options"]["sortBy"] == [{"desc": True, "displayName": "mean / line"}]
    renames = ranking["transformations"][1]["options"]["renameByName"]
    assert set(renames.values()) >= {"mean / line", "n", "verdict"}
    assert "operator" in ranking["targets"][0]["expr"]


def test_links_lead_to_dashboards_and_variables_that_exist() -> None:
    links = [
        (panel["title"], link["url"])
        for _, panel in every_panel()
        for rule in panel.get("fieldConfig", {}).get("overrides", [])
        for prop in rule["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert len(links) >= 4
    targets = set()
    for title, url in links:
        parts = urlsplit(url)
        uid = parts.path.split("/")[2]
        targets.add(uid)
        names = {v["name"] for v in variables(DASHBOARDS[uid])}
        query = [key for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
        chosen = {key.removeprefix("var-") for key in query if key.startswith("var-")}
        assert chosen <= names, (title, chosen - names)
        assert "${__url_time_range}" in url, title
    assert targets == {"qosfleet-area", "qosfleet-probe"}


def test_maps_fetch_nothing_from_the_internet() -> None:
    """Both maps draw the shipped boundaries as their base layer, served from Grafana's static
    files where compose mounts dashboards/geo; the province markers come from its gazetteer."""
    maps = [p for p in panels(DASHBOARDS["qosfleet-overview"]) if p["type"] == "geomap"]
    assert len(maps) == 2
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mounts = dict(
        reversed(volume.split(":")[:2]) for volume in compose["services"]["grafana"]["volumes"]
    )
    served = mounts[str(GRAFANA_STATIC / GEO_URL)]
    assert (COMPOSE.parent / served).resolve() == GEO_DIR
    for panel in maps:
        basemap = panel["options"]["basemap"]
        assert basemap["type"] == "geojson"
        assert basemap["config"]["src"] == f"{GEO_URL}/{BOUNDARIES}"
        for layer in panel["options"]["layers"]:
            assert layer["type"] == "markers"
            location = layer["location"]
            if location["mode"] == "lookup":
                assert location["gazetteer"] == f"{GEO_URL}/{GAZETTEER}"
                assert location["lookup"] == "province"


def test_each_province_marker_lies_inside_its_province() -> None:
    boundaries = json.loads((GEO_DIR / BOUNDARIES).read_text(encoding="utf-8"))
    areas = {f["properties"]["code"]: shape(f["geometry"]) for f in boundaries["features"]}
    entries = gazetteer(boundaries)
    assert [entry["key"] for entry in entries] == list(provinces())
    for entry in entries:
        point = Point(entry["longitude"], entry["latitude"])
        assert areas[entry["key"]].contains(point), entry
    committed = json.loads((GEO_DIR / GAZETTEER).read_text(encoding="utf-8"))
    assert committed == entries


@pytest.mark.parametrize("ring_points", [[(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4), (0, 0)]])
def test_a_bent_province_gets_its_marker_inside(ring_points: list[tuple[float, float]]) -> None:
    """An L-shaped area's centroid is outside it; the marker is not."""
    geometry = {"type": "Polygon", "coordinates": [ring_points]}
    boundaries = {"features": [{"geometry": geometry, "properties": {"code": "x", "name_vi": "x"}}]}
    (entry,) = gazetteer(boundaries)
    assert shape(geometry).contains(Point(entry["longitude"], entry["latitude"]))
