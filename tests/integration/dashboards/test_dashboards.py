"""Every dashboard query runs against a real VictoriaMetrics holding lab-like data.

Grafana is not installable here: the store is seeded with results through the collector's writer,
verdicts by the collector's engine, fleet state and collector metrics as a scrape would write them,
then each panel's queries are run with the variables and interval macros substituted as Grafana
would, and rendered to PNG.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from contract.places import provinces
from dashboards.promql import (
    ALL_VALUE,
    JSON_DIR,
    Json,
    Store,
    Window,
    load_dashboards,
    options,
    panels,
    resolve_variables,
    run_target,
    variables,
)
from dashboards.seed import DEMO_LINKS, seed
from lab.dashboard_png import display_name, merged_rows, query_panel, render_all, sorted_rows
from lab.services import VictoriaMetrics, victoria_metrics

pytestmark = pytest.mark.integration

SEED_HOURS = 7.0  # an hour more than the window, so hourly windows are full from its start
WINDOW_HOURS = 6.0
# The English dashboards, so the tests name panels as the code does; the Vietnamese ones run the
# same queries (tests/unit/dashboards/test_languages.py) and are what the PNGs show.
DASHBOARDS = load_dashboards(JSON_DIR / "en")
# The engine's verdicts on the seeded results: A is under 40 Mb/s with enough samples, B and C
# pass, D conforms to its 1 Gb/s plan (QCVN 34) though below the 1 Gb/s national target, E has
# about 200 of the 1,500 samples its profile needs.
VERDICTS = {"Na Sang": 0, "Huoi Mun": 1, "Pa Tan": 1, "Phuc Xa": 1, "Plei Op": -1}


class Seeded:
    def __init__(self, service: VictoriaMetrics, now: float) -> None:
        self.service = service
        self.store = Store(service.url)
        self.window = Window.last(WINDOW_HOURS, now=now)
        self.now = now


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One store for the module: seeding is the slow part, and the tests only read."""
    with victoria_metrics(tmp_path_factory.mktemp("victoria-metrics")) as service:
        now = time.time()
        seed(service.url, hours=SEED_HOURS, now=now)
        assert len(service.wait_for("qos_seq", at=now, count=len(DEMO_LINKS) - 1)) >= 4
        yield Seeded(service, now)


def assignments(dashboard: Json, seeded: Seeded) -> list[dict[str, str]]:
    """Grafana's first load, then each value of the first query variable with the rest chained.

    Some series exist only for some links (a plan only on fixed lines), so a query must find
    data under at least one of these, and must be accepted by the store under all of them.
    """
    found = [resolve_variables(dashboard, seeded.store, seeded.window)]
    queried = [v for v in variables(dashboard) if v["type"] == "query"]
    if queried:
        first = queried[0]
        # The wider areas before it (a custom list of provinces) stay at All, as a link sets them.
        wider = {
            v["name"]: ALL_VALUE
            for v in variables(dashboard)[: variables(dashboard).index(first)]
            if v.get("includeAll")
        }
        found.extend(
            resolve_variables(
                dashboard,
                seeded.store,
                seeded.window,
                wider | {first["name"]: value},
                saved_defaults=False,
            )
            for value in options(first, seeded.store, seeded.window, found[0])
        )
    return found


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: str(d["uid"]))
def test_every_panel_query_returns_series(dashboard: Json, seeded: Seeded) -> None:
    with_data: set[tuple[str, str]] = set()
    every = {(panel["title"], t["refId"]) for panel in panels(dashboard) for t in panel["targets"]}
    for values in assignments(dashboard, seeded):
        for panel in panels(dashboard):
            for target in panel["targets"]:
                # A query the store rejects raises here, whatever the variables.
                if run_target(seeded.store, target, values, seeded.window):
                    with_data.add((panel["title"], target["refId"]))
    assert every - with_data == set()


