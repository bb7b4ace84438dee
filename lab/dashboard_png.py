"""Render the committed dashboards to PNG with matplotlib, from the queries Grafana would run.

    .venv/bin/python -m lab.dashboard_png --store URL --out DIR [--hours 6] [--var NAME=VALUE]
        [--lang vi|en]

Grafana is not installable here, so this shows what the regulator, the technician and the
operator would see: one PNG per dashboard, its panels placed on Grafana's 24-column grid. Charts
are lines (a profile's target dashed red), stats and tables are text, the maps are drawn on the
shipped province boundaries (dashboards/geo/): villages as markers, provinces filled by verdict.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only: no display on servers and in CI

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import is_color_like
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon, Rectangle
from matplotlib.ticker import FuncFormatter

from contract import i18n
from contract.i18n import LANGUAGES, _
from dashboards.gazetteer import BOUNDARIES, GEO_DIR, outer_rings
from dashboards.promql import (
    ALL_VALUE,
    JSON_DIR,
    Json,
    Series,
    Store,
    Window,
    resolve_variables,
    run_target,
)

VIETNAM_OFFSET = timedelta(hours=7)
VIETNAM_TIME = timezone(VIETNAM_OFFSET, "ICT")
GRID_COLUMNS = 24
FIGURE_WIDTH_IN = 18.0
ROW_HEIGHT_IN = 0.36  # one Grafana grid unit (30 px) at this figure width
HEADER_IN = 0.75
# Grafana's named colours, as its default theme draws them.
NAMED_COLOURS = {
    "green": "#56A64B",
    "dark-green": "#37872D",
    "red": "#E02F44",
    "orange": "#FF9830",
    "yellow": "#F2CC0C",
    "blue": "#3274D9",
    "purple": "#A352CC",
    "grey": "#8E8E8E",
    "text": "#333333",
}
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0"]
LEGEND_LIMIT = 10
MBITS_PER_GBIT = 1000
# Minutes between time ticks, the first giving at most MAX_TIME_TICKS (a lab run spans minutes).
TICK_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 43200)
MAX_TIME_TICKS = 7
TIME_OF_DAY_UP_TO_H = 48  # longer ranges label days
# unit: (factor, suffix, default decimals)
SIMPLE_UNITS = {
    "ms": (1.0, " ms", 1),
    "s": (1.0, " s", 2),
    "percentunit": (100.0, " %", 1),
    "reqps": (1.0, " /s", 3),
}
# Vietnam's extent with a margin: without a basemap, fixed bounds keep places where they belong.
MAP_LON = (101.5, 110.5)
MAP_LAT = (8.0, 24.0)


def colour(name: str | None) -> str:
    if not name:
        return NAMED_COLOURS["grey"]
    if name in NAMED_COLOURS:
        return NAMED_COLOURS[name]
    return name if is_color_like(name) else NAMED_COLOURS["grey"]


def field_config(panel: Json, name: str = "", ref: str = "") -> dict[str, Any]:
    """The panel's field defaults with the overrides that match a field by name or query."""
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    config: dict[str, Any] = {key: value for key, value in defaults.items() if key != "custom"}
    config |= {f"custom.{key}": value for key, value in defaults.get("custom", {}).items()}
    for rule in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = rule.get("matcher", {})
        kind, option = matcher.get("id"), str(matcher.get("options", ""))
        matches = (
            (kind == "byName" and option == name)
            or (kind == "byFrameRefID" and option == ref)
            or (kind == "byRegexp" and re.fullmatch(option, name) is not None)
        )
        if matches:
            config |= {prop["id"]: prop.get("value") for prop in rule.get("properties", [])}
    return config


def mapped(value: float | str, config: Mapping[str, Any]) -> tuple[str, str] | None:
    """(text, colour) from a value mapping, as Grafana shows mapped values (numbers or text)."""
    key = value if isinstance(value, str) else f"{value:g}"
    for mapping in config.get("mappings") or []:
        result = mapping.get("options", {}).get(key) if mapping.get("type") == "value" else None
        if result:
            return str(result.get("text", key)), colour(result.get("color") or "text")
    return None


