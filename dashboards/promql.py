"""The committed dashboards' queries, run against a Prometheus-compatible store without Grafana.

Grafana is not installable here, so tests and the PNG renderer read the dashboard JSON and do what
Grafana's Prometheus datasource would: resolve template variables with `label_values`, substitute
them and the interval macros (`$__range`, `$__interval`, `$__rate_interval`), and query the
store's HTTP API.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.errors import QosfleetError, ServiceError

DATASOURCE_UID = "victoriametrics"
JSON_DIR = Path(__file__).parent / "json"  # one folder per language: vi/, en/

Json = dict[str, Any]

# `$name` or `${name}`; Grafana's built-in macros start with `__`.
VARIABLE_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<match>.+),\s*)?(?P<label>\w+)\)$")
# Grafana escapes these in a value of an include-all or multi-value variable, which only `=~` uses.
REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")
# Grafana's default when a variable with "All" has no custom all-value would be a list of every
# value; every dashboard here sets this one so that "All" also matches series without the label.
ALL_VALUE = ".*"


class DashboardError(QosfleetError):
    """A dashboard whose queries or variables cannot be resolved."""


def load_dashboards(directory: Path = JSON_DIR / "vi") -> list[Json]:
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    ]


def panels(dashboard: Json) -> list[Json]:
    """The panels that show data: rows are flattened (a collapsed row holds its own panels)."""
    found: list[Json] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def variables(dashboard: Json) -> list[Json]:
    return list(dashboard.get("templating", {}).get("list", []))


def referenced_names(text: str) -> set[str]:
    return {match.group(1) or match.group(2) for match in VARIABLE_REFERENCE.finditer(text)}


@dataclass(frozen=True)
class Window:
    """The dashboard's time range as Grafana would query it."""

    start: float
    end: float
    step: float
    scrape_interval_s: float = 15.0  # the datasource's `timeInterval` in provisioning

    @classmethod
    def last(cls, hours: float, *, now: float | None = None, points: int = 240) -> Window:
        end = time.time() if now is None else now
        span = hours * 3600
        return cls(start=end - span, end=end, step=max(15.0, round(span / points)))

    def macros(self) -> dict[str, str]:
        # Grafana: $__rate_interval = max($__interval + scrape interval, 4 x scrape interval).
        rate_interval = max(self.step + self.scrape_interval_s, 4 * self.scrape_interval_s)
        return {
            "__range": f"{round(self.end - self.start)}s",
            "__interval": f"{round(self.step)}s",
            "__rate_interval": f"{round(rate_interval)}s",
        }


def substitute(expr: str, values: Mapping[str, str], window: Window) -> str:
    """`expr` with every variable and macro replaced; `values` are already in query form."""
    known = {**window.macros(), **values}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in known:
            raise DashboardError(f"query uses ${name}, which no variable defines: {expr}")
        return known[name]

    return VARIABLE_REFERENCE.sub(replace, expr)


def query_form(variable: Json, value: str) -> str:
    """A chosen value as Grafana puts it into PromQL."""
    if value == ALL_VALUE and variable.get("includeAll"):
        return str(variable.get("allValue") or ALL_VALUE)
    if variable.get("includeAll") or variable.get("multi"):
        return REGEX_SPECIAL.sub(r"\\\\\1", value)
    return value


def variable_query(variable: Json) -> str:
    query = variable.get("query", "")
    return str(query.get("query", "") if isinstance(query, dict) else query)


def custom_options(variable: Json) -> list[str]:
    """A custom variable's values; an option written `text : value` shows text, selects value."""
    options = (option.strip() for option in variable_query(variable).split(","))
    return [option.rpartition(" : ")[2].strip() for option in options if option]


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value); one point for an instant query

    @property
    def last(self) -> float:
        return self.points[-1][1]


class Store:
    """The Prometheus query API of VictoriaMetrics (or Prometheus) at `url`."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise ServiceError(f"store URL {url!r} is not http(s)", "pass e.g. http://host:8428")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: Mapping[str, str | list[str]]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) checked above
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            # A rejected query comes back as 4xx with the store's explanation in the body.
            raise DashboardError(
                f"store refused {params}: {exc.read().decode(errors='replace')}"
            ) from exc
        except OSError as exc:
            raise ServiceError(
                f"store at {self.url} did not answer: {exc}", "check that VictoriaMetrics runs"
            ) from exc
        if answer.get("status") != "success":
            raise DashboardError(f"store answered {answer} to {params}")
        return answer["data"]

    def instant(self, expr: str, at: float) -> list[Series]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [Series({}, [(float(data["result"][0]), float(data["result"][1]))])]
        return [
            Series(item["metric"], [(float(item["value"][0]), float(item["value"][1]))])
            for item in data["result"]
        ]

    def range(self, expr: str, window: Window) -> list[Series]:
        params = {
            "query": expr,
            "start": f"{window.start:.3f}",
            "end": f"{window.end:.3f}",
            "step": f"{window.step:g}s",
        }
        data = self._get("/api/v1/query_range", params)
        return [
            Series(item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def label_values(self, label: str, match: str | None, window: Window) -> list[str]:
        params: dict[str, str | list[str]] = {
            "start": f"{window.start:.0f}",
            "end": f"{window.end:.0f}",
        }
        if match:
            params["match[]"] = [match]
        return sorted(str(value) for value in self._get(f"/api/v1/label/{label}/values", params))


def run_target(
    store: Store, target: Json, values: Mapping[str, str], window: Window
) -> list[Series]:
    """One panel target as Grafana would run it: instant at the window's end, or over the range."""
    expr = substitute(str(target["expr"]), values, window)
    if target.get("instant") and not target.get("range"):
        return store.instant(expr, window.end)
    return store.range(expr, window)


def options(variable: Json, store: Store, window: Window, resolved: Mapping[str, str]) -> list[str]:
    """The values a variable offers, its query seeing the variables resolved before it."""
    if variable.get("type") == "custom":
        return custom_options(variable)
    name = variable.get("name")
    if variable.get("type") != "query":
        raise DashboardError(f"variable {name}: type {variable.get('type')} is not handled")
    found = LABEL_VALUES.match(variable_query(variable).strip())
    if found is None:
        raise DashboardError(f"variable {name}: not a label_values() query")
    match = found.group("match")
    selector = substitute(match, resolved, window) if match else None
    return store.label_values(found.group("label"), selector, window)


def resolve_variables(
    dashboard: Json,
    store: Store,
    window: Window,
    chosen: Mapping[str, str] | None = None,
    *,
    saved_defaults: bool = True,
) -> dict[str, str]:
    """Query-form values of every variable, in order, each query seeing the ones before it.

    A value in `chosen` wins (`.*` picks "All"); then, with `saved_defaults`, the dashboard's
    saved choice ("All" or a value still offered); otherwise the first value, as Grafana does.
    """
    chosen = chosen or {}
    resolved: dict[str, str] = {}
    for variable in variables(dashboard):
        name = str(variable["name"])
        offered = options(variable, store, window, resolved)
        saved = str(variable.get("current", {}).get("value", ""))
        value = chosen.get(name)
        if value is None and saved_defaults and saved == "$__all" and variable.get("includeAll"):
            value = ALL_VALUE
        elif value is None and saved_defaults and saved in offered:
            value = saved
        elif value is None:
            if not offered:
                raise DashboardError(f"variable {name}: no values in the store for this range")
            value = offered[0]
        resolved[name] = query_form(variable, value)
    return resolved
