"""The village lab: the whole fleet on one machine, each village behind its own shaped link.

Villages are network namespaces joined to a target namespace by tbf-shaped veth pairs
(lab/netns.py); the central stack (mosquitto, VictoriaMetrics, qos-collector, vmalert,
Alertmanager) runs on the host's loopback. Agents measure through their village's link and reach
the broker through its Unix socket, the one door between the namespaces and the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from agent.keys import create_key
from contract.errors import QosfleetError
from contract.i18n import N_, _, current, ngettext, number
from contract.result import Setting
from lab.alerting import Alertmanager, alertmanager, rules_with_short_for, vmalert
from lab.netns import Lab, LinkSpec, ProbeSpec
from lab.progress import lab_console, step
from lab.services import (
    UNSIGNED_CHECKS,
    VictoriaMetrics,
    mosquitto,
    qos_collector,
    venv_script,
    victoria_metrics,
)
from lab.stack import vmagent
from lab.verdicts import VerdictRow, demo_profiles, store_reader, verdict_table

TARGET_PORT = 8080
VERDICT_INTERVAL_S = 2.0
ALERT_FOR = "2s"
# The collector's own metrics (the fleet dashboard's ingest panels) are scraped this often.
SCRAPE_INTERVAL_S = 2.0
# The lab measures in rounds itself (one link at a time, see _rounds); each village's daemon
# runs for what a probe publishes between tests (enrollment, status, budgets) and, waiting this
# long before its first scheduled test, never measures during the lab.
DAEMON_TEST_GAP_S = 90 * 86_400.0
# The PNGs show the lab's run and a little before it, not an hour of mostly empty charts.
RENDER_MARGIN_S = 60.0


@dataclass(frozen=True)
class LabLink:
    interface: str
    access: str
    technology: str
    operator: str
    down_mbps: float
    up_mbps: float
    # Where the probe takes its samples (QCVN 81/126 sample mix), declared at enrollment.
    setting: Setting
    # The subscribed plan (both ways), which QCVN 34 holds a fixed line's mean against.
    plan_mbps: float | None = None
    rtt_ms: float = 0.0  # added by the lab's delay line: radio access and backhaul


@dataclass(frozen=True)
class LabVillage:
    probe: str  # namespace and probe id suffix
    village: str
    province_code: str
    commune_code: str
    lat: float
    lon: float
    links: tuple[LabLink, ...]
    ipv6: bool = True
    # What the demo should show, for the reader of the summary (marked; shown with `_`).
    expect: str = ""


VILLAGES = (
    LabVillage("a", "Bản Nà Hin", "11", "03211", 21.39, 103.02,
               (LabLink("wwan0", "mobile", "4g", "Viettel", 30, 10, "outdoor_fixed", rtt_ms=40),),
               expect=N_("4G at 30 Mb/s, 40 ms: below the 40 Mb/s target, fails")),
    LabVillage("b", "Bản Mường", "14", "04030", 21.33, 103.91,
               (LabLink("wwan0", "mobile", "4g", "VinaPhone", 60, 20, "indoor", rtt_ms=40),),
               expect=N_("4G at 60 Mb/s, 40 ms: passes")),
    LabVillage("c", "Thôn Phú Lộc", "46", "19918", 16.46, 107.59,
               (LabLink("wwan0", "mobile", "5g", "Viettel", 150, 50, "outdoor_fixed", rtt_ms=20),),
               expect=N_("5G at 150 Mb/s, 20 ms: passes the 100 Mb/s target")),
    # TCP goodput is 0.956 x the shaped rate: 1100 carries ~1050 Mb/s, above the 1 Gb/s target.
    LabVillage("d", "Thị trấn Phong Thổ", "12", "03406", 22.52, 103.34,
               (LabLink("eth0", "fixed", "ftth", "VNPT", 1100, 1100, "indoor", plan_mbps=1000),),
               expect=N_("fibre, 1 Gb/s plan delivering ~1.05 Gb/s: conforms to its plan"
                         " (QCVN 34) and meets the 1 Gb/s national target")),
    LabVillage("e", "Bản Khe", "15", "05125", 21.70, 104.87,
               (LabLink("wwan0", "mobile", "4g", "MobiFone", 60, 20, "indoor", rtt_ms=50),),
               ipv6=False, expect=N_("IPv4-only 4G at 60 Mb/s, 50 ms: passes")),
    LabVillage("f", "Trường Lũng Cú", "08", "00715", 23.36, 105.32,
               (LabLink("eth0", "fixed", "ftth", "VNPT", 300, 300, "indoor", plan_mbps=300),
                LabLink("wwan0", "mobile", "4g", "Viettel", 45, 15, "indoor", rtt_ms=40)),
               expect=N_("school: fibre on a 300 Mb/s plan conforms to it (QCVN 34 passes) but"
                         " is below the 1 Gb/s national target (a programme warning, not a"
                         " failure); 4G at 45 passes")),
)  # fmt: skip


def probe_id(village: LabVillage) -> str:
    return f"vn-{village.province_code}-lab-{village.probe}"


def lab_probes(villages: Sequence[LabVillage]) -> tuple[ProbeSpec, ...]:
    return tuple(
        ProbeSpec(
            name=village.probe,
            links=tuple(
                LinkSpec(
                    interface=link.interface,
                    down_mbps=link.down_mbps,
                    up_mbps=link.up_mbps,
                    ipv6=village.ipv6,
                    rtt_ms=link.rtt_ms,
                )
                for link in village.links
            ),
        )
        for village in villages
    )


def agent_config(village: LabVillage, *, target_url: str, broker_url: str, state_dir: Path) -> str:
    links = []
    for link in village.links:
        plan = (
            f"\nplan = {{ download_mbps = {link.plan_mbps:g}, upload_mbps = {link.plan_mbps:g} }}"
            if link.plan_mbps
            else ""
        )
        links.append(
            f'[[links]]\ninterface = "{link.interface}"\naccess = "{link.access}"\n'
            f'technology = "{link.technology}"\noperator = "{link.operator}"\n'
            f'setting = "{link.setting}"{plan}\n'
        )
    gap = f"{DAEMON_TEST_GAP_S:g}"
    return (
        f'probe_id = "{probe_id(village)}"\nstate_dir = "{state_dir}"\n\n'
        f'[location]\nprovince_code = "{village.province_code}"\n'
        f'commune_code = "{village.commune_code}"\nvillage = "{village.village}"\n'
        f"lat = {village.lat}\nlon = {village.lon}\n\n" + "\n".join(links) + "\n"
        f'[[targets]]\nid = "lab-target"\nurl = "{target_url}"\n\n'
        f'[broker]\nurl = "{broker_url}"\n\n'
        f"[schedule]\nspeed_mean_s = {gap}\nspeed_floor_s = {gap}\n"
        f"light_mean_s = {gap}\nlight_floor_s = {gap}\n"
    )


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every namespace and process is removed."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _measure(lab: Lab, village: LabVillage, config: Path, interface: str) -> dict[str, Any]:
    argv = [venv_script("qos-agent"), "check", "--config", str(config), "--interface", interface,
            "--publish", "--json"]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *lab.argv(village.probe, argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    problem = {"error": f"exit {process.returncode}: {err.decode(errors='replace').strip()[-300:]}"}
    if process.returncode not in (0, 1):  # 1: measured, with errors in the result
        return problem
    try:
        answer: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        return problem
    return answer


async def _rounds(
    lab: Lab,
    villages: Sequence[LabVillage],
    configs: dict[str, Path],
    rounds: int,
    console: Console,
) -> tuple[list[str], int]:
    """Every round, every link measures once, one link at a time; a line for each. Returns the
    problems and how many results the probe flagged probe-limited.

    One at a time because the villages share this machine's two cores: run together, the agents
    would rightly flag their results probe-limited (the CPU, not the link, being the bottleneck).
    """
    problems: list[str] = []
    limited = 0
    links = [(village, link) for village in villages for link in village.links]
    for round_number in range(1, rounds + 1):
        for village, link in links:
            label = _("round {round}/{rounds}: {village} {interface}").format(
                round=round_number, rounds=rounds, village=village.village, interface=link.interface
            )
            with step(console, _("{label} measuring").format(label=label)):
                answer = await _measure(lab, village, configs[village.probe], link.interface)
            if "error" in answer:
                problems.append(f"{village.village} {link.interface}: {answer['error']}")
                console.print(f"  [red]✗[/] {label}: {answer['error']}")
            else:
                console.print(f"  [green]✓[/] {label}: {_rates(answer)}")
                limited += _probe_limited(answer)
    return problems, limited


def _probe_limited_note(limited: int) -> str:
    """Why verdicts and means may be missing: the samples' own flag, explained."""
    load = " / ".join(number(figure, 1) for figure in os.getloadavg())
    headline = ngettext(
        "{count} result was probe-limited", "{count} results were probe-limited", limited
    ).format(count=limited)
    return f"[yellow]{headline}[/]: " + _(
        "this machine's CPU was busy during their tests (load average {load}), as a busy "
        "probe's would be. The method does not count them, so verdicts above may read "
        "'insufficient data' and the area dashboard's means stay empty; run the demo on an idle "
        "machine to see them."
    ).format(load=load)