def threshold_colour(value: float, config: Mapping[str, Any]) -> str:
    chosen = "text"
    for step in config.get("thresholds", {}).get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            chosen = step.get("color", chosen)
    return colour(chosen)


def format_value(value: float, unit: str = "short", decimals: float | None = None) -> str:
    """A number as Grafana shows it in `unit` (the units these dashboards use)."""
    if math.isnan(value):
        return "NaN"
    shown, suffix, places = scaled(value, unit)
    return f"{shown:,.{places if decimals is None else int(decimals)}f}{suffix}"


def scaled(value: float, unit: str) -> tuple[float, str, int]:
    """The number to show, its suffix and its default decimals."""
    if unit == "Mbits":
        if value >= MBITS_PER_GBIT:
            return value / MBITS_PER_GBIT, " Gb/s", 2
        return value, " Mb/s", 1
    if unit in {"decbytes", "bytes"}:
        for prefix, factor in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= factor:
                return value / factor, f" {prefix}B", 1
        return value, " B", 0
    factor, suffix, places = SIMPLE_UNITS.get(unit, (1.0, "", 0 if value == round(value) else 2))
    return value * factor, suffix, places


def display_name(series: Series, target: Json, panel: Json) -> str:
    """The series' name from its legend, or the panel's display-name override for that name."""
    name = legend_name(series, target)
    return str(field_config(panel, name).get("displayName") or name)


def legend_name(series: Series, target: Json) -> str:
    legend = str(target.get("legendFormat") or "")
    if legend and legend != "__auto":
        text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: series.labels.get(m.group(1), ""), legend)
        return " ".join(text.split())
    labels = {key: value for key, value in series.labels.items() if key != "__name__"}
    if labels:
        return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return series.labels.get("__name__", "")


@dataclass(frozen=True)
class Result:
    target: Json
    series: list[Series]


@dataclass(frozen=True)
class DrawnPanel:
    """What one panel showed: how many series its queries returned (0: "No data")."""

    title: str
    kind: str
    series: int


@dataclass(frozen=True)
class RenderedDashboard:
    path: Path
    panels: tuple[DrawnPanel, ...]

    @property
    def empty_panels(self) -> list[str]:
        return [panel.title for panel in self.panels if panel.series == 0]


def query_panel(
    store: Store, panel: Json, values: Mapping[str, str], window: Window
) -> list[Result]:
    return [
        Result(target, run_target(store, target, values, window))
        for target in panel.get("targets", [])
    ]


# --- panel kinds -------------------------------------------------------------------------------


def no_data(ax: Axes) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, _("No data"), ha="center", va="center", color="#888888", fontsize=11)


