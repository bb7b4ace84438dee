"""The national overview: the regulator's first screen."""

from __future__ import annotations

from grafana_foundation_sdk.builders import geomap
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

from dashboards.panels import (
    COORDINATES_WINDOW,
    DATASOURCE,
    METHOD_TEXT,
    NATIONAL_TARGET_TEXT,
    VERDICT_COLOURS,
    VERDICT_RANGE,
    VERDICT_TEXT,
    area_variable,
    as_tables,
    base,
    merge_and_rename,
    query,
    stat_panel,
    table_panel,
    thresholds,
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
        "Value #A": "verdict",
        "Value #B": "method",
        "Value #C": "n",
        "Value #D": "n required",
        "Value #E": "mean Mb/s",
        "Value #F": "CI low",
        "Value #G": "CI high",
        "Value #H": "target Mb/s",
        "Value #I": "national target",
    }
    speed_columns = dict.fromkeys(["mean Mb/s", "CI low", "CI high", "target Mb/s"], "Mbits")
    verdict_mappings = {
        "verdict": VERDICT_TEXT,
        "method": METHOD_TEXT,
        "national target": NATIONAL_TARGET_TEXT,
    }
    table_help = (
        "Verdict: the regulation (QCVN; fixed lines: QCVN 34 plan conformity, the target is"
        " 0.8 x the plan). National target: the fixed 1 Gb/s programme indicator, apart from the"
        " verdict. Mean of per-sample download rates with its 95 % confidence interval. Method:"
        " 'QCVN method' when the sample mix and the spread over the day are met."
    )

    dashboard = base(
        "qosfleet-overview",
        "QoS fleet / National overview",
        "Verdicts per area x technology x operator against the QCVN profiles (rolling window).",
        "now-30d",
    )
    dashboard = dashboard.with_variable(
        area_variable("technology", "Technology", 'qos_compliance_status{level="village"}')
    ).with_variable(
        area_variable(
            "operator",
            "Operator",
            'qos_compliance_status{level="village", technology=~"$technology"}',
        )
    )
    verdict_help = (
        "Village x technology x operator verdicts of the regulation (QCVN; fixed lines: QCVN 34"
        " plan conformity) evaluated in the last 10 minutes. A verdict is pass/fail only with"
        " n >= the regulation's minimum; otherwise insufficient data."
    )
    return (
        dashboard.with_panel(
            stat_panel(
                "Village verdicts: pass",
                [query(count("== 1"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Village verdicts: fail",
                [query(count("== 0"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green"), (1, "red")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Village verdicts: insufficient data",
                [query(count("== -1"), instant=True)],
                description=verdict_help,
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Early warnings",
                [query(count("== 1", "early_warning"), instant=True)],
                description=(
                    "The regulation's verdict has insufficient data, but the whole 95 % CI of a"
                    " criterion already lies on its failing side."
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Below the national 1 Gb/s target",
                [query(count("== 0", "national_target_status"), instant=True)],
                description=(
                    "Fixed-line villages whose mean download is below the national programme's"
                    " target. A programme indicator, not a QCVN verdict: a line that conforms to"
                    " its plan (QCVN 34) passes the regulation whatever its speed."
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                width=4,
            )
        )
        .with_panel(village_map(village))
        .with_panel(
            table_panel(
                "Provinces: verdict per technology x operator",
                verdict_table_queries(by_area, province),
                verdict_columns,
                description=table_help,
                width=14,
                height=14,
                mapped_columns=verdict_mappings,
                units=speed_columns,
            )
        )
        .with_row(Row("Villages"))
        .with_panel(
            table_panel(
                "Villages: verdict per technology x operator",
                verdict_table_queries(by_village, village),
                verdict_columns,
                description=table_help,
                width=24,
                mapped_columns=verdict_mappings,
                units=speed_columns,
            )
        )
    )


def village_map(village: str) -> geomap.Panel:
    """Villages coloured by verdict: coordinates and verdict are joined per village by Grafana.

    A Prometheus datasource cannot return a value as a label, so three instant table queries
    (lat, lon, status; one row per village each) are merged and their value columns renamed.
    """
    by = "max by (province, commune, village)"
    markers = {
        "showLegend": True,
        "style": {
            "color": {"field": "status", "fixed": "grey"},
            "opacity": 0.9,
            "size": {"fixed": 9, "max": 15, "min": 4},
            "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
            "text": {"field": "village", "fixed": "", "mode": "field"},
            "textConfig": {"fontSize": 11, "offsetX": 12, "offsetY": 0, "textAlign": "left"},
        },
    }
    return (
        geomap.Panel()
        .title("Villages by verdict (worst across technology x operator)")
        .description(
            "The regulation's verdict (QCVN; fixed lines: QCVN 34 plan conformity). Red: fails."
            " Orange: insufficient data. Green: passes. The national 1 Gb/s target is apart, in"
            " the tables."
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
            merge_and_rename({"Value #A": "lat", "Value #B": "lon", "Value #C": "status"})
        )
        .span(10)
        .height(14)
        .mappings(VERDICT_TEXT)
        .thresholds(VERDICT_COLOURS)
        .color_scheme(FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .view(geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(5))
        .basemap(MapLayerOptions().type("default").name("Basemap"))
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