def _probe_limited(answer: dict[str, Any]) -> bool:
    return bool((answer.get("provenance") or {}).get("probe_limited"))


def _rates(answer: dict[str, Any]) -> str:
    """The measured rates as the agent's --json gave them, and whether the probe limited them."""
    measurements = answer.get("measurements") or {}
    ways = {"download": _("download"), "upload": _("upload")}
    shown = [
        f"{word} {number(block['mbps'], 1)} Mb/s"
        for way, word in ways.items()
        if isinstance(block := measurements.get(way), dict)
        and isinstance(block.get("mbps"), int | float)
    ]
    if _probe_limited(answer):
        shown.append(_("probe-limited"))
    return ", ".join(shown) or _("no rate (see the result's errors)")


def _verdict_rows(villages: Sequence[LabVillage]) -> list[VerdictRow]:
    return [
        VerdictRow(
            village=village.village,
            technology=link.technology,
            operator=link.operator,
            link=_("shaped {down}/{up}").format(
                down=number(link.down_mbps, 0), up=number(link.up_mbps, 0)
            ),
            plan_mbps=link.plan_mbps,
        )
        for village in villages
        for link in village.links
    ]


def _alert_lines(alerts: list[dict[str, Any]]) -> list[str]:
    """Village and probe alerts one per line; the wider areas' alerts counted."""
    lines = []
    wider = [a for a in alerts if a["labels"].get("level") in {"commune", "province", "nation"}]
    # The rules carry their Vietnamese text beside the English (contract/locale/README.md).
    summary = "summary_vi" if current() == "vi" else "summary"
    for alert in sorted(alerts, key=lambda a: a["labels"].get("alertname", "")):
        if alert in wider:
            continue
        labels, annotations = alert["labels"], alert.get("annotations", {})
        where = labels.get("village") or labels.get("commune") or labels.get("probe") or ""
        lines.append(
            f"{labels.get('severity', '?'):>8}  {labels.get('alertname')}  {where}  "
            f"{labels.get('technology', '')} {labels.get('operator', '')}  "
            f"— {annotations.get(summary) or annotations.get('summary', '')}"
        )
    if wider:
        lines.append(
            "+ "
            + ngettext(
                "{count} alert for the communes, provinces and nation these lie in",
                "{count} alerts for the communes, provinces and nation these lie in",
                len(wider),
            ).format(count=len(wider))
        )
    return lines


