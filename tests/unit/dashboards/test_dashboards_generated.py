"""The committed dashboards are what the generator makes now, and they hold together.

grafana-foundation-sdk is a dev dependency: without it the import below fails collection, so the
suite fails instead of skipping.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dashboards import generate
from dashboards.promql import (
    ALL_VALUE,
    DATASOURCE_UID,
    JSON_DIR,
    LABEL_VALUES,
    Window,
    custom_options,
    load_dashboards,
    panels,
    referenced_names,
    substitute,
    variable_query,
    variables,
)

FOLDER = Path(generate.__file__).parent
DASHBOARDS = load_dashboards()
MACROS = set(Window(0, 3600, 60).macros())


def uid(dashboard: dict[str, Any]) -> str:
    return str(dashboard["uid"])


def targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in panels(dashboard) for target in panel["targets"]]


def documented_series() -> set[str]:
    """Every series name SERIES.md lists, with a histogram's _bucket/_sum/_count."""
    text = (FOLDER / "SERIES.md").read_text(encoding="utf-8")
    names = set(re.findall(r"\bqos_\w+", text))
    for histogram in re.findall(r"`(qos_\w+)` \(histogram\)", text):
        names |= {f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    return names


def test_committed_files_are_what_the_generator_makes(tmp_path: Path) -> None:
    generate.write(tmp_path)
    fresh = {path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()}
    committed_json = {path.relative_to(FOLDER) for path in JSON_DIR.rglob("*.json")}
    assert committed_json == {path for path in fresh if path.parts[0] == "json"}
    for relative in sorted(fresh):
        assert (FOLDER / relative).read_bytes() == (tmp_path / relative).read_bytes(), (
            f"dashboards/{relative} is stale: run `.venv/bin/python -m dashboards.generate`"
        )


def test_generation_is_deterministic() -> None:
    assert generate.generated_files() == generate.generated_files()


def test_the_four_dashboards_are_there_with_unique_uids() -> None:
    assert sorted(uid(d) for d in DASHBOARDS) == [
        "qosfleet-area",
        "qosfleet-fleet",
        "qosfleet-overview",
        "qosfleet-probe",
    ]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=uid)
def test_dashboard_has_identity_and_panels(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"].startswith("QoS fleet / ")
    assert "qosfleet" in dashboard["tags"]
    assert panels(dashboard)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=uid)
def test_every_panel_queries_victoriametrics(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        assert panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE_UID


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=uid)
def test_queries_read_only_series_from_series_md(dashboard: dict[str, Any]) -> None:
    allowed = documented_series()
    for panel, target in targets(dashboard):
        used = set(re.findall(r"\bqos_\w+", target["expr"]))
        assert used, f"{panel['title']}: no qosfleet series in {target['expr']}"
        assert used <= allowed, f"{panel['title']}: {used - allowed} not in SERIES.md"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=uid)
def test_template_variables_resolve(dashboard: dict[str, Any]) -> None:
    defined: list[str] = []
    for variable in variables(dashboard):
        name = variable["name"]
        query = variable_query(variable)
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert LABEL_VALUES.match(query), f"{name}: {query}"
            assert referenced_names(query) <= set(defined), f"{name} uses a later variable"
        else:
            assert variable["type"] == "custom"
            assert custom_options(variable)
        if variable.get("includeAll"):
            # "All" must also match series that lack the label (e.g. province-level verdicts).
            assert variable["allValue"] == ALL_VALUE
        defined.append(name)
    for panel, target in targets(dashboard):
        unknown = referenced_names(target["expr"]) - set(defined) - MACROS
        assert not unknown, f"{panel['title']}: undefined {unknown}"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=uid)
def test_substitution_leaves_no_placeholder(dashboard: dict[str, Any]) -> None:
    values = {variable["name"]: "x" for variable in variables(dashboard)}
    for _, target in targets(dashboard):
        assert "$" not in substitute(target["expr"], values, Window(0, 3600, 60))


def test_overview_map_joins_coordinates_and_verdict_per_village() -> None:
    (overview,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-overview")
    (geomap,) = (
        p
        for p in panels(overview)
        if p["type"] == "geomap" and p["options"]["layers"][0]["location"]["mode"] == "coords"
    )
    assert [t["format"] for t in geomap["targets"]] == ["table"] * 3
    ids = [transformation["id"] for transformation in geomap["transformations"]]
    assert ids == ["merge", "organize"]
    location = geomap["options"]["layers"][0]["location"]
    assert (location["latitude"], location["longitude"]) == ("lat", "lon")


def test_provisioning_points_grafana_at_victoriametrics() -> None:
    datasource = (FOLDER / "provisioning/datasources/victoriametrics.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in datasource
    assert "type: prometheus" in datasource
    assert "url: http://victoria-metrics:8428" in datasource
    provider = (FOLDER / "provisioning/dashboards/qosfleet.yaml").read_text()
    assert "type: file" in provider
