"""Generate the Grafana dashboards and provisioning files (the JSON is committed).

    .venv/bin/python -m dashboards.generate [--out DIR]

Writes `json/*.json` and `provisioning/...` under DIR (default: this folder). Every query reads
only the series listed in SERIES.md. Built with grafana-foundation-sdk (types for Grafana 11.6).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    FrameGeometrySource,
    MapLayerOptions,
    ReduceDataOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    DashboardLink,
    FieldColor,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    FrameGeometrySourceMode,
    GraphDrawStyle,
    VisibilityMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.geomap import TooltipMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from contract.sampling import CLASS_CODES
from dashboards.promql import ALL_VALUE, DATASOURCE_UID

HERE = Path(__file__).resolve().parent
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAG = "qosfleet"
VERDICT_FRESH = "10m"  # verdicts are refreshed every minute; older ones mean the engine stopped
COORDINATES_WINDOW = "30d"  # the default verdict window: a village on the map has recent results
FLEET_FRESH = "10m"  # the collector rewrites fleet state periodically; older means it stopped


def query(
    expr: str, ref: str = "A", legend: str | None = None, *, instant: bool = False
) -> Dataquery:
    """A PromQL target: a range query for charts, or an instant one for stats and tables."""
    target = Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend is not None:
        target = target.legend_format(legend)
    return target.instant() if instant else target


def as_tables(targets: Sequence[Dataquery]) -> list[Builder[variants.Dataquery]]:
    """Table format: several instant queries then merge into one row per label set."""
    return [target.format(PromQueryFormat.TABLE) for target in targets]


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def value_map(texts: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(texts.items())
            }
        )
    ]


# qos_compliance_status (the regulation): 1 pass, 0 fail, -1 insufficient data (SERIES.md).
VERDICT_TEXT = value_map(
    {"1": ("pass", "green"), "0": ("fail", "red"), "-1": ("insufficient data", "orange")}
)
VERDICT_COLOURS = thresholds((None, "orange"), (0, "red"), (1, "green"))
# qos_compliance_national_target_status: a programme indicator beside the regulation, so a line
# below it is "below target" in a warning colour, never a red "fail".
NATIONAL_TARGET_TEXT = value_map(
    {"1": ("met", "green"), "0": ("below target", "orange"), "-1": ("insufficient data", "blue")}
)
NATIONAL_TARGET_COLOURS = thresholds((None, "blue"), (0, "orange"), (1, "green"))
# qos_compliance_formal: whether the verdict followed the QCVN method (sample mix, day spread).
METHOD_TEXT = value_map({"1": ("QCVN method", "green"), "0": ("monitoring", "blue")})
EARLY_WARNING_TEXT = value_map({"1": ("early warning", "orange"), "0": ("none", "green")})
YES_NO = value_map({"1": ("yes", "green"), "0": ("no", "red")})
ONLINE = value_map({"1": ("online", "green"), "0": ("offline", "red")})


def override(name: str, **properties: object) -> tuple[str, list[model.DynamicConfigValue]]:
    return name, [model.DynamicConfigValue(id_val=key, value=v) for key, v in properties.items()]


# Label columns first, from the widest area to the narrowest, then the link.
LABEL_ORDER = (
    *("probe", "province", "commune", "village"),
    *("interface", "access", "technology", "operator", "setting", "plan", "profile"),
)


def merge_and_rename(
    renames: dict[str, str], hide: Sequence[str] = ("Time",)
) -> list[model.DataTransformerConfig]:
    """Grafana transformations: one row per label set across table queries, readable columns."""
    order = [*LABEL_ORDER, *renames]
    return [
        model.DataTransformerConfig(id_val="merge", options={}),
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "renameByName": renames,
                "excludeByName": dict.fromkeys(hide, True),
                "indexByName": {name: index for index, name in enumerate(order)},
            },
        ),
    ]


def stat_panel(
    title: str,
    targets: Sequence[Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    colours: ThresholdsConfig | None = None,
    mappings: list[model.ValueMapping] | None = None,
    width: int = 6,
    height: int = 4,
    decimals: float | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .color_mode(BigValueColorMode.VALUE)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.VALUE_AND_NAME if len(targets) > 1 else BigValueTextMode.AUTO)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(values=False))
        .thresholds(colours or thresholds((None, "blue")))
    )
    if mappings:
        panel = panel.mappings(mappings)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def time_panel(
    title: str,
    targets: Sequence[Dataquery],
    *,
    unit: str,
    description: str = "",
    width: int = 12,
    height: int = 8,
    from_zero: bool = True,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .draw_style(GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(0)
        .show_points(VisibilityMode.NEVER)
    )
    return panel.min(0) if from_zero else panel


def dashed_line(panel: timeseries.Panel, ref: str, colour: str) -> timeseries.Panel:
    return panel.override_by_query(
        ref,
        [
            model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour}),
            model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash"}),
            model.DynamicConfigValue(id_val="custom.lineWidth", value=2),
            model.DynamicConfigValue(id_val="custom.showPoints", value="never"),
        ],
    )


def target_line(panel: timeseries.Panel, ref: str) -> timeseries.Panel:
    """The regulation's line dashed red, so a chart reads against the rule."""
    return dashed_line(panel, ref, "red")


