"""The national overview: the regulator's first screen."""

from __future__ import annotations

from grafana_foundation_sdk.builders import geomap, statetimeline, table
from grafana_foundation_sdk.builders.common import (
    FrameGeometrySource,
    MapLayerOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    FieldColor,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode
from grafana_foundation_sdk.models.geomap import TooltipMode

from contract.i18n import _
from dashboards.gazetteer import BOUNDARIES, GAZETTEER, GEO_URL
from dashboards.panels import (
    COORDINATES_WINDOW,
    DATASOURCE,
    VERDICT_COLOURS,
    VERDICT_RANGE,
    area_link,
    area_variable,
    as_tables,
    base,
    fleet_state,
    merge_and_rename,
    method_text,
    named_provinces,
    national_target_text,
    override,
    province_names,
    province_variable,
    query,
    stat_panel,
    table_panel,
    thresholds,
    verdict_text,
    verdict_timeline,
    worst_verdict,
)


def village_status(selector: str) -> str:
    fresh = f"last_over_time(qos_compliance_status{{{selector}}}[{VERDICT_RANGE}])"
    return worst_verdict(fresh, "province, commune, village")


def dashboard() -> Dashboard:
    village = 'level="village", technology=~"$technology", operator=~"$operator"'
    province = 'level="province", technology=~"$technology", operator=~"$operator"'
    by_area = "max by (province, technology, operator, profile)"
    by_village = "max by (province, commune, village, technology, operator, profile)"

    def count(condition: str, field: str = "status") -> str:
        fresh = f"last_over_time(qos_compliance_{field}{{{village}}}[{VERDICT_RANGE}])"
        return f"count({fresh} {condition}) or vector(0)"

    def verdict_table_queries(by: str, selector: str) -> list[Dataquery]:
        fields = [
            "status",
            "formal",
            "n",
            "n_required",
            "mean_download_mbps",
            "ci_low_mbps",
            "ci_high_mbps",
            "target_download_mbps",
            "national_target_status",
        ]
        return [
            query(
                f"{by} (last_over_time(qos_compliance_{field}{{{selector}}}[{VERDICT_RANGE}]))",
                chr(ord("A") + index),
                instant=True,
            )
            for index, field in enumerate(fields)
        ]

    verdict_columns = {
        "Value #A": _("verdict"),
        "Value #B": _("method"),
        "Value #C": _("n"),
        "Value #D": _("n required"),
        "Value #E": _("mean Mb/s"),
        "Value #F": _("CI low"),
        "Value #G": _("CI high"),
        "Value #H": _("target Mb/s"),
        "Value #I": _("national target"),
    }
    speed_columns = dict.fromkeys(
        [_("mean Mb/s"), _("CI low"), _("CI high"), _("target Mb/s")], "Mbits"
    )
    province_links = {"province": [area_link("province")]}
    village_links = {"village": [area_link("village")]}
    verdict_mappings = {
        _("verdict"): verdict_text(),
        _("method"): method_text(),
        _("national target"): national_target_text(),
    }
    table_help = _(
        "Verdict: the regulation (QCVN; fixed lines: QCVN 34 plan conformity, the target is"
        " 0.8 x the plan). National target: the fixed 1 Gb/s programme indicator, apart from the"
        " verdict. Mean of per-sample download rates with its 95 % CI. Method: 'QCVN method'"
        " when the sample mix and the spread over the day are met."
    )

    dashboard = base(
        "overview",
        _("National overview"),
        _("Verdicts per area x technology x operator against the QCVN profiles (rolling window)."),
        "now-30d",
    )
    dashboard = (
        dashboard.with_variable(
            area_variable("technology", _("Technology"), 'qos_compliance_status{level="village"}')
        )
        .with_variable(
            area_variable(
                "operator",
                _("Operator"),
                'qos_compliance_status{level="village", technology=~"$technology"}',
            )
        )
        .with_variable(province_variable(_("Province (operator ranking)")))
    )
    verdict_help = _(
        "Village x technology x operator verdicts of the regulation (QCVN; fixed lines: QCVN 34"
        " plan conformity), the last judged in the picked time range. A verdict is pass/fail only"
        " with n >= the regulation's minimum; otherwise insufficient data."
    )
    return (
        dashboard.with_panel(
            stat_panel(
                _("Village verdicts: pass"),
                [query(count("== 1"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Village verdicts: fail"),
                [query(count("== 0"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green"), (1, "red")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Village verdicts: insufficient data"),
                [query(count("== -1"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Early warnings"),
                [query(count("== 1", "early_warning"), instant=True)],
                description=(
                    _(
                        "The regulation's verdict has insufficient data, but the whole 95 % CI of a"
                        " criterion already lies on its failing side."
                    )
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Below the national 1 Gb/s target"),
                [query(count("== 0", "national_target_status"), instant=True)],
                description=(
                    _(
                        "Fixed-line villages whose mean download is below the national programme's"
                        " target. A programme indicator, not a QCVN verdict: a line that conforms"
                        " to its plan (QCVN 34) passes the regulation whatever its speed."
                    )
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                width=4,
            )
        )
        .with_row(Row(_("Provinces")))
        .with_panel(province_map(province))
        .with_panel(
            table_panel(
                _("Provinces: verdict per technology x operator"),
                verdict_table_queries(by_area, province),
                verdict_columns,
                description=table_help,
                width=14,
                height=14,
                mapped_columns=verdict_mappings,
                units=speed_columns,
                links=province_links,
            )
        )
        .with_panel(province_history(province))
        .with_row(Row(_("Operators")))
        .with_panel(operator_ranking())
        .with_row(Row(_("Coverage")))
        .with_panel(coverage_per_province())
        .with_panel(communes_without_a_probe())
        .with_panel(short_of_samples())
        .with_row(Row(_("Villages")))
        .with_panel(village_map(village))
        .with_panel(
            table_panel(
                _("Villages: verdict per technology x operator"),
                verdict_table_queries(by_village, village),
                verdict_columns,
                description=table_help,
                width=14,
                height=14,
                mapped_columns=verdict_mappings,
                units=speed_columns,
                links=village_links,
            )
        )
    )


def latest(field: str, selector: str) -> str:
    """A verdict series' last value within the picked range."""
    return f"last_over_time(qos_compliance_{field}{{{selector}}}[{VERDICT_RANGE}])"


def operator_ranking() -> table.Panel:
    """Operators of each province ranked by how far their mean download is above its line."""
    selector = (
        'level="province", province=~"$province", technology=~"$technology", operator=~"$operator"'
    )
    by = "max by (province, technology, operator)"
    return table_panel(
        _("Operator ranking: mean download / the regulation's line"),
        [
            query(
                f"{by} ({latest('mean_download_mbps', selector)}"
                f" / {latest('target_download_mbps', selector)})",
                "A",
                instant=True,
            ),
            query(f"{by} ({latest('mean_download_mbps', selector)})", "B", instant=True),
            query(f"{by} ({latest('n', selector)})", "C", instant=True),
            query(f"{by} ({latest('status', selector)})", "D", instant=True),
        ],
        {
            "Value #A": _("mean / line"),
            "Value #B": _("mean Mb/s"),
            "Value #C": _("n"),
            "Value #D": _("verdict"),
        },
        description=(
            _(
                "Each province's operators x technology, best first: the mean of per-sample"
                " download rates divided by the regulation's line (the profile's mean target; fixed"
                " lines: 0.8 x the plan). Above 100 % the mean clears the line; the verdict also"
                " needs n >= the regulation's minimum and the profile's other criteria."
            )
        ),
        width=24,
        height=9,
        mapped_columns={_("verdict"): verdict_text()},
        units={_("mean / line"): "percentunit", _("mean Mb/s"): "Mbits"},
        links={"province": [area_link("province")]},
        sort_by=_("mean / line"),
    )


def coverage_per_province() -> table.Panel:
    """How many of each province's communes no probe measures (the collector's coverage)."""
    enrolled = fleet_state("qos_coverage_probes_enrolled")
    return table_panel(
        _("Communes without a probe, per province"),
        [
            query(f"count by (province) ({enrolled} == 0)", "A", instant=True),
            query(f"count by (province) ({enrolled})", "B", instant=True),
            query(f"sum by (province) ({enrolled})", "C", instant=True),
        ],
        {"Value #A": _("without a probe"), "Value #B": _("communes"), "Value #C": _("probes")},
        description=(
            _(
                "Communes of the 2025 list (contract/places) with no enrolled, unrevoked probe, as"
                " the collector's registry knows them. A commune without a"
                " probe has no verdict at all."
            )
        ),
        width=10,
        height=10,
        sort_by=_("without a probe"),
    )


def communes_without_a_probe() -> table.Panel:
    enrolled = fleet_state('qos_coverage_probes_enrolled{province=~"$province"}')
    return table_panel(
        _("Communes without a probe"),
        [query(f"{enrolled} == 0", "A", instant=True)],
        {"Value #A": _("probes")},
        hide=("Time", "__name__"),
        description=_("Pick a province above to list its communes that no probe measures."),
        width=14,
        height=10,
    )


def short_of_samples() -> table.Panel:
    """Areas whose verdict waits for samples, and how many more the regulation asks for."""
    selector = 'technology=~"$technology", operator=~"$operator"'
    by = "max by (level, province, commune, village, technology, operator)"
    missing = f"({by} ({latest('n_required', selector)} - {latest('n', selector)}) > 0)"
    return table_panel(
        _("Areas short of samples"),
        [
            query(missing, "A", instant=True),
            query(f"{by} ({latest('n', selector)}) and {missing}", "B", instant=True),
            query(f"{by} ({latest('n_required', selector)}) and {missing}", "C", instant=True),
        ],
        {"Value #A": _("samples missing"), "Value #B": _("n"), "Value #C": _("n required")},
        description=(
            _(
                "Every area (village, commune, province, nation) x technology x operator with fewer"
                " counted samples than its profile's minimum, most missing first: its verdict is"
                " insufficient data until they are taken."
            )
        ),
        width=24,
        height=9,
        links={"village": [area_link("village")]},
        sort_by=_("samples missing"),
    )


def province_boundaries() -> MapLayerOptions:
    """The maps' base layer: the shipped province boundaries, served by Grafana itself, instead
    of a tile server on the internet."""
    return (
        MapLayerOptions()
        .type("geojson")
        .name("Provinces")
        .config(
            {
                "src": f"{GEO_URL}/{BOUNDARIES}",
                "rules": [],
                "style": {"color": {"fixed": "#eeeeee"}, "opacity": 0.8, "lineWidth": 1},
            }
        )
    )


def province_history(province: str) -> statetimeline.Panel:
    return named_provinces(
        verdict_timeline(
            _("Provinces: verdict over time (worst across technology x operator)"),
            [
                query(
                    worst_verdict(f"qos_compliance_status{{{province}}}", "province"),
                    "A",
                    "{{province}}",
                )
            ],
            description=(
                _(
                    "Each province's worst regulation verdict as the engine judged it at each"
                    " moment of the picked range."
                )
            ),
        )
    )


def province_map(province: str) -> geomap.Panel:
    """The 34 provinces, each marked by its worst verdict, over their shipped boundaries.

    Grafana colours GeoJSON features only by static rules, not by query data, so the boundaries
    are the base layer (served by Grafana itself from the mounted dashboards/geo/) and a marker
    per province, placed by the gazetteer generated from the same file, carries the verdict.
    """
    markers = _verdict_markers("province", size=12, font=10, offset=10)
    return (
        geomap.Panel()
        .title(_("Provinces by verdict (worst across technology x operator)"))
        .description(
            _(
                "The regulation's verdict of each province (QCVN; fixed lines: QCVN 34 plan"
                " conformity). Red: fails. Orange: insufficient data. Green: passes. Grey boundary"
                " without a marker: no verdict in the picked range."
            )
        )
        .datasource(DATASOURCE)
        .targets(
            as_tables(
                [
                    query(
                        worst_verdict(latest("status", province), "province"),
                        "A",
                        instant=True,
                    )
                ]
            )
        )
        .transformations(merge_and_rename({"Value #A": _("status")}))
        .span(10)
        .height(14)
        .mappings(verdict_text())
        .thresholds(VERDICT_COLOURS)
        .color_scheme(FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .override_by_name(*override("province", mappings=province_names()))
        .view(geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(5))
        .basemap(province_boundaries())
        .layers(
            [
                MapLayerOptions()
                .type("markers")
                .name("Verdicts")
                .config(markers)
                .location(
                    FrameGeometrySource()
                    .mode(FrameGeometrySourceMode.LOOKUP)
                    .lookup("province")
                    .gazetteer(f"{GEO_URL}/{GAZETTEER}")
                )
                .tooltip(tooltip=True)
            ]
        )
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
    )


def village_map(village: str) -> geomap.Panel:
    """Villages coloured by verdict: coordinates and verdict are joined per village by Grafana.

    A Prometheus datasource cannot return a value as a label, so three instant table queries
    (lat, lon, status; one row per village each) are merged and their value columns renamed.
    """
    by = "max by (province, commune, village)"
    markers = _verdict_markers("village", size=9, font=11, offset=12)
    return (
        geomap.Panel()
        .title(_("Villages by verdict (worst across technology x operator)"))
        .description(
            _(
                "The regulation's verdict (QCVN; fixed lines: QCVN 34 plan conformity). Red: fails."
                " Orange: insufficient data. Green: passes. The national 1 Gb/s target is apart, in"
                " the tables."
            )
        )
        .datasource(DATASOURCE)
        .targets(
            as_tables(
                [
                    query(
                        f"{by} (last_over_time(qos_lat[{COORDINATES_WINDOW}]))", "A", instant=True
                    ),
                    query(
                        f"{by} (last_over_time(qos_lon[{COORDINATES_WINDOW}]))", "B", instant=True
                    ),
                    query(village_status(village), "C", instant=True),
                ]
            )
        )
        .transformations(
            merge_and_rename({"Value #A": "lat", "Value #B": "lon", "Value #C": _("status")})
        )
        .span(10)
        .height(14)
        .mappings(verdict_text())
        .override_by_name(*override("province", mappings=province_names()))
        .thresholds(VERDICT_COLOURS)
        .color_scheme(FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .view(geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(5))
        .basemap(province_boundaries())
        .layers(
            [
                MapLayerOptions()
                .type("markers")
                .name("Villages")
                .config(markers)
                .location(
                    FrameGeometrySource()
                    .mode(FrameGeometrySourceMode.COORDS)
                    .latitude("lat")
                    .longitude("lon")
                )
                .tooltip(tooltip=True)
            ]
        )
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
    )


def _verdict_markers(label: str, *, size: int, font: int, offset: int) -> dict[str, object]:
    """A geomap markers layer: one circle per row coloured by its verdict, labelled by `label`."""
    return {
        "showLegend": True,
        "style": {
            "color": {"field": _("status"), "fixed": "grey"},
            "opacity": 0.9,
            "size": {"fixed": size, "max": 15, "min": 4},
            "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
            "text": {"field": label, "fixed": "", "mode": "field"},
            "textConfig": {"fontSize": font, "offsetX": offset, "offsetY": 0, "textAlign": "left"},
        },
    }
