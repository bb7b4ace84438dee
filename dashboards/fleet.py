"""Fleet health, for the operator: is the pipeline from probes to store working?"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.common import VizOrientation

from contract.i18n import _
from dashboards.panels import (
    DATASOURCE,
    area_link,
    base,
    fleet_state,
    online_text,
    override,
    probe_link,
    query,
    stat_panel,
    table_panel,
    thresholds,
    time_panel,
)


def dashboard() -> Dashboard:
    share = (
        "sum(sum_over_time(qos_probe_limited[$__range]))"
        " / sum(count_over_time(qos_probe_limited[$__range]))"
    )
    lag = "sum by (le) (rate(qos_collector_ingest_lag_seconds_bucket[$__rate_interval]))"
    dashboard = base(
        "fleet",
        _("Fleet health"),
        _("Probes, collectors and the store: is every result arriving?"),
        "now-6h",
    )
    return (
        dashboard.with_panel(
            stat_panel(
                _("Probes online"),
                [query(f"sum({fleet_state('qos_probe_online')})", instant=True)],
                colours=thresholds((None, "green")),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Probes offline"),
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
                _("Collectors connected to the broker"),
                [query("sum(qos_collector_broker_connected)", instant=True)],
                colours=thresholds((None, "red"), (1, "green")),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Store write errors in range"),
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
                _("Probe-limited share"),
                [query(share, instant=True)],
                unit="percentunit",
                description=_("Results where the probe, not the link, was the bottleneck."),
                colours=thresholds((None, "green"), (0.05, "orange"), (0.2, "red")),
                width=4,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                _("Lowest budget left"),
                [query(f"min({fleet_state('qos_probe_budget_remaining_ratio')})", instant=True)],
                unit="percentunit",
                colours=thresholds((None, "red"), (0.1, "orange"), (0.25, "green")),
                width=4,
                decimals=0,
            )
        )
        .with_panel(
            time_panel(
                _("Results accepted and rejected"),
                [
                    query(
                        "sum(rate(qos_collector_results_accepted_total[$__rate_interval]))",
                        "A",
                        _("accepted"),
                    ),
                    query(
                        "sum by (reason) "
                        "(rate(qos_collector_results_rejected_total[$__rate_interval]))",
                        "B",
                        _("rejected: {{reason}}"),
                    ),
                ],
                unit="reqps",
                description=_("Per second, summed over collectors."),
            )
        )
        .with_panel(
            time_panel(
                _("Ingest lag (measurement end to durable write)"),
                [
                    query(f"histogram_quantile(0.5, {lag})", "A", _("p50")),
                    query(f"histogram_quantile(0.95, {lag})", "B", _("p95")),
                    query(f"histogram_quantile(0.99, {lag})", "C", _("p99")),
                ],
                unit="s",
            )
        )
        .with_panel(
            time_panel(
                _("Probe-limited share by technology"),
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
                _("Results stored per hour"),
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
            .title(_("Budget left per probe and link"))
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
                _("Probes"),
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
                {"Value #A": _("status"), "Value #B": _("last seq")},
                height=8,
                links={"probe": [probe_link()], "village": [area_link("village")]},
            ).override_by_name(
                *override(
                    _("status"),
                    mappings=online_text(),
                    **{"custom.cellOptions": {"type": "color-text"}},
                )
            )
        )
    )