def run_village_lab(
    *, workdir: Path, rounds: int, keep: bool, pictures_dir: Path, logs_dir: Path
) -> int:
    """Run the lab in `workdir`; the dashboard PNGs go to `pictures_dir` and, when it is not
    `workdir`, every service's and agent's log is copied to `logs_dir` at the end: both outlive
    a temporary workdir."""
    console = lab_console()
    villages = VILLAGES
    started = time.time()
    with _sigterm_as_exit(), ExitStack() as stack:
        console.rule("[bold]qosfleet village lab")
        with step(console, _("building villages: namespaces, shaped veth links")):
            lab = stack.enter_context(Lab(lab_probes(villages)))
        console.print(
            "  "
            + _(
                "{count} villages in namespaces {prefix}-*, links shaped with tc tbf, mobile RTT "
                "from a userspace delay line"
            ).format(count=len(villages), prefix=lab.lab_id)
        )
        with step(console, _("starting the central stack and the target")):
            central = _start_central(stack, workdir, lab, rounds)
        store, manager = central.store, central.manager
        console.print(
            "  "
            + _("central stack on loopback; store {store}, Alertmanager {manager}").format(
                store=store.url, manager=manager.url
            )
        )
        console.print(
            "  "
            + _("target {url} in namespace {namespace}").format(
                url=central.target_url, namespace=lab.netns("target")
            )
        )
        configs = _write_configs(workdir, villages, central)
        console.print(
            "  "
            + _("profiles {path}: QCVN targets, n_required lowered to {rounds}").format(
                path=central.profiles, rounds=rounds
            )
        )
        with step(console, _("starting each village's agent daemon (enrollment, status, budgets)")):
            _start_daemons(stack, lab, villages, configs)
        problems, limited = asyncio.run(_rounds(lab, villages, configs, rounds, console))
        with step(console, _("waiting for the collector's verdicts and the alerts")):
            alerts = _settled_alerts(store, manager)
        console.print("[bold]" + _("What each village should show:") + "[/]")
        for village in villages:
            console.print(f"  {village.village}: " + _(village.expect))
        console.print(verdict_table(_verdict_rows(villages), store_reader(store.query)))
        if limited:
            console.print(_probe_limited_note(limited))
        console.print("[bold]" + _("Alerts in Alertmanager:") + "[/]")
        for line in _alert_lines(alerts) or ["  " + _("(none)")]:
            console.print("  " + line)
        with step(console, _("rendering the dashboards")):
            pictures, empty = _render(store, pictures_dir, console, since=started)
        problems.extend(empty)
        console.print("[bold]" + _("Where to look:") + "[/]")
        live = "" if keep else "  " + _("(live until the lab ends: --keep holds it open)")
        places = [
            ("VictoriaMetrics UI", f"{store.url}/vmui{live}"),
            ("Alertmanager", f"{manager.url}{live}"),
            *((_("dashboard"), str(picture)) for picture in pictures),
            (_("logs and data"), str(workdir))
            if logs_dir == workdir
            else (_("logs"), f"{logs_dir}  " + _("(copied there at the end)")),
        ]
        width = max(len(name) for name, _place in places)
        for name, place in places:
            console.print(f"  {name:<{width}}  {place}")
        if keep:
            console.print(_("The lab stays up; Ctrl-C to tear it down."))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        console.print(_("tearing down: agents, services, namespaces ..."))
    if logs_dir != workdir:
        _copy_logs(workdir, logs_dir)
    return 0 if not problems else 1