def test_variables_resolve_to_seeded_values(seeded: Seeded) -> None:
    (area,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-area-en")
    values = resolve_variables(area, seeded.store, seeded.window, saved_defaults=False)
    villages = sorted(link.village for link in DEMO_LINKS)
    assert values["level"] == "village"
    assert values["village"].replace("\\\\", "") in villages
    (probe,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-probe-en")
    offered = options(variables(probe)[0], seeded.store, seeded.window, {})
    assert offered == sorted(link.probe for link in DEMO_LINKS)


def stat_values(
    dashboard_uid: str, title: str, seeded: Seeded, chosen: dict[str, str] | None = None
) -> list[float]:
    (dashboard,) = (d for d in DASHBOARDS if d["uid"] == dashboard_uid)
    (panel,) = (p for p in panels(dashboard) if p["title"] == title)
    values = resolve_variables(dashboard, seeded.store, seeded.window, chosen)
    return [
        s.last for r in query_panel(seeded.store, panel, values, seeded.window) for s in r.series
    ]


def test_overview_counts_the_seeded_verdicts(seeded: Seeded) -> None:
    assert stat_values("qosfleet-overview-en", "Village verdicts: pass", seeded) == [3]
    assert stat_values("qosfleet-overview-en", "Village verdicts: fail", seeded) == [1]
    assert stat_values("qosfleet-overview-en", "Village verdicts: insufficient data", seeded) == [1]
    assert stat_values("qosfleet-overview-en", "Early warnings", seeded) == [1]
    assert stat_values("qosfleet-overview-en", "Below the national 1 Gb/s target", seeded) == [1]
    assert stat_values("qosfleet-fleet-en", "Probes offline", seeded) == [1]


def test_area_shows_a_fixed_line_in_two_parts(seeded: Seeded) -> None:
    """Phuc Xa conforms to QCVN 34 below 1 Gb/s: the regulation passes, the programme
    indicator is below its target, each with its own line, and the method is the QCVN one."""
    fixed = {"village": "Phuc Xa"}

    def area(title: str) -> list[float]:
        return stat_values("qosfleet-area-en", title, seeded, fixed)

    (link,) = (link for link in DEMO_LINKS if link.village == "Phuc Xa")
    assert link.plan is not None
    assert area("Regulation verdict") == [1]
    assert area("QCVN 34 plan conformity") == [1]
    assert area("QCVN 34 lines (0.8 x plan)") == [
        0.8 * link.plan.download_mbps,
        0.8 * link.plan.upload_mbps,
    ]
    assert area("National 1 Gb/s target") == [0]
    assert area("National target: early warning") == [0]
    mean, target = area("Mean download vs national target")
    assert 0.8 * link.plan.download_mbps < mean < target == 1000
    assert area("Method") == [1]
    # A mobile village has no fixed-line parts at all, rather than a misleading one.
    assert (
        stat_values("qosfleet-area-en", "National 1 Gb/s target", seeded, {"village": "Na Sang"})
        == []
    )


def test_area_counts_every_sample_rule(seeded: Seeded) -> None:
    """The seed's failed, probe-limited, unconverged, implausible and too-close samples reach the
    verdicts."""

    def counts(village: str) -> dict[str, float]:
        names = ("attempts", "failed", "probe-limited", "unconverged", "implausible", "too close")
        found = stat_values(
            "qosfleet-area-en",
            "Attempts, and samples not in the mean",
            seeded,
            {"village": village},
        )
        return dict(zip(names, found, strict=True))

    na_sang, huoi_mun, phuc_xa = counts("Na Sang"), counts("Huoi Mun"), counts("Phuc Xa")
    plei_op = counts("Plei Op")
    assert na_sang["failed"] > 0
    assert na_sang["implausible"] > 0
    assert huoi_mun["too close"] > 0
    assert phuc_xa["probe-limited"] > 0
    assert phuc_xa["failed"] == phuc_xa["implausible"] == phuc_xa["too close"] == 0
    assert plei_op["unconverged"] > 0  # its satellite backhaul's tests still climbing
    assert na_sang["unconverged"] == phuc_xa["unconverged"] == 0


def test_map_places_every_village_with_its_verdict(seeded: Seeded) -> None:
    (overview,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-overview-en")
    (geomap,) = (p for p in panels(overview) if p["title"].startswith("Villages by verdict"))
    values = resolve_variables(overview, seeded.store, seeded.window)
    _, rows = merged_rows(geomap, query_panel(seeded.store, geomap, values, seeded.window))
    placed: dict[Any, tuple[Any, Any, Any]] = {
        row["village"]: (row["lat"], row["lon"], row["status"]) for row in rows
    }
    assert placed == {
        link.village: (link.lat, link.lon, VERDICTS[link.village]) for link in DEMO_LINKS
    }


def test_render_writes_one_png_per_dashboard_with_data_in_every_panel(
    seeded: Seeded, tmp_path: Path
) -> None:
    """As Grafana's first load (and the demo) shows them: no panel says "No data"."""
    written = render_all(seeded.service.url, tmp_path, hours=WINDOW_HOURS, now=seeded.now)
    assert sorted(rendered.path.name for rendered in written) == sorted(
        f"{name}.png" for name in ("area", "fleet", "overview", "probe")
    )
    for rendered in written:
        assert rendered.empty_panels == [], (rendered.path.name, rendered.empty_panels)
        path = rendered.path
        assert path.stat().st_size > 50_000, path
        pixels = matplotlib.image.imread(path)
        height, width, channels = pixels.shape
        assert width == 1800
        assert 600 < height < 3000
        assert channels in {3, 4}
        assert pixels.std() > 0.05, f"{path.name} is blank"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: str(d["uid"]))
def test_no_chart_names_two_series_alike(dashboard: Json, seeded: Seeded) -> None:
    """At All (every village, technology, operator) each line has its own name: no legend
    reads "mean, mean, mean"."""
    values = resolve_variables(dashboard, seeded.store, seeded.window)
    for panel in panels(dashboard):
        if panel["type"] not in {"timeseries", "state-timeline"}:
            continue
        names = [
            display_name(series, result.target, panel)
            for result in query_panel(seeded.store, panel, values, seeded.window)
            for series in result.series
        ]
        assert len(names) == len(set(names)), (panel["title"], sorted(names))


RANKING = "Operator ranking: mean download / the regulation's line"


def panel_titled(title: str) -> Json:
    (overview,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-overview-en")
    (panel,) = (p for p in panels(overview) if p["title"] == title)
    return panel


def table_rows(title: str, seeded: Seeded) -> list[dict[str, Any]]:
    (overview,) = (d for d in DASHBOARDS if d["uid"] == "qosfleet-overview-en")
    panel = panel_titled(title)
    values = resolve_variables(overview, seeded.store, seeded.window)
    _, rows = merged_rows(panel, query_panel(seeded.store, panel, values, seeded.window))
    return rows


def test_operators_ranked_by_mean_over_the_line(seeded: Seeded) -> None:
    rows = table_rows(RANKING, seeded)
    by_province = {row["province"]: row for row in rows}
    assert set(by_province) == {link.province for link in DEMO_LINKS}
    lines = {"4g": 40, "5g": 100}  # the mobile profiles' mean targets (contract/profiles.toml)
    for row in rows:
        if row["technology"] in lines:
            assert row["mean / line"] == pytest.approx(row["mean Mb/s"] / lines[row["technology"]])
    shown = [row["mean / line"] for row in sorted_rows(panel_titled(RANKING), rows)]
    assert shown == sorted(shown, reverse=True)
    # Cao Bang's Viettel 4G (Na Sang) fails below 40 Mb/s: under 100 %, with its verdict.
    (na_sang,) = (link for link in DEMO_LINKS if link.village == "Na Sang")
    assert by_province[na_sang.province]["mean / line"] < 1
    assert by_province[na_sang.province]["verdict"] == 0


def test_areas_short_of_samples_say_by_how_many(seeded: Seeded) -> None:
    rows = table_rows("Areas short of samples", seeded)
    (plei_op,) = (link for link in DEMO_LINKS if link.village == "Plei Op")
    assert rows
    for row in rows:
        assert row["samples missing"] == row["n required"] - row["n"] > 0
        assert row["technology"] == plei_op.technology  # the only area short of samples
    assert {row["level"] for row in rows} == {"village", "commune", "province", "nation"}


def test_coverage_counts_the_communes_no_probe_measures(seeded: Seeded) -> None:
    rows = {
        row["province"]: row for row in table_rows("Communes without a probe, per province", seeded)
    }
    assert len(rows) == len(provinces())
    with_probes: dict[str, set[str]] = {link.province: set() for link in DEMO_LINKS}
    for link in DEMO_LINKS:
        with_probes[link.province].add(link.commune)
    for code, province in provinces().items():
        communes = len(province.communes)
        covered = len(with_probes.get(code, ()))
        assert rows[code]["communes"] == communes
        assert rows[code].get("without a probe", 0) == communes - covered
