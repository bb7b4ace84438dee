"""The area drill-down: one area's samples, its verdict and the rule it is judged by."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import dashboard as model

from dashboards.panels import (
    EARLY_WARNING_TEXT,
    METHOD_TEXT,
    NATIONAL_TARGET_COLOURS,
    NATIONAL_TARGET_TEXT,
    VERDICT_COLOURS,
    VERDICT_RANGE,
    VERDICT_TEXT,
    area_variable,
    base,
    probe_link,
    programme_line,
    province_variable,
    query,
    stat_panel,
    target_line,
    thresholds,
    time_panel,
    verdict_timeline,
    worst_verdict,
)

AREA = (
    'province=~"$province", commune=~"$commune", village=~"$village",'
    ' technology=~"$technology", operator=~"$operator"'
)
VERDICT = f'level="$level", {AREA}'


def dashboard() -> Dashboard:
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
    dashboard = dashboard.with_variable(province_variable())
    chain: list[str] = ['province=~"$province"']
    for name, label in (
        ("commune", "Commune"),
        ("village", "Village"),
        ("technology", "Technology"),
        ("operator", "Operator"),
    ):
        selector = "qos_download_mbps{" + ", ".join(chain) + "}"
        dashboard = dashboard.with_variable(area_variable(name, label, selector))
        chain.append(f'{name}=~"${name}"')

    def fresh(field: str) -> str:
        return f"last_over_time(qos_compliance_{field}{{{VERDICT}}}[{VERDICT_RANGE}])"

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
            query(f"qos_compliance_mean_download_mbps{{{VERDICT}}}", "A", f"mean {legend}"),
            query(f"qos_compliance_ci_low_mbps{{{VERDICT}}}", "B", f"CI low {legend}"),
            query(f"qos_compliance_ci_high_mbps{{{VERDICT}}}", "C", f"CI high {legend}"),
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
            "The verdict's statistic over its rolling window, each area x technology x operator"
            " with its 95 % interval dotted."
        ),
        from_zero=False,
    )
    mean = programme_line(target_line(mean, "D"), "E")
    for bound in ("B", "C"):
        mean = mean.override_by_query(
            bound,
            [model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dot"})],
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
                        ("n_unconverged", "unconverged"),
                        ("n_implausible", "implausible"),
                        ("n_too_close", "too close"),
                    ],
                    "sum",
                ),
                description=(
                    "Over the verdict's window. Failed attempts count as access failures;"
                    " probe-limited ones (the probe was the bottleneck), unconverged ones (the rate"
                    " was still climbing when the test ended) and implausible ones"
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
        .with_panel(
            verdict_timeline(
                "Regulation verdict over time",
                [query(f"qos_compliance_status{{{VERDICT}}}", "A", legend)],
                description=(
                    "The regulation's verdict as the engine judged it at each moment of the picked"
                    " range (each judgement covers the rolling window before it), one band per"
                    " area x technology x operator."
                ),
            )
        )
        .with_row(Row("Speed"))
        .with_panel(
            programme_line(target_line(speed, "B"), "C").override_by_query(
                "A",
                [
                    model.DynamicConfigValue(
                        id_val="links", value=[probe_link("${__field.labels.probe}")]
                    )
                ],
            )
        )
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
