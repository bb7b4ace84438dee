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

from contract.i18n import N_, _
from dashboards.panels import (
    NATIONAL_TARGET_COLOURS,
    VERDICT_COLOURS,
    VERDICT_RANGE,
    area_variable,
    base,
    early_warning_text,
    method_text,
    national_target_text,
    probe_link,
    programme_line,
    province_variable,
    query,
    stat_panel,
    target_line,
    thresholds,
    time_panel,
    verdict_text,
    verdict_timeline,
    worst_verdict,
)

AREA = (
    'province=~"$province", commune=~"$commune", village=~"$village",'
    ' technology=~"$technology", operator=~"$operator"'
)
VERDICT = f'level="$level", {AREA}'
# The verdict levels, as the label says them; shown in the reader's language.
LEVELS = (N_("village"), N_("commune"), N_("province"), N_("nation"))


def dashboard() -> Dashboard:
    dashboard = base(
        "area",
        _("Area drill-down"),
        _(
            "One area's per-sample results, the method's sample rules and its verdict: the"
            " regulation, and for fixed lines the national 1 Gb/s target apart."
        ),
        "now-7d",
    ).with_variable(
        CustomVariable("level")
        .label(_("Verdict level"))
        .description(
            _(
                "Which verdict the panels show; leave the narrower area variables at All"
                " (e.g. province level: commune and village All)."
            )
        )
        .values(",".join(f"{_(level)} : {level}" for level in LEVELS))
        .current(model.VariableOption(selected=True, text=_("village"), value="village"))
    )
    dashboard = dashboard.with_variable(province_variable(_("Province")))
    chain: list[str] = ['province=~"$province"']
    for name, label in (
        ("commune", _("Commune")),
        ("village", _("Village")),
        ("technology", _("Technology")),
        ("operator", _("Operator")),
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
        return stats([(field, name), (low, _("CI low")), (high, _("CI high"))])

    legend = "{{village}} {{technology}} {{operator}}"
    speed = time_panel(
        _("Download per sample vs target"),
        [
            query(f"qos_download_mbps{{{AREA}}}", "A", "{{village}} {{probe}} {{interface}}"),
            query(
                f"max by (profile) (qos_compliance_target_download_mbps{{{VERDICT}}})",
                "B",
                _("target {{profile}}"),
            ),
            query(
                f"max by (profile) (qos_compliance_national_target_download_mbps{{{VERDICT}}})",
                "C",
                _("national target {{profile}}"),
            ),
        ],
        unit="Mbits",
        description=(
            _(
                "Per-sample rates: bytes / transfer time of each result, not a mean. Dashed red:"
                " the regulation's line (fixed lines: 0.8 x the plan, QCVN 34); dashed purple: the"
                " national 1 Gb/s programme target (fixed lines)."
            )
        ),
        width=24,
    )
    mean = time_panel(
        _("Mean download with 95 % CI"),
        [
            query(
                f"qos_compliance_mean_download_mbps{{{VERDICT}}}",
                "A",
                _("mean {area}").format(area=legend),
            ),
            query(
                f"qos_compliance_ci_low_mbps{{{VERDICT}}}",
                "B",
                _("CI low {area}").format(area=legend),
            ),
            query(
                f"qos_compliance_ci_high_mbps{{{VERDICT}}}",
                "C",
                _("CI high {area}").format(area=legend),
            ),
            query(
                f"max by (profile) (qos_compliance_target_download_mbps{{{VERDICT}}})",
                "D",
                _("target {{profile}}"),
            ),
            query(
                f"max by (profile) (qos_compliance_national_target_download_mbps{{{VERDICT}}})",
                "E",
                _("national target {{profile}}"),
            ),
        ],
        unit="Mbits",
        description=(
            _(
                "The verdict's statistic over its rolling window, each area x technology x operator"
                " with its 95 % CI dotted."
            )
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
                _("Regulation verdict"),
                [query(worst_verdict(fresh("status")), instant=True)],
                description=(
                    _(
                        "Worst verdict of the regulation among the selected areas: QCVN 81 / 126"
                        " with the 4G plan target for mobile links, QCVN 34 plan conformity for"
                        " fixed lines. The national 1 Gb/s target is apart"
                        " (below), never a fail here."
                    )
                ),
                colours=VERDICT_COLOURS,
                mappings=verdict_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Early warning"),
                [query(f"max({fresh('early_warning')})", instant=True)],
                description=(
                    _(
                        "Insufficient data for the regulation's verdict, but the whole 95 % CI of a"
                        " criterion already lies on its failing side: provisional, not a verdict."
                    )
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                mappings=early_warning_text(),
                width=3,
            )
        )
        .with_panel(
            stat_panel(
                _("Method"),
                [query(f"min({fresh('formal')})", instant=True)],
                description=(
                    _(
                        "QCVN method: the sample mix the profile asks for (counted samples per"
                        " setting) and the spread over the hours of the day are met. Otherwise"
                        " monitoring per the QCVN method."
                    )
                ),
                colours=thresholds((None, "blue"), (1, "green")),
                mappings=method_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Samples in the verdict"),
                [
                    query(f"sum({fresh('n')})", "A", _("n"), instant=True),
                    query(f"sum({fresh('n_required')})", "B", _("required"), instant=True),
                ],
                description=_("Counted samples in the download mean and the regulation's minimum."),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("Mean download and 95 % CI"),
                stats(
                    [
                        ("mean_download_mbps", _("mean")),
                        ("ci_low_mbps", _("CI low")),
                        ("ci_high_mbps", _("CI high")),
                        ("target_download_mbps", _("target line")),
                    ]
                ),
                unit="Mbits",
                description=_("Target: the regulation's line (fixed lines: 0.8 x the plan)."),
                width=8,
                decimals=1,
            )
        )
        .with_row(Row(_("The method's sample rules")))
        .with_panel(
            stat_panel(
                _("Attempts, and samples not in the mean"),
                stats(
                    [
                        ("n_attempts", _("attempts")),
                        ("n_failed", _("failed")),
                        ("n_probe_limited", _("probe-limited")),
                        ("n_unconverged", _("unconverged")),
                        ("n_implausible", _("implausible")),
                        ("n_too_close", _("too close")),
                    ],
                    "sum",
                ),
                description=(
                    _(
                        "Over the verdict's window. Failed attempts count as access failures;"
                        " probe-limited ones (the probe was the bottleneck), unconverged ones (the"
                        " rate was still climbing when the test ended) and implausible ones"
                        " (above the technology's physical ceiling) are kept as evidence but"
                        " excluded; a sample closer than the profile's minimum gap to its device's"
                        " previous counted one is not counted."
                    )
                ),
                width=10,
            )
        )
        .with_panel(
            stat_panel(
                _("Sample mix (counted samples per setting)"),
                stats(
                    [
                        ("n_indoor", _("indoor")),
                        ("n_outdoor_fixed", _("outdoor fixed")),
                        ("n_outdoor_moving", _("outdoor moving")),
                    ],
                    "sum",
                ),
                description=_("QCVN 81 / 126 ask for a share of each setting (profiles.toml)."),
                width=7,
            )
        )
        .with_panel(
            stat_panel(
                _("Spread over the day (counted samples, Vietnam time)"),
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
                    _(
                        "QCVN 34 asks for samples spread over the hours of the day: each six-hour"
                        " part must hold at least the profile's share."
                    )
                ),
                width=7,
            )
        )
        .with_panel(
            stat_panel(
                _("Access failure rate and 95 % CI"),
                with_interval(
                    "access_failure_rate",
                    _("rate"),
                    "access_failure_ci_low",
                    "access_failure_ci_high",
                ),
                unit="percentunit",
                colours=thresholds((None, "green"), (0.05, "red")),
                description=_("Failed attempts / attempts; QCVN 81 and 126 allow at most 5 %."),
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                _("Share at the minimum rate and 95 % CI"),
                with_interval("share_at_or_above_min", _("share"), "share_ci_low", "share_ci_high"),
                unit="percentunit",
                description=(
                    _(
                        "Share of counted samples at or above the profile's minimum rate (QCVN 126:"
                        " at least 95 % at 30 Mb/s or more)."
                    )
                ),
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                _("Mean upload and 95 % CI"),
                with_interval(
                    "mean_upload_mbps", _("mean"), "upload_ci_low_mbps", "upload_ci_high_mbps"
                ),
                unit="Mbits",
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                _("Mean latency and 95 % CI"),
                with_interval(
                    "mean_latency_ms", _("mean"), "latency_ci_low_ms", "latency_ci_high_ms"
                ),
                unit="ms",
                description=_("Mean of the idle latency medians (QCVN 126 judges it)."),
                width=5,
                decimals=1,
            )
        )
        .with_panel(
            stat_panel(
                _("IPv6 works"),
                [query(f"avg(avg_over_time(qos_ipv6_works{{{AREA}}}[$__range]))", instant=True)],
                unit="percentunit",
                colours=thresholds((None, "red"), (0.5, "orange"), (0.95, "green")),
                description=_(
                    "Share of IPv6 checks in the range that classified the link 'works'."
                ),
                width=4,
                decimals=0,
            )
        )
        .with_row(Row(_("Fixed lines: QCVN 34 (the regulation) and the 1 Gb/s national target")))
        .with_panel(
            stat_panel(
                _("QCVN 34 plan conformity"),
                [query(worst_verdict(fresh("plan_status")), instant=True)],
                description=(
                    _(
                        "The regulation for fixed lines: mean download and upload at least 0.8 x"
                        " the subscribed plan. Judged where the area has one plan."
                    )
                ),
                colours=VERDICT_COLOURS,
                mappings=verdict_text(),
                width=5,
            )
        )
        .with_panel(
            stat_panel(
                _("QCVN 34 lines (0.8 x plan)"),
                [
                    query(
                        f"max({fresh('target_download_mbps')} and {fresh('plan_status')})",
                        "A",
                        _("download"),
                        instant=True,
                    ),
                    query(f"max({fresh('target_upload_mbps')})", "B", _("upload"), instant=True),
                ],
                unit="Mbits",
                width=6,
                decimals=0,
            )
        )
        .with_panel(
            stat_panel(
                _("National 1 Gb/s target"),
                [query(worst_verdict(fresh("national_target_status")), instant=True)],
                description=(
                    _(
                        "A national programme indicator, apart from the regulation: a line that"
                        " conforms to its plan passes QCVN 34 even below 1 Gb/s."
                    )
                ),
                colours=NATIONAL_TARGET_COLOURS,
                mappings=national_target_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("National target: early warning"),
                [query(f"max({fresh('national_target_early_warning')})", instant=True)],
                description=(
                    _(
                        "Too few samples for the national target, but the whole 95 % CI of the mean"
                        " already lies below it."
                    )
                ),
                colours=thresholds((None, "green"), (1, "orange")),
                mappings=early_warning_text(),
                width=4,
            )
        )
        .with_panel(
            stat_panel(
                _("Mean download vs national target"),
                [
                    query(fixed_mean, "A", _("mean"), instant=True),
                    query(
                        f"max({fresh('national_target_download_mbps')})",
                        "B",
                        _("national target"),
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
                _("Regulation verdict over time"),
                [query(f"qos_compliance_status{{{VERDICT}}}", "A", legend)],
                description=(
                    _(
                        "The regulation's verdict as the engine judged it at each moment of the"
                        " picked range (each judgement covers the rolling window before it), one"
                        " band per area x technology x operator."
                    )
                ),
            )
        )
        .with_row(Row(_("Speed")))
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
                _("Samples in the verdict"),
                [
                    query(f"qos_compliance_n{{{VERDICT}}}", "A", _("n {area}").format(area=legend)),
                    query(
                        f"qos_compliance_n_required{{{VERDICT}}}",
                        "B",
                        _("required {area}").format(area=legend),
                    ),
                ],
                unit="short",
            )
        )
        .with_row(Row(_("Latency and upload")))
        .with_panel(
            time_panel(
                _("Latency, idle and under load (median)"),
                [
                    query(
                        f"qos_latency_idle_median_ms{{{AREA}}}",
                        "A",
                        _("idle {{village}} {{probe}} {{interface}}"),
                    ),
                    query(
                        f"qos_latency_loaded_median_ms{{{AREA}}}",
                        "B",
                        _("loaded {{village}} {{probe}} {{interface}}"),
                    ),
                ],
                unit="ms",
            )
        )
        .with_panel(
            time_panel(
                _("Upload per sample"),
                [query(f"qos_upload_mbps{{{AREA}}}", "A", "{{village}} {{probe}} {{interface}}")],
                unit="Mbits",
            )
        )
    )
