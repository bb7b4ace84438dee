"""The demo: the central stack on loopback, a target, and one agent per village, end to end."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from contract.profiles import profile_for
from contract.result import Technology
from lab.services import (
    VictoriaMetrics,
    mosquitto,
    qos_collector,
    qos_target,
    venv_script,
    victoria_metrics,
)


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
    ),
)


def agent_config(village: Village, *, target_url: str, broker_url: str, state_dir: Path) -> str:
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

[[targets]]
id = "demo-target"
url = "{target_url}"

[broker]
url = "{broker_url}"
"""


def run_demo(*, workdir: Path | None, rounds: int, duration_s: float, keep: bool) -> int:
    console = Console()
    with ExitStack() as stack:
        root = workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="qosfleet-demo-"))
        )
        console.rule("[bold]qosfleet demo: central stack on loopback, one agent per village")
        with console.status("starting mosquitto, VictoriaMetrics, qos-target, qos-collector ..."):
            broker = stack.enter_context(mosquitto(root / "mosquitto"))
            store = stack.enter_context(victoria_metrics(root / "victoria-metrics"))
            target = stack.enter_context(qos_target(root / "target"))
            collector = stack.enter_context(
                qos_collector(root / "collector", broker_url=broker.url, store_url=store.url)
            )
        console.print(f"  broker      {broker.url}")
        console.print(f"  store       {store.url}  (VictoriaMetrics UI: {store.url}/vmui)")
        console.print(f"  target      {target.url}")
        console.print(f"  collector   metrics at {collector.url}")
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
                label = f"round {round_number}/{rounds}: {village.village} measuring"
                with console.status(label + " ..."):
                    agent = subprocess.run(
                        [venv_script("qos-agent"), "check", "--config", str(config),
                         "--duration", f"{duration_s:g}", "--publish", "--json"],
                        capture_output=True, text=True, timeout=120, check=False,
                    )  # fmt: skip
                if agent.returncode != 0:
                    console.print(f"  [red]✗[/] {village.village}: {agent.stderr.strip()}")
                    continue
                mbps = json.loads(agent.stdout)["measurements"]["download"]["mbps"]
                console.print(f"  [green]✓[/] {label}: {mbps:,.0f} Mb/s, stored (receipt)")
                published += 1
        time.sleep(1.5)  # VictoriaMetrics makes fresh samples searchable within about a second
        console.print(_summary(store))
        console.print(
            f"{published} results published and confirmed stored. "
            "Loopback runs at memory speed, so every village 'passes' here: the network-namespace "
            "village lab gives each village its own shaped link."
        )
        if keep:
            console.print(f"Services stay up (data in {root}); Ctrl-C to stop and clean up.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0 if published == rounds * len(VILLAGES) else 1


def _summary(store: VictoriaMetrics) -> Table:
    table = Table(title="What reached the store (VictoriaMetrics), per village")
    for column in ("village", "province/commune", "link", "n", "mean download", "QCVN verdict"):
        table.add_column(column)
    counts = {s["metric"]["probe"]: int(float(s["value"][1]))
              for s in store.query("count_over_time(qos_download_mbps[1h])")}  # fmt: skip
    for series in store.query("avg_over_time(qos_download_mbps[1h])"):
        labels = series["metric"]
        profile = profile_for(labels["technology"])
        n = counts.get(labels["probe"], 0)
        verdict = (
            f"insufficient data ({profile.name}: n {n}/{profile.n_required})" if profile else "-"
        )
        table.add_row(
            labels["village"],
            f"{labels['province']}/{labels['commune']}",
            f"{labels['technology']} {labels['operator']}",
            str(n),
            f"{float(series['value'][1]):,.0f} Mb/s",
            verdict,
        )
    table.caption = "mean of per-sample rates over the last hour"
    return table