def time_ticks(ax: Axes, window: Window) -> None:
    """Round minutes, hours or days in Vietnam time, about six of them across the range."""
    span_h = (window.end - window.start) / 3600
    every_s = 60 * next(
        (m for m in TICK_MINUTES if span_h * 60 / m <= MAX_TIME_TICKS), TICK_MINUTES[-1]
    )
    offset_s = VIETNAM_OFFSET.total_seconds()
    first = math.ceil((window.start + offset_s) / every_s) * every_s - offset_s
    ticks = [first + k * every_s for k in range(int((window.end - first) // every_s) + 1)]
    pattern = "%H:%M" if span_h <= TIME_OF_DAY_UP_TO_H else "%d %b"
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: datetime.fromtimestamp(x, VIETNAM_TIME).strftime(pattern))
    )
    ax.set_xlim(window.start, window.end)


def draw_timeseries(ax: Axes, panel: Json, results: list[Result], window: Window) -> None:
    defaults = field_config(panel)
    unit = str(defaults.get("unit", "short"))
    drawn: dict[str, dict[float, float]] = {}
    fills: list[tuple[str, str, str]] = []
    every = [(result.target, series) for result in results for series in result.series]
    for number, (target, series) in enumerate(every):
        name = display_name(series, target, panel)
        config = field_config(panel, name, str(target.get("refId", "")))
        fixed = (config.get("color") or {}).get("fixedColor")
        line_colour = colour(fixed) if fixed else PALETTE[number % len(PALETTE)]
        line_style = {"dash": "--", "dot": ":"}.get(
            str((config.get("custom.lineStyle") or {}).get("fill")), "-"
        )
        ax.plot(
            [t for t, _ in series.points],
            [value for _, value in series.points],
            color=line_colour,
            linestyle=line_style,
            linewidth=float(config.get("custom.lineWidth", 1)),
            marker="o" if config.get("custom.showPoints") == "always" else None,
            markersize=2.5,
            label=name if number < LEGEND_LIMIT else None,
        )
        drawn[name] = dict(series.points)
        if config.get("custom.fillBelowTo"):
            fills.append((name, str(config["custom.fillBelowTo"]), line_colour))
    if not drawn:
        no_data(ax)
        return
    for upper, lower, fill_colour in fills:
        if upper in drawn and lower in drawn:
            common = sorted(drawn[upper].keys() & drawn[lower].keys())
            ax.fill_between(
                common,
                [drawn[upper][t] for t in common],
                [drawn[lower][t] for t in common],
                color=fill_colour,
                alpha=0.2,
                linewidth=0,
            )
    if defaults.get("min") is not None:
        ax.set_ylim(bottom=float(defaults["min"]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
    time_ticks(ax, window)
    ax.tick_params(labelsize=7)
    ax.grid(visible=True, color="#e5e5e5", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=6.5, loc="upper left", frameon=False, ncol=1 + len(drawn) // 5)


def draw_stat(ax: Axes, panel: Json, results: list[Result], _window: Window) -> None:
    values: list[tuple[str, float, dict[str, Any]]] = []
    for result in results:
        for series in result.series:
            name = display_name(series, result.target, panel)
            values.append((name, series.last, field_config(panel, name, result.target["refId"])))
    ax.set_axis_off()
    if not values:
        no_data(ax)
        return
    for number, (name, value, config) in enumerate(values):
        shown = mapped(value, config)
        text, text_colour = shown or (
            format_value(value, str(config.get("unit", "short")), config.get("decimals")),
            threshold_colour(value, config),
        )
        x = (number + 0.5) / len(values)
        size = max(12, 23 - 3 * len(values))
        ax.text(x, 0.5, text, ha="center", va="center", fontsize=size, color=text_colour)
        if name and len(values) > 1:
            ax.text(x, 0.08, name, ha="center", va="bottom", fontsize=7.5, color="#555555")


def merged_rows(
    panel: Json, results: list[Result]
) -> tuple[list[str], list[dict[str, float | str]]]:
    """Grafana's merge + organize: one row per label set, value columns renamed."""
    rows: dict[tuple[tuple[str, str], ...], dict[str, float | str]] = {}
    label_names: set[str] = set()
    value_names: list[str] = []
    for result in results:
        column = f"Value #{result.target['refId']}"
        value_names.append(column)
        for series in result.series:
            labels = {k: v for k, v in series.labels.items() if k != "__name__"}
            label_names |= labels.keys()
            rows.setdefault(tuple(sorted(labels.items())), dict(labels))[column] = series.last
    organize: Json = {}
    for transformation in panel.get("transformations", []):
        if transformation.get("id") == "organize":
            organize = transformation.get("options", {})
    renames: dict[str, str] = organize.get("renameByName", {})
    hidden = {name for name, hide in organize.get("excludeByName", {}).items() if hide}
    order: dict[str, int] = organize.get("indexByName", {})
    columns = sorted(
        (name for name in [*sorted(label_names), *value_names] if name not in hidden),
        key=lambda name: order.get(name, len(order)),
    )
    renamed = [
        {renames.get(key, key): value for key, value in row.items() if key not in hidden}
        for row in rows.values()
    ]
    return [renames.get(name, name) for name in columns], renamed


def sorted_rows(panel: Json, rows: list[dict[str, float | str]]) -> list[dict[str, float | str]]:
    """Rows in the order of their labels, then by the panel's sort column as Grafana sorts them
    (rows without a value in it last either way)."""
    ordered = sorted(rows, key=lambda row: tuple(str(value) for value in row.values()))
    for sort in panel.get("options", {}).get("sortBy") or []:
        name = sort.get("displayName", "")
        present = [row for row in ordered if isinstance(row.get(name), float | int)]
        absent = [row for row in ordered if not isinstance(row.get(name), float | int)]
        present.sort(key=lambda row: float(row[name]), reverse=bool(sort.get("desc")))
        ordered = present + absent
    return ordered


def cell_text(panel: Json, column: str, value: float | str | None) -> tuple[str, str]:
    if value is None:
        return "", "#333333"
    config = field_config(panel, column)
    shown = mapped(value, config)
    if shown:
        return shown
    if isinstance(value, str):
        return value, "#333333"
    unit = str(config.get("unit", "short"))
    return format_value(value, unit, config.get("decimals")), "#333333"


def draw_table(ax: Axes, panel: Json, results: list[Result], _window: Window) -> None:
    columns, rows = merged_rows(panel, results)
    ax.set_axis_off()
    if not rows:
        no_data(ax)
        return
    # What the panel's height shows; Grafana scrolls for the rest.
    rows = sorted_rows(panel, rows)[: max(1, int(panel["gridPos"]["h"] * 1.3) - 3)]
    cells = [[cell_text(panel, column, row.get(column)) for column in columns] for row in rows]
    table = ax.table(
        cellText=[[text for text, _ in row] for row in cells],
        colLabels=[field_config(panel, column).get("displayName") or column for column in columns],
        loc="upper center",
        cellLoc="left",
        colLoc="left",
    )
    table.auto_set_font_size(value=False)
    table.set_fontsize(7.5)
    table.auto_set_column_width(list(range(len(columns))))
    table.scale(1, 1.25)
    for (row_number, _column), cell in table.get_celld().items():
        cell.set_edgecolor("#dddddd")
        if row_number == 0:
            cell.set_facecolor("#f0f0f0")
            cell.get_text().set_fontweight("bold")
    for row_number, row_cells in enumerate(cells, start=1):
        for column_number, (_text, text_colour) in enumerate(row_cells):
            table[row_number, column_number].get_text().set_color(text_colour)


def draw_bargauge(ax: Axes, panel: Json, results: list[Result], _window: Window) -> None:
    bars = [
        (display_name(series, result.target, panel), series.last)
        for result in results
        for series in result.series
    ]
    if not bars:
        no_data(ax)
        return
    config = field_config(panel)
    bars.sort()
    names = [name for name, _ in bars]
    values = [value for _, value in bars]
    low, high = float(config.get("min", 0)), float(config.get("max", max(values) or 1))
    positions = range(len(bars))
    ax.barh(positions, [high - low] * len(bars), left=low, color="#eeeeee", height=0.6)
    ax.barh(positions, values, color=[threshold_colour(v, config) for v in values], height=0.6)
    unit = str(config.get("unit", "short"))
    for position, value in zip(positions, values, strict=True):
        ax.text(high, position, f" {format_value(value, unit)}", va="center", fontsize=7.5)
    ax.set_yticks(list(positions), names, fontsize=7.5)
    ax.invert_yaxis()
    ax.set_xlim(low, high)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)


@cache
def province_shapes() -> dict[str, list[list[tuple[float, float]]]]:
    """Each province's outer rings from the shipped boundaries, by code."""
    boundaries = json.loads((GEO_DIR / BOUNDARIES).read_text(encoding="utf-8"))
    return {
        feature["properties"]["code"]: outer_rings(feature["geometry"])
        for feature in boundaries["features"]
    }


def draw_provinces(ax: Axes, fills: Mapping[str, str]) -> None:
    """The 34 provinces' boundaries; a province in `fills` filled with its colour."""
    for code, rings in province_shapes().items():
        for ring in rings:
            ax.add_patch(
                Polygon(
                    ring,
                    closed=True,
                    facecolor=fills.get(code, "#f2f2f2"),
                    edgecolor="#9a9a9a",
                    linewidth=0.4,
                    zorder=1,
                )
            )


LABEL_HEIGHT_PT = 9.0
LABEL_CHAR_PT = 4.6  # an average character at the labels' 7.5 pt


def label_offsets(
    points_px: Sequence[tuple[float, float]], names: Sequence[str], *, point_px: float
) -> list[tuple[float, float]]:
    """Where each marker's name goes (in points from its marker): right of it, moved down a line
    at a time while it would cover a name already placed, so close villages stay readable."""
    boxes: list[tuple[float, float, float, float]] = []
    offsets = []
    for (x_px, y_px), name in zip(points_px, names, strict=True):
        width = len(name) * LABEL_CHAR_PT * point_px
        height = LABEL_HEIGHT_PT * point_px
        offset_y = -3.0
        while True:
            left, bottom = x_px + 7 * point_px, y_px + offset_y * point_px
            box = (left, bottom, left + width, bottom + height)
            if not any(
                box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
                for other in boxes
            ):
                break
            offset_y -= LABEL_HEIGHT_PT
        boxes.append(box)
        offsets.append((7.0, offset_y))
    return offsets


def draw_geomap(ax: Axes, panel: Json, results: list[Result], _window: Window) -> None:
    """Markers at coordinates over the province boundaries, or (a lookup by province code) a
    choropleth: each province filled by its value, as the Grafana map marks it."""
    _columns, rows = merged_rows(panel, results)
    layer = (panel.get("options", {}).get("layers") or [{}])[0]
    location = layer.get("location", {})
    latitude, longitude = location.get("latitude", "lat"), location.get("longitude", "lon")
    style = layer.get("config", {}).get("style", {})
    colour_field = style.get("color", {}).get("field", "")
    text_field = style.get("text", {}).get("field", "")
    ax.set_xlim(*MAP_LON)
    ax.set_ylim(*MAP_LAT)
    ax.set_aspect("equal")
    ax.set_axis_off()
    config = field_config(panel, colour_field)
    legend: dict[str, str] = {}

    def verdict(row: Mapping[str, float | str]) -> str:
        value = row.get(colour_field)
        text, fill = _("no verdict"), NAMED_COLOURS["grey"]
        if isinstance(value, float | int):
            text, fill = mapped(float(value), config) or (
                f"{value:g}",
                threshold_colour(float(value), config),
            )
        legend.setdefault(text, fill)
        return fill

    lookup = location.get("lookup") if location.get("mode") == "lookup" else None
    if lookup:
        fills = {str(row[lookup]): verdict(row) for row in rows if lookup in row}
        draw_provinces(ax, fills)
    else:
        draw_provinces(ax, {})
        placed = [row for row in rows if isinstance(row.get(latitude), float | int)]
        points = [(float(row[longitude]), float(row[latitude])) for row in placed]
        names = [str(row.get(text_field, "")) for row in placed]
        on_screen = [tuple(ax.transData.transform(point)) for point in points]
        offsets = label_offsets(on_screen, names, point_px=ax.figure.dpi / 72)
        for row, (x, y), name, offset in zip(placed, points, names, offsets, strict=True):
            ax.scatter([x], [y], s=70, color=verdict(row), edgecolor="white", linewidth=0.8)
            ax.annotate(name, (x, y), xytext=offset, textcoords="offset points").set_fontsize(7.5)
    if not legend:
        ax.text(0.5, 0.5, _("No data"), ha="center", va="center", transform=ax.transAxes)
        return
    for text, fill in legend.items():
        ax.scatter([], [], color=fill, label=text, s=40)
    ax.legend(fontsize=7, loc="lower left", frameon=False)


def draw_state_timeline(ax: Axes, panel: Json, results: list[Result], window: Window) -> None:
    """One band per series, each stretch coloured by its mapped state, as Grafana draws it."""
    bands = [
        (display_name(series, result.target, panel), series)
        for result in results
        for series in result.series
    ]
    if not bands:
        no_data(ax)
        return
    config = field_config(panel)
    legend: dict[str, str] = {}
    for number, (_name, series) in enumerate(bands):
        for time_s, value in series.points:
            text, state_colour = mapped(value, config) or (
                f"{value:g}",
                threshold_colour(value, config),
            )
            legend.setdefault(text, state_colour)
            ax.barh(number, window.step, left=time_s, height=0.7, color=state_colour, linewidth=0)
    ax.set_yticks(range(len(bands)), [name for name, _ in bands], fontsize=7.5)
    ax.invert_yaxis()
    time_ticks(ax, window)
    ax.tick_params(labelsize=7)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.legend(
        handles=[Patch(color=fill, label=text) for text, fill in legend.items()],
        fontsize=6.5,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )


DRAWERS = {
    "state-timeline": draw_state_timeline,
    "timeseries": draw_timeseries,
    "stat": draw_stat,
    "table": draw_table,
    "bargauge": draw_bargauge,
    "geomap": draw_geomap,
}


# --- the page ----------------------------------------------------------------------------------


def panel_box(panel: Json, figure_height_in: float) -> tuple[float, float, float, float]:
    """Grafana's grid position as (left, bottom, width, height) in figure fractions."""
    grid = panel["gridPos"]
    left = grid["x"] * FIGURE_WIDTH_IN / GRID_COLUMNS
    top = HEADER_IN + grid["y"] * ROW_HEIGHT_IN
    width = grid["w"] * FIGURE_WIDTH_IN / GRID_COLUMNS
    height = grid["h"] * ROW_HEIGHT_IN
    return (
        left / FIGURE_WIDTH_IN,
        1 - (top + height) / figure_height_in,
        width / FIGURE_WIDTH_IN,
        height / figure_height_in,
    )


def inset(
    box: tuple[float, float, float, float], figure_height_in: float, kind: str
) -> tuple[float, float, float, float]:
    """Room inside a panel for its title and, on charts, the axis labels."""
    left, bottom, width, height = box
    pad_left, pad_bottom, pad_right, pad_top = {
        "timeseries": (0.75, 0.35, 0.15, 0.4),
        "geomap": (0.5, 0.4, 0.1, 0.4),
        "bargauge": (1.3, 0.1, 0.75, 0.4),
        "state-timeline": (2.2, 0.35, 1.3, 0.4),
    }.get(kind, (0.1, 0.1, 0.1, 0.4))
    return (
        left + pad_left / FIGURE_WIDTH_IN,
        bottom + pad_bottom / figure_height_in,
        max(0.01, width - (pad_left + pad_right) / FIGURE_WIDTH_IN),
        max(0.01, height - (pad_bottom + pad_top) / figure_height_in),
    )


def describe(values: Mapping[str, str]) -> str:
    every = _("All")
    shown = [f"{name}={every if value == ALL_VALUE else value}" for name, value in values.items()]
    return "  ".join(shown)


def render_dashboard(
    dashboard: Json, store: Store, window: Window, values: Mapping[str, str], out: Path
) -> RenderedDashboard:
    """One PNG of the whole dashboard, and what each of its panels showed."""
    placed = list(dashboard.get("panels", []))
    rows_high = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in placed)
    figure_height_in = HEADER_IN + rows_high * ROW_HEIGHT_IN + 0.1
    figure: Figure = plt.figure(figsize=(FIGURE_WIDTH_IN, figure_height_in), dpi=100)
    try:
        start = datetime.fromtimestamp(window.start, VIETNAM_TIME).strftime("%Y-%m-%d %H:%M")
        end = datetime.fromtimestamp(window.end, VIETNAM_TIME).strftime("%Y-%m-%d %H:%M %Z")
        figure.text(
            0.005, 1 - 0.3 / figure_height_in, dashboard["title"], fontsize=15, weight="bold"
        )
        figure.text(
            0.005,
            1 - 0.6 / figure_height_in,
            _("{start} to {end}").format(start=start, end=end) + f"    {describe(values)}",
            fontsize=8.5,
            color="#555555",
        )
        drawn = [
            draw_panel(
                figure,
                panel,
                store=store,
                window=window,
                values=values,
                figure_height_in=figure_height_in,
            )
            for panel in placed
        ]
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100, facecolor="white")
    finally:
        plt.close(figure)
    return RenderedDashboard(out, tuple(panel for panel in drawn if panel is not None))


def draw_panel(
    figure: Figure,
    panel: Json,
    *,
    store: Store,
    window: Window,
    values: Mapping[str, str],
    figure_height_in: float,
) -> DrawnPanel | None:
    """Draw one panel in its grid place; None for a row's title."""
    box = panel_box(panel, figure_height_in)
    left, bottom, width, height = box
    if panel.get("type") == "row":
        figure.text(left + 0.003, bottom + height / 2, panel["title"], fontsize=11, weight="bold")
        return None
    figure.add_artist(
        Rectangle(
            (left + 0.002, bottom + 0.002),
            width - 0.004,
            height - 0.004,
            transform=figure.transFigure,
            facecolor="#fbfbfb",
            edgecolor="#d8d8d8",
            linewidth=0.8,
            zorder=-1,  # behind the panel's axes
        )
    )
    figure.text(
        left + 0.006, bottom + height - 0.25 / figure_height_in, panel["title"], fontsize=9.5
    )
    kind = str(panel.get("type"))
    ax = figure.add_axes(inset(box, figure_height_in, kind))
    ax.set_facecolor("#fbfbfb")
    drawer = DRAWERS.get(kind)
    results = query_panel(store, panel, values, window)
    if drawer is None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"({kind} panel)", ha="center", va="center")
    else:
        drawer(ax, panel, results, window)
    return DrawnPanel(panel["title"], kind, sum(len(result.series) for result in results))