def _settled_alerts(store: VictoriaMetrics, manager: Alertmanager) -> list[dict[str, Any]]:
    """Every alert once the last results are judged and a failing area has had time to fire."""
    time.sleep(VERDICT_INTERVAL_S * 2 + 1)
    store.flush()
    deadline = time.monotonic() + 20
    while not manager.alerts(alertname="QcvnAreaFailing") and time.monotonic() < deadline:
        time.sleep(1)
    return manager.alerts()


def _copy_logs(workdir: Path, logs_dir: Path) -> None:
    """Every log of the run, in the folders it had in the workdir (the services have stopped)."""
    for log in workdir.rglob("*.log"):
        kept = logs_dir / log.relative_to(workdir)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, kept)


def _start_daemons(
    stack: ExitStack, lab: Lab, villages: Sequence[LabVillage], configs: dict[str, Path]
) -> None:
    """`qos-agent run` in each village, as on a probe: it publishes the enrollment and the
    retained online status with the links' budgets, and its last will says offline."""
    for village in villages:
        config = configs[village.probe]
        log = stack.enter_context(config.with_suffix(".log").open("wb"))
        lab.popen(
            village.probe,
            [venv_script("qos-agent"), "run", "--config", str(config)],
            stdout=log,
            stderr=log,
        )


