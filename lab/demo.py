"""The demo: the central stack on loopback, a target, and one agent per village, end to end."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from contract.i18n import _, number
from contract.result import Setting, Technology
from lab.progress import lab_console, step
from lab.services import (
    UNSIGNED_CHECKS,
    mosquitto,
    qos_collector,
    qos_target,
    venv_script,
    victoria_metrics,
)
from lab.verdicts import VerdictRow, demo_profiles, store_reader, verdict_table

VERDICT_INTERVAL_S = 2.0


@dataclass(frozen=True)
class Village:
    probe_id: str
    village: str
    province_code: str
    commune_code: str
    lat: float
    lon: float
    interface: str
    access: str
    technology: Technology
    operator: str
    setting: Setting
    plan_mbps: float | None = None


VILLAGES = (
    Village(
        "vn-11-ban-na-hin",
        "Bản Nà Hin",
        "11",
        "03211",
        21.39,
        103.02,
        "lo",
        "mobile",
        "4g",
        "Viettel",
        "outdoor_fixed",
    ),
    Village(
        "vn-46-thon-phu-loc",
        "Thôn Phú Lộc",
        "46",
        "19918",
        16.46,
        107.59,
        "lo",
        "mobile",
        "5g",
        "VinaPhone",
        "indoor",
    ),
    Village(
        "vn-79-ap-thanh-hoa",
        "Ấp Thạnh Hòa",
        "79",
        "26734",
        10.77,
        106.70,
        "lo",
        "fixed",
        "ftth",
        "VNPT",
        "indoor",
        plan_mbps=300,
    ),
)


def agent_config(village: Village, *, target_url: str, broker_url: str, state_dir: Path) -> str:
    plan = (
        f"plan = {{ download_mbps = {village.plan_mbps:g}, upload_mbps = {village.plan_mbps:g} }}\n"
        if village.plan_mbps
        else ""
    )
    return f"""\
probe_id = "{village.probe_id}"
state_dir = "{state_dir}"

[location]
province_code = "{village.province_code}"
commune_code = "{village.commune_code}"
village = "{village.village}"
lat = {village.lat}
lon = {village.lon}

[[links]]
interface = "{village.interface}"
access = "{village.access}"
technology = "{village.technology}"
operator = "{village.operator}"
setting = "{village.setting}"
{plan}
[[targets]]
id = "demo-target"
url = "{target_url}"

[broker]
url = "{broker_url}"
"""


def run_demo(*, workdir: Path | None, rounds: int, duration_s: float, keep: bool) -> int:
    console = lab_console()
    with ExitStack() as stack:
        root = workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="qosfleet-demo-"))
        )
        console.rule(
            "[bold]" + _("qosfleet demo: central stack on loopback, one agent per village")
        )
        with step(
            console,
            _("starting {services}").format(
                services="mosquitto, VictoriaMetrics, qos-target, qos-collector"
            ),
        ):
            broker = stack.enter_context(mosquitto(root / "mosquitto"))
            store = stack.enter_context(victoria_metrics(root / "victoria-metrics"))
            target = stack.enter_context(qos_target(root / "target"))
            profiles = demo_profiles(root / "profiles.demo.toml", n_required=rounds)
            collector = stack.enter_context(
                qos_collector(
                    root / "collector",
                    broker_url=broker.url,
                    store_url=store.url,
                    extra_args=[
                        *UNSIGNED_CHECKS,
                        "--profiles",
                        str(profiles),
                        "--verdict-interval",
                        f"{VERDICT_INTERVAL_S:g}",
                    ],
                )
            )
        places = [
            ("broker", broker.url),
            (_("store"), f"{store.url}  (VictoriaMetrics UI: {store.url}/vmui)"),
            (_("target"), target.url),
            (_("collector"), _("metrics at {url}").format(url=collector.url)),
        ]
        width = max(len(name) for name, _place in places)
        for name, place in places:
            console.print(f"  {name:<{width}}  {place}")
        published = 0
        for round_number in range(1, rounds + 1):
            for village in VILLAGES:
                config = root / "agents" / f"{village.probe_id}.toml"
                config.parent.mkdir(parents=True, exist_ok=True)
                config.write_text(
                    agent_config(
                        village,
                        target_url=target.url,
                        broker_url=broker.url,
                        state_dir=root / "agents" / village.probe_id,
                    ),
                    encoding="utf-8",
                )
                label = _("round {round}/{rounds}: {village}").format(
                    round=round_number, rounds=rounds, village=village.village
                )
                with step(console, _("{label} measuring").format(label=label)):
                    agent = subprocess.run(
                        [venv_script("qos-agent"), "check", "--config", str(config),
                         "--duration", f"{duration_s:g}", "--publish", "--json"],
                        capture_output=True, text=True, timeout=120, check=False,
                    )  # fmt: skip
                if agent.returncode != 0:
                    console.print(f"  [red]✗[/] {village.village}: {agent.stderr.strip()}")
                    continue
                mbps = json.loads(agent.stdout)["measurements"]["download"]["mbps"]
                stored = _("{rate} Mb/s, stored (receipt)").format(rate=number(mbps, 0))
                console.print(f"  [green]✓[/] {label}: {stored}")
                published += 1
        # Two verdict refreshes, then VictoriaMetrics makes their samples searchable (~1 s).
        time.sleep(VERDICT_INTERVAL_S * 2 + 1.5)
        console.print(verdict_table(_verdict_rows(), store_reader(store.query)))
        console.print(
            _(
                "{published} results published and confirmed stored, judged with the QCVN "
                "targets and n_required lowered to {rounds}. Loopback runs at memory speed: the "
                "method does not count such samples (probe-limited, or above the technology's "
                "physical ceiling), so the verdicts here stay 'insufficient data'. The village lab "
                "(root) gives each village its own shaped link."
            ).format(published=published, rounds=rounds)
        )
        if keep:
            console.print(
                _("Services stay up (data in {path}); Ctrl-C to stop and clean up.").format(
                    path=root
                )
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0 if published == rounds * len(VILLAGES) else 1


def _verdict_rows() -> list[VerdictRow]:
    return [
        VerdictRow(
            village=village.village,
            technology=village.technology,
            operator=village.operator,
            link="loopback",
            plan_mbps=village.plan_mbps,
        )
        for village in VILLAGES
    ]