def render_all(
    store_url: str,
    out: Path,
    *,
    hours: float = 6.0,
    chosen: Mapping[str, str] | None = None,
    source: Path = JSON_DIR / "vi",
    now: float | None = None,
) -> list[RenderedDashboard]:
    store = Store(store_url)
    window = Window.last(hours, now=now)
    written = []
    for path in sorted(source.glob("*.json")):
        dashboard: Json = json.loads(path.read_text(encoding="utf-8"))
        values = resolve_variables(dashboard, store, window, chosen)
        written.append(render_dashboard(dashboard, store, window, values, out / f"{path.stem}.png"))
    return written


def parse_choice(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the dashboards to PNG without Grafana.")
    parser.add_argument("--store", required=True, help="VictoriaMetrics URL, e.g. http://host:8428")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--hours", type=float, default=6.0, help="time range ending now")
    parser.add_argument(
        "--var",
        type=parse_choice,
        action="append",
        default=[],
        help="a template variable's value, e.g. village='Na Sang' (.* for All); repeatable",
    )
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="the dashboards' language (default: the locale's, Vietnamese without one)",
    )
    args = parser.parse_args(argv)
    language = i18n.use(args.lang)
    written = render_all(
        args.store,
        args.out,
        hours=args.hours,
        chosen=dict(args.var),
        source=JSON_DIR / language,
    )
    for rendered in written:
        empty = rendered.empty_panels
        print(rendered.path, f"(no data: {', '.join(empty)})" if empty else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
