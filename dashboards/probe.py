"""The technician's probe view: is this probe healthy and what did it measure last?"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    QueryVariable,
)
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import VizOrientation

from contract.i18n import N_, _
from contract.sampling import CLASS_CODES, SampleClass
from dashboards.panels import (
    DATASOURCE,
    base,
    fleet_state,
    online_text,
    query,
    stat_panel,
    table_panel,
    thresholds,
    time_panel,
    value_map,
)

PROBE = 'probe="$probe"'
# A probe without an NTP service to ask (timedatectl) sends no clock state: its results say
# "unknown" rather than the panel showing no data.
CLOCK_UNKNOWN = f"(max(last_over_time(qos_seq{{{PROBE}}}[$__range])) * 0 - 1)"
# The method's classes of a speed attempt (contract/sampling.py), as a column says them.
CLASS_NAMES: dict[SampleClass, str] = {
    "counted": N_("counted"),
    "failed": N_("failed"),
    "probe_limited": N_("probe limited"),
    "implausible": N_("implausible"),
    "too_close": N_("too close"),
    "unconverged": N_("unconverged"),
}


def clock_synced_text() -> list[model.ValueMapping]:
    return value_map(
        {"1": (_("yes"), "green"), "0": (_("no"), "red"), "-1": (_("unknown"), "orange")}
    )


def dashboard() -> Dashboard:
    by_link = "interface, access, technology, operator, setting, plan"
    links = f"max by ({by_link})"

    def classes(code: int) -> str:
        return (
            f"sum by ({by_link}) "
            f"(count_eq_over_time(qos_sample_class{{{PROBE}}}[$__range], {code}))"
        )

    dashboard = base(
        "probe",
        _("Probe"),
        _("One probe: its links, last results, clock, errors and data spent."),
        "now-24h",
    ).with_variable(
        QueryVariable("probe")
        .label(_("Probe"))
        .query("label_values(qos_seq, probe)")
        .datasource(DATASOURCE)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    return (
        dashboard.with_panel(
            stat_panel(
                _("Status"),
                [query(f"max({fleet_state(f'qos_probe_online{{{PROBE}}}')})", instant=True)],
                description=_("From the probe's retained birth message / last will."),
                colours=thresholds((None, "red"), (1, "green")),
                mappings=online_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Clock synced"),
                [
                    query(
                        f"min(last_over_time(qos_clock_synced{{{PROBE}}}[$__range]))"
                        f" or {CLOCK_UNKNOWN}",
                        instant=True,
                    )
                ],
                description=_(
                    "As the results in range reported it; unsynced clocks skew time "
                    "series. Unknown: the probe could not ask its NTP service."
                ),
                colours=thresholds((None, "orange"), (0, "red"), (1, "green")),
                mappings=clock_synced_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Errors and failed attempts"),
                [
                    query(
                        f"sum(sum_over_time(qos_errors{{{PROBE}}}[$__range]))",
                        "A",
                        _("errors"),
                        instant=True,
                    ),
                    query(
                        f"sum(sum_over_time(qos_attempt_failed{{{PROBE}}}[$__range]))",
                        "B",
                        _("failed attempts"),
                        instant=True,
                    ),
                ],
                description=_("Errors carried by results, and tests that could not run."),
                colours=thresholds((None, "green"), (1, "orange")),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Data used in range"),
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
            .title(_("Budget left"))
            .description(_("Share of the monthly byte budget left, per link."))
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
                _("Links"),
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
                    query(
                        f"sum by ({by_link}) (sum_over_time(qos_unconverged{{{PROBE}}}[$__range]))",
                        "F",
                        instant=True,
                    ),
                ],
                {
                    "Value #A": _("results"),
                    "Value #B": _("last download"),
                    "Value #C": _("last upload"),
                    "Value #D": _("last idle latency"),
                    "Value #E": _("probe-limited"),
                    "Value #F": _("unconverged"),
                },
                description=(
                    _(
                        "Each link the probe measured in the range, with its last results."
                        " Unconverged: results whose rate was still climbing when the test ended (a"
                        " long path, e.g. satellite backhaul); such a rate is a lower"
                        " bound, not the link's."
                    )
                ),
                width=24,
                height=6,
                units={
                    _("last download"): "Mbits",
                    _("last upload"): "Mbits",
                    _("last idle latency"): "ms",
                },
            )
        )
        .with_panel(
            table_panel(
                _("Samples by the method's rules"),
                [
                    query(classes(code), chr(ord("A") + code - 1), instant=True)
                    for code in sorted(CLASS_CODES.values())
                ],
                {
                    f"Value #{chr(ord('A') + code - 1)}": _(CLASS_NAMES[name])
                    for name, code in CLASS_CODES.items()
                },
                description=(
                    _(
                        "Each speed attempt in the range by its class (contract/sampling.py):"
                        " counted in the verdict, failed (an access failure), probe-limited,"
                        " implausible (above the technology's ceiling), too close to the previous"
                        " counted sample of the link, or unconverged (the rate still climbing when"
                        " the test ended)."
                    )
                ),
                width=24,
                height=5,
            )
        )
        .with_panel(
            time_panel(
                _("Download and upload per sample"),
                [
                    query(f"qos_download_mbps{{{PROBE}}}", "A", _("down {{interface}} {{target}}")),
                    query(f"qos_upload_mbps{{{PROBE}}}", "B", _("up {{interface}} {{target}}")),
                    query(
                        f"max by (interface) (qos_plan_download_mbps{{{PROBE}}})",
                        "C",
                        _("plan down {{interface}}"),
                    ),
                ],
                unit="Mbits",
            )
        )
        .with_panel(
            time_panel(
                _("Latency (median)"),
                [
                    query(f"qos_latency_idle_median_ms{{{PROBE}}}", "A", _("idle {{interface}}")),
                    query(
                        f"qos_latency_loaded_median_ms{{{PROBE}}}", "B", _("loaded {{interface}}")
                    ),
                ],
                unit="ms",
            )
        )
        .with_panel(
            time_panel(
                _("Errors per hour"),
                [
                    query(
                        f"sum by (interface) (sum_over_time(qos_errors{{{PROBE}}}[1h]))",
                        "A",
                        _("errors {{interface}}"),
                    )
                ],
                unit="short",
            )
        )
        .with_panel(
            time_panel(
                _("Data used per hour"),
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