def programme_line(panel: timeseries.Panel, ref: str) -> timeseries.Panel:
    """The national programme's target dashed purple: a goal beside the rule, not the rule."""
    return dashed_line(panel, ref, "purple")


def table_panel(
    title: str,
    targets: Sequence[Dataquery],
    renames: dict[str, str],
    *,
    description: str = "",
    width: int = 12,
    height: int = 10,
    mapped_columns: dict[str, list[model.ValueMapping]] | None = None,
    units: dict[str, str] | None = None,
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(as_tables(targets))
        .span(width)
        .height(height)
        .transformations(merge_and_rename(renames))
    )
    for column, mappings in (mapped_columns or {}).items():
        panel = panel.override_by_name(
            *override(column, mappings=mappings, **{"custom.cellOptions": {"type": "color-text"}})
        )
    for column, unit in (units or {}).items():
        panel = panel.override_by_name(*override(column, unit=unit))
    return panel


def area_variable(name: str, label: str, selector: str) -> QueryVariable:
    """A label_values variable with "All" that also matches series lacking the label."""
    return (
        QueryVariable(name)
        .label(label)
        .query(f"label_values({selector}, {name})")
        .datasource(DATASOURCE)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .include_all(include_all=True)
        .all_value(ALL_VALUE)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def base(uid: str, title: str, description: str, time_from: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time(time_from, "now")
        .timezone("browser")
        .refresh("1m")
        .readonly()
        .link(
            DashboardLink("QoS fleet")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(as_dropdown=True)
            .include_vars(include_vars=False)
            .keep_time(keep_time=True)
        )
    )


# ---------------------------------------------------------------------------------------------
# National overview: the regulator's first screen.


def fleet_state(series: str) -> str:
    return f"last_over_time({series}[{FLEET_FRESH}])"


def worst_verdict(status: str, by: str = "") -> str:
    """The worst of several verdicts: any fail (0), else any insufficient data (-1), else pass."""
    grouping = f" by ({by})" if by else ""
    return f"(max{grouping} ({status} == 0)) or (min{grouping} ({status}))"


def village_status(selector: str) -> str:
    fresh = f"last_over_time(qos_compliance_status{{{selector}}}[{VERDICT_FRESH}])"
    return worst_verdict(fresh, "province, commune, village")


def overview() -> Dashboard:
    village = 'level="village", technology=~"$technology", operator=~"$operator"'
    province = 'level="province", technology=~"$technology", operator=~"$operator"'
    by_area = "max by (province, technology, operator, profile)"
    by_village = "max by (province, commune, village, technology, operator, profile)"

    def count(condition: str, field: str = "status") -> str:
        fresh = f"last_over_time(qos_compliance_{field}{{{village}}}[{VERDICT_FRESH}])"
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
                f"{by} (last_over_time(qos_compliance_{field}{{{selector}}}[{VERDICT_FRESH}]))",
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


# ---------------------------------------------------------------------------------------------
# Area drill-down: one area's samples, its verdict and the rule it is judged by.

AREA = (
    'province=~"$province", commune=~"$commune", village=~"$village",'
    ' technology=~"$technology", operator=~"$operator"'
)
VERDICT = f'level="$level", {AREA}'


def drill_down() -> Dashboard:
    dashboard = base(
        "qosfleet-area",
        "QoS fleet / Area drill-down",
        "One area's per-sample results, the method's sample rules and its verdict: the"
        " regulation, and for fixed lines the national 1 Gb/s target apart.",
        "now-7d",
    ).with_variable(
        CustomVariable("level")
        .label("Verdict level")
        .description(
            "Which verdict the panels show; leave the narrower area variables at All"
            " (e.g. province level: commune and village All)."
        )
        .values("village,commune,province,nation")
        .current(model.VariableOption(selected=True, text="village", value="village"))
    )
    chain: list[str] = []
    for name, label in (
        ("province", "Province"),
        ("commune", "Commune"),
        ("village", "Village"),
        ("technology", "Technology"),
        ("operator", "Operator"),
    ):
        selector = "qos_download_mbps{" + ", ".join(chain) + "}" if chain else "qos_download_mbps"
        dashboard = dashboard.with_variable(area_variable(name, label, selector))
        chain.append(f'{name}=~"${name}"')

    def fresh(field: str) -> str:
        return f"last_over_time(qos_compliance_{field}{{{VERDICT}}}[{VERDICT_FRESH}])"

    def stats(fields: Sequence[tuple[str, str]], aggregate: str = "max") -> list[Dataquery]:
        """One instant query per (field, name), refs A, B, ... in order."""
        return [
            query(f"{aggregate}({fresh(field)})", chr(ord("A") + index), name, instant=True)
            for index, (field, name) in enumerate(fields)
        ]

    def with_interval(field: str, name: str, low: str, high: str) -> list[Dataquery]:
        return stats([(field, name), (low, "CI low"), (high, "CI high")])

    legend = "{{village}} {{technology}} {{operator}}"
    speed = time_panel(
        "Download per sample vs target",
        [
            query(f"qos_download_mbps{{{AREA}}}", "A", "{{village}} {{probe}} {{interface}}"),
            query(
                f"max by (profile) (qos_compliance_target_download_mbps{{{VERDICT}}})",
                "B",
                "target {{profile}}",
            ),
            query(
                f"max by (profile) (qos_compliance_national_target_download_mbps{{{VERDICT}}})",
                "C",
                "national target {{profile}}",
            ),
        ],
        unit="Mbits",
        description=(
            "Per-sample rates: bytes / transfer time of each result, not a mean. Dashed red: the"
            " regulation's line (fixed lines: 0.8 x the plan, QCVN 34); dashed purple: the"
            " national 1 Gb/s programme target (fixed lines)."
        ),
        width=24,
    )
    mean = time_panel(
        "Mean download with 95 % CI",
        [
            query(f"qos_compliance_mean_download_mbps{{{VERDICT}}}", "A", "mean"),
            query(f"qos_compliance_ci_low_mbps{{{VERDICT}}}", "B", "CI low"),
            query(f"qos_compliance_ci_high_mbps{{{VERDICT}}}", "C", "CI high"),
            query(
                f"max by (profile) (qos_compliance_target_download_mbps{{{VERDICT}}})",
                "D",
                "target {{profile}}",
            ),
            query(
                f"max by (profile) (qos_compliance_national_target_download_mbps{{{VERDICT}}})",
                "E",
                "national target {{profile}}",
            ),
        ],
        unit="Mbits",
        description=(
            "The verdict's statistic over its rolling window. The band is meaningful for one"
            " area x technology x operator at a time: pick them above."
        ),
        from_zero=False,
    )
    mean = programme_line(target_line(mean, "D"), "E").override_by_name(
        *override("CI high", **{"custom.fillBelowTo": "CI low", "custom.fillOpacity": 20})
    )
    # Fixed lines only: plan_status and the national target exist for them alone.
    fixed_mean = f"max({fresh('mean_download_mbps')} and {fresh('national_target_status')})"
    return (
        dashboard.with_panel(
            stat_panel(
                "Regulation verdict",
                [query(worst_verdict(fresh("status")), instant=True)],
                description=(
                    "Worst verdict of the regulation among the selected areas: QCVN 81 / 126"
                    " with the 4G plan target for mobile links, QCVN 34 plan conformity for fixed"
                    " lines. The national 1 Gb/s target is apart (below), never a fail here."
                ),
                colours=VERDICT_COLOURS,
                mappings=VERDICT_TEXT,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Early warning",
                [query(f"max({fresh('early_warning')})", instant=True)],
                description=(
                    "Insufficient data for the regulation's verdict, but the whole 95 % CI of a"
                    " criterion already lies on its failing side: provisional, not a verdict."
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                mappings=EARLY_WARNING_TEXT,
                width=3,
            )
        )
        .with_panel(
            stat_panel(
                "Method",
                [query(f"min({fresh('formal')})", instant=True)],
                description=(
                    "QCVN method: the sample mix the profile asks for (counted samples per"
                    " setting) and the spread over the hours of the day are met. Otherwise"
                    " monitoring per the QCVN method."
                ),
                colours=thresholds((None, "blue"), (1, "green")),
                mappings=METHOD_TEXT,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Samples in the verdict",
                [
                    query(f"sum({fresh('n')})", "A", "n", instant=True),
                    query(f"sum({fresh('n_required')})", "B", "required", instant=True),
                ],
                description="Counted samples in the download mean and the regulation's minimum.",
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Mean download and 95 % CI",
                stats(
                    [
                        ("mean_download_mbps", "mean"),
                        ("ci_low_mbps", "CI low"),
                        ("ci_high_mbps", "CI high"),
                        ("target_download_mbps", "target"),
                    ]
                ),
                unit="Mbits",
                description="Target: the regulation's line (fixed lines: 0.8 x the plan).",
                width=8,
                decimals=1,
            )
        )
        .with_row(Row("The method's sample rules"))
        .with_panel(
            stat_panel(
                "Attempts, and samples not in the mean",
                stats(
                    [
                        ("n_attempts", "attempts"),
                        ("n_failed", "failed"),
                        ("n_probe_limited", "probe-limited"),
                        ("n_implausible", "implausible"),
                        ("n_too_close", "too close"),
                    ],
                    "sum",
                ),
                description=(
                    "Over the verdict's window. Failed attempts count as access failures;"
                    " probe-limited ones (the probe was the bottleneck) and implausible ones"
                    " (above the technology's physical ceiling) are kept as evidence but"
                    " excluded; a sample closer than the profile's minimum gap to its device's"
                    " previous counted one is not counted."
                ),
                width=10,
            )
        )
        .with_panel(
            stat_panel(
                "Sample mix (counted samples per setting)",
                stats(
                    [
                        ("n_indoor", "indoor"),
                        ("n_outdoor_fixed", "outdoor fixed"),
                        ("n_outdoor_moving", "outdoor moving"),
                    ],
                    "sum",
                ),
                description="QCVN 81 / 126 ask for a share of each setting (profiles.toml).",
                width=7,
            )
        )
        .with_panel(
            stat_panel(
                "Spread over the day (counted samples, Vietnam time)",
                stats(
                    [
                        ("n_day_part_0", "00-06"),
                        ("n_day_part_1", "06-12"),
                        ("n_day_part_2", "12-18"),
                        ("n_day_part_3", "18-24"),
                    ],
                    "sum",
                ),
                description=(
                    "QCVN 34 asks for samples spread over the hours of the day: each six-hour"
                    " part must hold at least the profile's share."
                ),
                width=7,
            )
        )
        .with_panel(
            stat_panel(
                "Access failure rate and 95 % CI",
                with_interval(
                    "access_failure_rate", "rate", "access_failure_ci_low", "access_failure_ci_high"
                ),
                unit="percentunit",
                colours=thresholds((None, "green"), (0.05, "red")),
                description="Failed attempts / attempts; QCVN 81 and 126 allow at most 5 %.",
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                "Share at the minimum rate and 95 % CI",
                with_interval("share_at_or_above_min", "share", "share_ci_low", "share_ci_high"),
                unit="percentunit",
                description=(
                    "Share of counted samples at or above the profile's minimum rate (QCVN 126:"
                    " 95 % of samples >= 30 Mb/s)."
                ),
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                "Mean upload and 95 % CI",
                with_interval(
                    "mean_upload_mbps", "mean", "upload_ci_low_mbps", "upload_ci_high_mbps"
                ),
                unit="Mbits",
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                "Mean latency and 95 % CI",
                with_interval("mean_latency_ms", "mean", "latency_ci_low_ms", "latency_ci_high_ms"),
                unit="ms",
                description="Mean of the idle latency medians (QCVN 126 judges it).",
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                "IPv6 works",
                [query(f"avg(avg_over_time(qos_ipv6_works{{{AREA}}}[$__range]))", instant=True)],
                unit="percentunit",
                colours=thresholds((None, "red"), (0.5, "orange"), (0.95, "green")),
                description="Share of IPv6 checks in the range that classified the link 'works'.",
                width=4,
                decimals=0,
            )
        )
        .with_row(Row("Fixed lines: QCVN 34 (the regulation) and the 1 Gb/s national target"))
        .with_panel(
            stat_panel(
                "QCVN 34 plan conformity",
                [query(worst_verdict(fresh("plan_status")), instant=True)],
                description=(
                    "The regulation for fixed lines: mean download and upload at least 0.8 x the"
                    " subscribed plan. Judged where the area has one plan."
                ),
                colours=VERDICT_COLOURS,
                mappings=VERDICT_TEXT,
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "QCVN 34 lines (0.8 x plan)",
                [
                    query(
                        f"max({fresh('target_download_mbps')} and {fresh('plan_status')})",
                        "A",
                        "download",
                        instant=True,
                    ),
                    query(f"max({fresh('target_upload_mbps')})", "B", "upload", instant=True),
                ],
                unit="Mbits",
                width=6,
                decimals=0,
            )
        )
        .with_panel(
            stat_panel(
                "National 1 Gb/s target",
                [query(worst_verdict(fresh("national_target_status")), instant=True)],
                description=(
                    "A national programme indicator, apart from the regulation: a line that"
                    " conforms to its plan passes QCVN 34 even below 1 Gb/s."
                ),
                colours=NATIONAL_TARGET_COLOURS,
                mappings=NATIONAL_TARGET_TEXT,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "National target: early warning",
                [query(f"max({fresh('national_target_early_warning')})", instant=True)],
                description=(
                    "Too few samples for the national target, but the whole 95 % CI of the mean"
                    " already lies below it."
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                mappings=EARLY_WARNING_TEXT,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Mean download vs national target",
                [
                    query(fixed_mean, "A", "mean", instant=True),
                    query(
                        f"max({fresh('national_target_download_mbps')})",
                        "B",
                        "target",
                        instant=True,
                    ),
                ],
                unit="Mbits",
                width=5,
                decimals=0,
            )
        )
        .with_row(Row("Speed"))
        .with_panel(programme_line(target_line(speed, "B"), "C"))
        .with_panel(mean)
        .with_panel(
            time_panel(
                "Samples in the verdict",
                [
                    query(f"qos_compliance_n{{{VERDICT}}}", "A", f"n {legend}"),
                    query(f"qos_compliance_n_required{{{VERDICT}}}", "B", f"required {legend}"),
                ],
                unit="short",
            )
        )
        .with_row(Row("Latency and upload"))
        .with_panel(
            time_panel(
                "Latency, idle and under load (median)",
                [
                    query(
                        f"qos_latency_idle_median_ms{{{AREA}}}",
                        "A",
                        "idle {{village}} {{probe}} {{interface}}",
                    ),
                    query(
                        f"qos_latency_loaded_median_ms{{{AREA}}}",
                        "B",
                        "loaded {{village}} {{probe}} {{interface}}",
                    ),
                ],
                unit="ms",
            )
        )
        .with_panel(
            time_panel(
                "Upload per sample",
                [query(f"qos_upload_mbps{{{AREA}}}", "A", "{{village}} {{probe}} {{interface}}")],
                unit="Mbits",
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# Technician / probe view: is this probe healthy and what did it measure last?

PROBE = 'probe="$probe"'


def probe_view() -> Dashboard:
    by_link = "interface, access, technology, operator, setting, plan"
    links = f"max by ({by_link})"

    def classes(code: int) -> str:
        return (
            f"sum by ({by_link}) "
            f"(count_eq_over_time(qos_sample_class{{{PROBE}}}[$__range], {code}))"
        )

    dashboard = base(
        "qosfleet-probe",
        "QoS fleet / Probe",
        "One probe: its links, last results, clock, errors and data spent.",
        "now-24h",
    ).with_variable(
        QueryVariable("probe")
        .label("Probe")
        .query("label_values(qos_seq, probe)")
        .datasource(DATASOURCE)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    return (
        dashboard.with_panel(
            stat_panel(
                "Status",
                [query(f"max({fleet_state(f'qos_probe_online{{{PROBE}}}')})", instant=True)],
                description="From the probe's retained birth message / last will.",
                colours=thresholds((None, "red"), (1, "green")),
                mappings=ONLINE,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Clock synced",
                [
                    query(
                        f"min(last_over_time(qos_clock_synced{{{PROBE}}}[$__range]))",
                        instant=True,
                    )
                ],
                description="As the last result reported it; unsynced clocks skew time series.",
                colours=thresholds((None, "red"), (1, "green")),
                mappings=YES_NO,
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Errors and failed attempts",
                [
                    query(
                        f"sum(sum_over_time(qos_errors{{{PROBE}}}[$__range]))",
                        "A",
                        "errors",
                        instant=True,
                    ),
                    query(
                        f"sum(sum_over_time(qos_attempt_failed{{{PROBE}}}[$__range]))",
                        "B",
                        "failed attempts",
                        instant=True,
                    ),
                ],
                description="Errors carried by results, and tests that could not run.",
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                "Data used in range",
                [
                    query(
                        f"sum by (interface) (sum_over_time(qos_bytes_used{{{PROBE}}}[$__range]))",
                        "A",
                        "{{interface}}",
                        instant=True,
                    )
                ],
                unit="decbytes",
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            bargauge.Panel()
            .title("Budget left")
            .description("Share of the monthly byte budget left, per link.")
            .datasource(DATASOURCE)
            .with_target(
                query(
                    fleet_state(f"qos_probe_budget_remaining_ratio{{{PROBE}}}"),
                    "A",
                    "{{interface}}",
                    instant=True,
                )
            )
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(thresholds((None, "red"), (0.1, "orange"), (0.25, "green")))
            .orientation(VizOrientation.HORIZONTAL)
            .span(6)
            .height(4)
        )
        .with_panel(
            table_panel(
                "Links",
                [
                    query(
                        f"sum by ({by_link}) (count_over_time(qos_seq{{{PROBE}}}[$__range]))",
                        "A",
                        instant=True,
                    ),
                    query(
                        f"{links} (last_over_time(qos_download_mbps{{{PROBE}}}[$__range]))",
                        "B",
                        instant=True,
                    ),
                    query(
                        f"{links} (last_over_time(qos_upload_mbps{{{PROBE}}}[$__range]))",
                        "C",
                        instant=True,
                    ),
                    query(
                        f"{links} (last_over_time("
                        f"qos_latency_idle_median_ms{{{PROBE}}}[$__range]))",
                        "D",
                        instant=True,
                    ),
                    query(
                        f"sum by ({by_link}) (sum_over_time("
                        f"qos_probe_limited{{{PROBE}}}[$__range]))",
                        "E",
                        instant=True,
                    ),
                ],
                {
                    "Value #A": "results",
                    "Value #B": "last download",
                    "Value #C": "last upload",
                    "Value #D": "last idle latency",
                    "Value #E": "probe-limited",
                },
                description="Each link the probe measured in the range, with its last results.",
                width=24,
                height=6,
                units={
                    "last download": "Mbits",
                    "last upload": "Mbits",
                    "last idle latency": "ms",
                },
            )
        )
        .with_panel(
            table_panel(
                "Samples by the method's rules",
                [
                    query(classes(code), chr(ord("A") + code - 1), instant=True)
                    for code in sorted(CLASS_CODES.values())
                ],
                {
                    f"Value #{chr(ord('A') + code - 1)}": name.replace("_", " ")
                    for name, code in CLASS_CODES.items()
                },
                description=(
                    "Each speed attempt in the range by its class (contract/sampling.py):"
                    " counted in the verdict, failed (an access failure), probe-limited,"
                    " implausible (above the technology's ceiling), or too close to the previous"
                    " counted sample of the link."
                ),
                width=24,
                height=5,
            )
        )
        .with_panel(
            time_panel(
                "Download and upload per sample",
                [
                    query(f"qos_download_mbps{{{PROBE}}}", "A", "down {{interface}} {{target}}"),
                    query(f"qos_upload_mbps{{{PROBE}}}", "B", "up {{interface}} {{target}}"),
                    query(
                        f"max by (interface) (qos_plan_download_mbps{{{PROBE}}})",
                        "C",
                        "plan down {{interface}}",
                    ),
                ],
                unit="Mbits",
            )
        )
        .with_panel(
            time_panel(
                "Latency (median)",
                [
                    query(f"qos_latency_idle_median_ms{{{PROBE}}}", "A", "idle {{interface}}"),
                    query(f"qos_latency_loaded_median_ms{{{PROBE}}}", "B", "loaded {{interface}}"),
                ],
                unit="ms",
            )
        )
        .with_panel(
            time_panel(
                "Errors per hour",
                [
                    query(
                        f"sum by (interface) (sum_over_time(qos_errors{{{PROBE}}}[1h]))",
                        "A",
                        "errors {{interface}}",
                    )
                ],
                unit="short",
            )
        )
        .with_panel(
            time_panel(
                "Data used per hour",
                [
                    query(
                        f"sum by (interface) (sum_over_time(qos_bytes_used{{{PROBE}}}[1h]))",
                        "A",
                        "{{interface}}",
                    )
                ],
                unit="decbytes",
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# Fleet health: is the pipeline from probes to store working?


def fleet() -> Dashboard:
    share = (
        "sum(sum_over_time(qos_probe_limited[$__range]))"
        " / sum(count_over_time(qos_probe_limited[$__range]))"
    )
    lag = "sum by (le) (rate(qos_collector_ingest_lag_seconds_bucket[$__rate_interval]))"
    dashboard = base(
        "qosfleet-fleet",
        "QoS fleet / Fleet health",
        "Probes, collectors and the store: is every result arriving?",
        "now-6h",
    )
    return (
        dashboard.with_panel(
            stat_panel(
                "Probes online",
                [query(f"sum({fleet_state('qos_probe_online')})", instant=True)],
                colours=thresholds((None, "green")),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Probes offline",
                [
                    query(
                        f"count({fleet_state('qos_probe_online')} == 0) or vector(0)", instant=True
                    )
                ],
                colours=thresholds((None, "green"), (1, "red")),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Collectors connected to the broker",
                [query("sum(qos_collector_broker_connected)", instant=True)],
                colours=thresholds((None, "red"), (1, "green")),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                "Store write errors in range",
                [
                    query(
                        "sum(increase(qos_collector_store_write_errors_total[$__range]))",
                        instant=True,
                    )
                ],
                colours=thresholds((None, "green"), (1, "red")),
                width=4,
                decimals=0,
            )
        )
        .with_panel(
            stat_panel(
                "Probe-limited share",
                [query(share, instant=True)],
                unit="percentunit",
                description="Results where the probe, not the link, was the bottleneck.",
                colours=thresholds((None, "green"), (0.05, "orange"), (0.2, "red")),
                width=4,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                "Lowest budget left",
                [query(f"min({fleet_state('qos_probe_budget_remaining_ratio')})", instant=True)],
                unit="percentunit",
                colours=thresholds((None, "red"), (0.1, "orange"), (0.25, "green")),
                width=4,
                decimals=0,
            )
        )
        .with_panel(
            time_panel(
                "Results accepted and rejected",
                [
                    query(
                        "sum(rate(qos_collector_results_accepted_total[$__rate_interval]))",
                        "A",
                        "accepted",
                    ),
                    query(
                        "sum by (reason) "
                        "(rate(qos_collector_results_rejected_total[$__rate_interval]))",
                        "B",
                        "rejected: {{reason}}",
                    ),
                ],
                unit="reqps",
                description="Per second, summed over collectors.",
            )
        )
        .with_panel(
            time_panel(
                "Ingest lag (measurement end to durable write)",
                [
                    query(f"histogram_quantile(0.5, {lag})", "A", "p50"),
                    query(f"histogram_quantile(0.95, {lag})", "B", "p95"),
                    query(f"histogram_quantile(0.99, {lag})", "C", "p99"),
                ],
                unit="s",
            )
        )
        .with_panel(
            time_panel(
                "Probe-limited share by technology",
                [
                    query(
                        "sum by (technology) (sum_over_time(qos_probe_limited[1h]))"
                        " / sum by (technology) (count_over_time(qos_probe_limited[1h]))",
                        "A",
                        "{{technology}}",
                    )
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            time_panel(
                "Results stored per hour",
                [
                    query(
                        "sum by (technology) (count_over_time(qos_seq[1h]))",
                        "A",
                        "{{technology}}",
                    )
                ],
                unit="short",
            )
        )
        .with_panel(
            bargauge.Panel()
            .title("Budget left per probe and link")
            .datasource(DATASOURCE)
            .with_target(
                query(
                    fleet_state("qos_probe_budget_remaining_ratio"),
                    "A",
                    "{{probe}} {{interface}}",
                    instant=True,
                )
            )
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(thresholds((None, "red"), (0.1, "orange"), (0.25, "green")))
            .orientation(VizOrientation.HORIZONTAL)
            .span(12)
            .height(8)
        )
        .with_panel(
            table_panel(
                "Probes",
                [
                    query(
                        "max by (probe, province, commune, village)"
                        f" ({fleet_state('qos_probe_online')})",
                        "A",
                        instant=True,
                    ),
                    query(
                        "max by (probe, province, commune, village)"
                        " (last_over_time(qos_seq[$__range]))",
                        "B",
                        instant=True,
                    ),
                ],
                {"Value #A": "status", "Value #B": "last seq"},
                height=8,
            ).override_by_name(
                *override(
                    "status", mappings=ONLINE, **{"custom.cellOptions": {"type": "color-text"}}
                )
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "overview": overview,
    "area": drill_down,
    "probe": probe_view,
    "fleet": fleet,
}


def render_json(builder: Dashboard) -> str:
    """Stable text: sorted keys, numbered panels, a final newline (the committed form)."""
    built = builder.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    return JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(built) + "\n"


DATASOURCE_YAML = f"""\
# Grafana datasource provisioning: VictoriaMetrics speaks the Prometheus query API.
# Generated by dashboards/generate.py; the dashboards refer to this uid.
apiVersion: 1
datasources:
  - name: VictoriaMetrics
    uid: {DATASOURCE_UID}
    type: prometheus
    access: proxy
    url: http://victoria-metrics:8428
    isDefault: true
    editable: false
    jsonData:
      httpMethod: POST
      # The collector's scrape interval: Grafana derives $__rate_interval from it.
      timeInterval: 15s
"""

DASHBOARDS_YAML = """\
# Grafana dashboard provisioning: load the generated JSON (mount dashboards/json at this path).
# Generated by dashboards/generate.py.
apiVersion: 1
providers:
  - name: qosfleet
    orgId: 1
    folder: QoS fleet
    type: file
    disableDeletion: true
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/qosfleet
      foldersFromFilesStructure: false
"""


def generated_files() -> dict[str, str]:
    """Relative path -> content of everything this module writes."""
    files = {f"json/{name}.json": render_json(build()) for name, build in DASHBOARDS.items()}
    files["provisioning/datasources/victoriametrics.yaml"] = DATASOURCE_YAML
    files["provisioning/dashboards/qosfleet.yaml"] = DASHBOARDS_YAML
    return files


def write(out: Path) -> list[Path]:
    written = []
    for relative, content in generated_files().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate the Grafana dashboards and provisioning."
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