@dataclass(frozen=True)
class _Central:
    store: VictoriaMetrics
    manager: Alertmanager
    socket_path: Path
    profiles: Path
    target_url: str


def _start_central(stack: ExitStack, workdir: Path, lab: Lab, rounds: int) -> _Central:
    """The central stack on loopback, and qos-target in the lab's target namespace."""
    socket_path = workdir / "mqtt.sock"
    broker = stack.enter_context(mosquitto(workdir / "mosquitto", unix_socket=socket_path))
    store = stack.enter_context(victoria_metrics(workdir / "victoria-metrics"))
    profiles = demo_profiles(workdir / "profiles.demo.toml", n_required=rounds)
    interval = ["--verdict-interval", f"{VERDICT_INTERVAL_S:g}"]
    collector = stack.enter_context(
        qos_collector(
            workdir / "collector",
            broker_url=broker.url,
            store_url=store.url,
            extra_args=[*UNSIGNED_CHECKS, "--profiles", str(profiles), *interval],
        )
    )
    # As in the central stack: the collector's own metrics reach the store through vmagent.
    stack.enter_context(
        vmagent(
            workdir / "vmagent",
            remote_write_url=f"{store.url}/api/v1/write",
            scrape_targets={"qos-collector": urllib.parse.urlsplit(collector.url).netloc},
            scrape_interval_s=SCRAPE_INTERVAL_S,
        )
    )
    manager = stack.enter_context(alertmanager(workdir / "alertmanager"))
    rules = rules_with_short_for(workdir / "rules" / "qosfleet.rules.yml", ALERT_FOR)
    stack.enter_context(
        vmalert(
            workdir / "vmalert",
            datasource_url=store.url,
            notifier_url=manager.url,
            rule_files=[rules],
            eval_interval="1s",
        )
    )
    serve = [venv_script("qos-target"), "serve", "--listen", f"0.0.0.0:{TARGET_PORT}"]
    lab.popen("target", serve)
    lab.wait_listening("target", TARGET_PORT)
    target_url = f"http://{lab.target_address(4)}:{TARGET_PORT}"
    return _Central(store, manager, socket_path, profiles, target_url)


def _write_configs(
    workdir: Path, villages: Sequence[LabVillage], central: _Central
) -> dict[str, Path]:
    configs: dict[str, Path] = {}
    for village in villages:
        path = workdir / "agents" / f"{village.probe}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = agent_config(
            village,
            target_url=central.target_url,
            broker_url=f"unix://{central.socket_path}",
            state_dir=workdir / "agents" / village.probe,
        )
        path.write_text(text, encoding="utf-8")
        # Its key, as `qos-agent enroll` makes it: results are signed, the enrollment pinned.
        create_key(workdir / "agents" / village.probe / "probe.key")
        configs[village.probe] = path
    return configs


def _render(
    store: VictoriaMetrics, out: Path, console: Console, *, since: float
) -> tuple[list[Path], list[str]]:
    """The PNGs over the lab's run, and a problem for every panel the lab left without data."""
    hours = (time.time() - since + RENDER_MARGIN_S) / 3600
    try:
        from lab.dashboard_png import render_all  # noqa: PLC0415 - matplotlib is heavy

        rendered = render_all(store.url, out, hours=hours, chosen={})
    except (ImportError, QosfleetError) as exc:
        console.print(
            "  [yellow]" + _("dashboards not rendered: {error}").format(error=exc) + "[/]"
        )
        return [], []
    empty = [
        _("{dashboard}: no data in {panel!r}").format(dashboard=dashboard.path.name, panel=title)
        for dashboard in rendered
        for title in dashboard.empty_panels
    ]
    for problem in empty:
        console.print(f"  [red]✗[/] {problem}")
    return [dashboard.path for dashboard in rendered], empty
