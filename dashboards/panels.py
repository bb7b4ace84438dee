"""What the dashboards share: queries, colours, value texts and the panel shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, TableSortByFieldState
from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    DashboardLink,
    FieldColor,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    GraphDrawStyle,
    VisibilityMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from contract.i18n import N_, _, current
from contract.places import Province, provinces
from dashboards.promql import ALL_VALUE, DATASOURCE_UID

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAG = "qosfleet"
# A verdict panel shows the last verdict within the time picker's range (an instant query runs
# at the range's end), so picking last week shows last week's verdicts.
VERDICT_RANGE = "$__range"
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
def verdict_text() -> list[model.ValueMapping]:
    return value_map(
        {
            "1": (_("pass"), "green"),
            "0": (_("fail"), "red"),
            "-1": (_("insufficient data"), "orange"),
        }
    )


VERDICT_COLOURS = thresholds((None, "orange"), (0, "red"), (1, "green"))


# qos_compliance_national_target_status: a programme indicator beside the regulation, so a line
# below it is "below target" in a warning colour, never a red "fail".
def national_target_text() -> list[model.ValueMapping]:
    return value_map(
        {
            "1": (_("met"), "green"),
            "0": (_("below target"), "orange"),
            "-1": (_("insufficient data"), "blue"),
        }
    )


NATIONAL_TARGET_COLOURS = thresholds((None, "blue"), (0, "orange"), (1, "green"))


# qos_compliance_formal: whether the verdict followed the QCVN method (sample mix, day spread).
def method_text() -> list[model.ValueMapping]:
    return value_map({"1": (_("QCVN method"), "green"), "0": (_("monitoring"), "blue")})


def early_warning_text() -> list[model.ValueMapping]:
    return value_map({"1": (_("early warning"), "orange"), "0": (_("none"), "green")})


def online_text() -> list[model.ValueMapping]:
    return value_map({"1": (_("online"), "green"), "0": (_("offline"), "red")})


def name(province: Province) -> str:
    """A province as the reader's language writes it: "Hà Nội", or "Hanoi" in English."""
    return province.name_vi if current() == "vi" else province.name_en


def province_names() -> list[model.ValueMapping]:
    """Province code -> its name, from the shipped list: tables show "Hà Nội", not "01"."""
    return [
        model.ValueMap(
            options={
                code: model.ValueMappingResult(text=name(province), index=index)
                for index, (code, province) in enumerate(provinces().items())
            }
        )
    ]


PanelWithOverrides = TypeVar("PanelWithOverrides", timeseries.Panel, statetimeline.Panel)


def named_provinces(panel: PanelWithOverrides) -> PanelWithOverrides:
    """A series whose legend is its province code is shown by the province's name."""
    for code, province in provinces().items():
        panel = panel.override_by_name(*override(code, displayName=name(province)))
    return panel


def province_variable(label: str) -> CustomVariable:
    """The 34 provinces by name (value: the code the series carry), with All."""
    return (
        CustomVariable("province")
        .label(label)
        .values(",".join(f"{name(province)} : {code}" for code, province in provinces().items()))
        .include_all(include_all=True)
        .all_value(ALL_VALUE)
        .current(model.VariableOption(selected=True, text=_("All"), value="$__all"))
    )


def override(name: str, **properties: object) -> tuple[str, list[model.DynamicConfigValue]]:
    return name, [model.DynamicConfigValue(id_val=key, value=v) for key, v in properties.items()]


# Label columns first, from the widest area to the narrowest, then the link.
LABEL_ORDER = (
    *("level", "probe", "province", "commune", "commune_name", "village"),
    *("interface", "access", "technology", "operator", "setting", "plan", "profile"),
)
# A label column's header in the reader's language. The column keeps the label's name, so data
# links (`${__data.fields.province}`) and the name-matched overrides still find it.
LABEL_HEADERS = {
    "level": N_("level"),
    "probe": N_("probe"),
    "province": N_("province"),
    "commune": N_("commune"),
    "commune_name": N_("commune name"),
    "village": N_("village"),
    "interface": N_("interface"),
    "access": N_("access"),
    "technology": N_("technology"),
    "operator": N_("operator"),
    "setting": N_("setting"),
    "plan": N_("plan"),
    "profile": N_("profile"),
}


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


def verdict_timeline(
    title: str,
    targets: Sequence[Dataquery],
    *,
    description: str,
    width: int = 24,
    height: int = 7,
) -> statetimeline.Panel:
    """The regulation's verdict over the picked range: one band per series, coloured by verdict."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(
            description
            + " "
            + _("Green: pass, red: fail, orange: insufficient data; blank: no verdict.")
        )
        .datasource(DATASOURCE)
        .targets(list(targets))
        .mappings(verdict_text())
        .thresholds(VERDICT_COLOURS)
        .color_scheme(FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .show_value(VisibilityMode.NEVER)
        .span(width)
        .height(height)
    )


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
    links: dict[str, list[dict[str, str]]] | None = None,
    sort_by: str | None = None,
    hide: Sequence[str] = ("Time",),
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(as_tables(targets))
        .span(width)
        .height(height)
        .transformations(merge_and_rename(renames, hide))
    )
    for label, header in LABEL_HEADERS.items():
        shown = {"mappings": province_names()} if label == "province" else {}
        panel = panel.override_by_name(*override(label, displayName=_(header), **shown))
    for column, mappings in (mapped_columns or {}).items():
        panel = panel.override_by_name(
            *override(column, mappings=mappings, **{"custom.cellOptions": {"type": "color-text"}})
        )
    for column, unit in (units or {}).items():
        panel = panel.override_by_name(*override(column, unit=unit))
    for column, column_links in (links or {}).items():
        panel = panel.override_by_name(*override(column, links=column_links))
    if sort_by is not None:
        panel = panel.sort_by([TableSortByFieldState().display_name(sort_by).desc(desc=True)])
    return panel


AREA_VARIABLES = ("province", "commune", "village", "technology", "operator")


def area_link(level: str) -> dict[str, str]:
    """A data link from a table row to its area's drill-down, with the same time range.

    The row's own labels choose the area; the narrower ones it lacks are All, as the area
    dashboard asks for a verdict of that level.
    """
    depth = {"province": 1, "commune": 2, "village": 3}[level]
    chosen = [
        f"var-{name}=${{__data.fields.{name}}}"
        if index < depth or name in {"technology", "operator"}
        else f"var-{name}=$__all"
        for index, name in enumerate(AREA_VARIABLES)
    ]
    path = f"/d/{dashboard_uid('area')}/"
    return {
        "title": _("Area drill-down"),
        "url": f"{path}?var-level={level}&{'&'.join(chosen)}&${{__url_time_range}}",
    }


def probe_link(field: str = "${__data.fields.probe}") -> dict[str, str]:
    """A data link to the probe dashboard of a row's (or a series') probe."""
    return {
        "title": _("Probe"),
        "url": f"/d/{dashboard_uid('probe')}/?var-probe={field}&${{__url_time_range}}",
    }


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
        .current(model.VariableOption(selected=True, text=_("All"), value="$__all"))
    )


def dashboard_uid(name: str) -> str:
    """Vietnamese dashboards keep the plain uids; the English ones are beside them, `-en`."""
    return f"{TAG}-{name}" if current() == "vi" else f"{TAG}-{name}-{current()}"


def base(name: str, title: str, description: str, time_from: str) -> Dashboard:
    """A dashboard of the language in use, titled "QoS fleet / <title>"."""
    return (
        Dashboard(f"QoS fleet / {title}")
        .uid(dashboard_uid(name))
        .description(description)
        .tags([TAG, f"{TAG}-{current()}"])
        .time(time_from, "now")
        .timezone("browser")
        .refresh("1m")
        .readonly()
        .link(
            DashboardLink("QoS fleet")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([f"{TAG}-{current()}"])
            .as_dropdown(as_dropdown=True)
            .include_vars(include_vars=False)
            .keep_time(keep_time=True)
        )
    )


def fleet_state(series: str) -> str:
    return f"last_over_time({series}[{FLEET_FRESH}])"


def worst_verdict(status: str, by: str = "") -> str:
    """The worst of several verdicts: any fail (0), else any insufficient data (-1), else pass."""
    grouping = f" by ({by})" if by else ""
    return f"(max{grouping} ({status} == 0)) or (min{grouping} ({status}))"
