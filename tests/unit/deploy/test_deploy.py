"""deploy/compose.yaml, checked as a file (there may be no docker engine where tests run).

Every image is pinned, every host path it mounts is a file of this repository, the rule file and
Alertmanager config are the ones promtool / amtool test, Grafana reads the provisioning this
repository generates, the collector is started with flags `qos-collector serve` accepts, and every
URL between services names a compose service and a port that service listens on.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
import urllib.parse
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from agent.cli import REFUSED
from lab.alerting import ALERTMANAGER_CONFIG, RULE_FILES, VMAGENT_CONFIG
from lab.services import venv_script

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
PROVISIONING = REPO / "dashboards" / "provisioning"
DASHBOARDS_JSON = REPO / "dashboards" / "json"
AGENT_UNIT = DEPLOY / "systemd" / "qos-agent.service"

EXPECTED_SERVICES = {
    "mosquitto",
    "collector",
    "victoria-metrics",
    "vmagent",
    "vmalert",
    "alertmanager",
    "grafana",
}
VICTORIAMETRICS_IMAGES = ("victoria-metrics", "vmagent", "vmalert")
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
GRAFANA_DEFAULT_PORT = 3000


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def command(name: str) -> list[str]:
    argv = services()[name].get("command", [])
    assert isinstance(argv, list), f"{name}: write `command` as a list, not a shell string"
    return [str(item) for item in argv]


def repeated(argv: list[str], name: str) -> list[str]:
    """Every value of a flag given more than once (`-rule=a -rule=b` -> [a, b])."""
    return [item.split("=", 1)[1] for item in argv if item.startswith(f"-{name}=")]


def flags(argv: list[str]) -> dict[str, str]:
    """`-a=1`, `--b=2` and `--c 3` -> {"a": "1", "b": "2", "c": "3"}; a bare `--d` -> ""."""
    parsed: dict[str, str] = {}
    index = 0
    while index < len(argv):
        item = argv[index]
        index += 1
        if not item.startswith("-"):
            continue
        name, equals, value = item.lstrip("-").partition("=")
        if not equals and index < len(argv) and not argv[index].startswith("-"):
            value = argv[index]
            index += 1
        parsed[name] = value
    return parsed


def port_of(address: str) -> int:
    """`:8428`, `0.0.0.0:9108` -> the port."""
    return int(address.rsplit(":", 1)[1])


def bind_mounts(name: str) -> list[tuple[str, str]]:
    """(host path as written, container path) of a service's bind mounts."""
    mounts = []
    for volume in services()[name].get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def host_path(name: str, container_path: str) -> Path:
    """The repository file a service sees at `container_path` (a file or inside a directory)."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(name):
        mounted = PurePosixPath(target)
        if wanted == mounted or mounted in wanted.parents:
            return (DEPLOY / source / wanted.relative_to(mounted)).resolve()
    pytest.fail(f"{name}: nothing is mounted at {container_path}")


def mosquitto_listeners() -> dict[int, bool]:
    """Port -> whether the listener has TLS, from the mosquitto.conf compose mounts."""
    conf = host_path("mosquitto", "/mosquitto/config/mosquitto.conf")
    listeners: dict[int, bool] = {}
    current: int | None = None
    for raw in conf.read_text(encoding="utf-8").splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "listener":
            current = int(words[1])
            listeners[current] = False
        elif words[0] == "certfile" and current is not None:
            listeners[current] = True
    return listeners


def listen_ports(name: str) -> set[int]:
    """The ports a service listens on inside the compose network, from its own flags."""
    options = flags(command(name))
    match name:
        case "mosquitto":
            return set(mosquitto_listeners())
        case "victoria-metrics" | "vmagent" | "vmalert":
            return {port_of(options["httpListenAddr"])}
        case "alertmanager":
            return {port_of(options["web.listen-address"])}
        case "collector":
            return {port_of(options[key]) for key in ("metrics-listen", "api-listen")}
        case "grafana":
            environment = services()[name].get("environment", {})
            return {int(environment.get("GF_SERVER_HTTP_PORT", GRAFANA_DEFAULT_PORT))}
    pytest.fail(f"no rule for the ports of {name}")


def assert_points_at(url: str, service: str, schemes: tuple[str, ...] = ("http",)) -> None:
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme in schemes, url
    assert parts.hostname == service, f"{url} should name the compose service {service}"
    assert parts.port in listen_ports(service), (
        f"{url}: {service} listens on {listen_ports(service)}"
    )


def test_the_stack_has_every_service() -> None:
    assert set(services()) == EXPECTED_SERVICES


def test_every_image_is_pinned_or_built_here() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    for name, service in services().items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repository, _, tag = str(image).rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert EXACT_VERSION.match(tag), f"{name}: {image} is not pinned to an exact version"
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE
            assert tag == version, f"{name}: tag the built image with the project version"


def test_victoriametrics_components_share_one_release() -> None:
    tags = {str(services()[name]["image"]).rpartition(":")[2] for name in VICTORIAMETRICS_IMAGES}
    assert len(tags) == 1, tags


def test_grafana_is_the_release_the_dashboards_are_generated_for() -> None:
    dev = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["dev"]
    sdk = next(spec for spec in dev if spec.startswith("grafana-foundation-sdk"))
    sdk_release = sdk.rpartition("!")[2]  # 1769699379!11.6.0 -> 11.6.0
    grafana = str(services()["grafana"]["image"]).rpartition(":")[2]
    assert grafana.split(".")[:2] == sdk_release.split(".")[:2]


def test_the_dockerfile_pins_python_311_and_installs_the_collector_extra() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base.group(1)), base.group(1)
    assert '"/src[collector]"' in text
    assert re.search(r"^USER\s+(?!root)\S+", text, re.MULTILINE), "run as an unprivileged user"
    assert re.search(r'^ENTRYPOINT \["qos-collector"\]', text, re.MULTILINE)
    assert command("collector")[0] == "serve"


def test_every_service_restarts_and_has_a_healthcheck_on_its_own_port() -> None:
    for name, service in services().items():
        assert service.get("restart") in {"always", "unless-stopped"}, name
        check = service.get("healthcheck", {})
        test = check.get("test")
        assert isinstance(test, list), f"{name}: healthcheck.test as a list"
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        ports = {int(port) for port in re.findall(r"127\.0\.0\.1[: ](\d+)", " ".join(test))}
        assert ports, f"{name}: the healthcheck should ask the service on loopback"
        assert ports <= listen_ports(name), f"{name}: healthcheck on {ports}"


def test_dependencies_wait_for_healthy_services() -> None:
    for name, service in services().items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, name
            assert "healthcheck" in services()[dependency]


def test_mounted_host_paths_exist_in_the_repository() -> None:
    for name in services():
        for source, _ in bind_mounts(name):
            path = (DEPLOY / source).resolve()
            assert path.exists(), f"{name}: {source} does not exist"
            assert path.is_relative_to(REPO), f"{name}: {source} is outside the repository"


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(compose()["volumes"])
    used = {
        str(volume).split(":")[0]
        for service in services().values()
        for volume in service.get("volumes", [])
        if not str(volume).startswith((".", "/"))
    }
    assert used == declared


def test_secrets_and_configs_are_declared_and_live_outside_the_repository() -> None:
    declared_secrets = compose()["secrets"]
    for name, service in services().items():
        for secret in service.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            assert source in declared_secrets, f"{name}: secret {source} is not declared"
        for config in service.get("configs", []):
            assert config["source"] in compose()["configs"], name
    for name, secret in declared_secrets.items():
        assert str(secret["file"]).startswith("${QOSFLEET_SECRETS_DIR"), name


def mounted_secrets(service: str) -> set[str]:
    """Where compose mounts the service's secrets (short or long syntax)."""
    return {
        f"/run/secrets/{secret if isinstance(secret, str) else secret['source']}"
        for secret in services()[service].get("secrets", [])
    }


def test_no_secret_is_written_inline() -> None:
    environment = {
        key: str(value)
        for service in services().values()
        for key, value in service.get("environment", {}).items()
    }
    for key, value in environment.items():
        if re.search("PASSWORD|SECRET|TOKEN", key) and not key.endswith("__FILE"):
            assert value.startswith("${"), f"{key} is written inline"
    collector = flags(command("collector"))
    assert "broker-password" not in collector, "a password on the command line shows in ps"
    password_file = collector["broker-password-file"]
    assert password_file.startswith("/run/secrets/")
    assert password_file in mounted_secrets("collector")


def test_every_variable_is_in_the_env_example() -> None:
    used = set(VARIABLE.findall(COMPOSE.read_text(encoding="utf-8")))
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used - listed == set(), "add these to deploy/.env.example"


def test_vmalert_loads_the_rule_files_promtool_tests() -> None:
    rules = repeated(command("vmalert"), "rule")
    assert sorted(host_path("vmalert", rule) for rule in rules) == sorted(
        path.resolve() for path in RULE_FILES
    )
    for path in RULE_FILES:
        tests = yaml.safe_load(path.with_name(path.name.replace(".yml", ".test.yml")).read_text())
        assert tests["rule_files"] == [path.name]


def test_alertmanager_loads_the_config_amtool_checks() -> None:
    config = flags(command("alertmanager"))["config.file"]
    assert host_path("alertmanager", config) == ALERTMANAGER_CONFIG.resolve()


def test_grafana_reads_the_provisioning_of_this_repository() -> None:
    assert host_path("grafana", "/etc/grafana/provisioning") == PROVISIONING.resolve()
    files = sorted(PROVISIONING.glob("*/*.yaml"))
    assert {path.parent.name for path in files} == {"dashboards", "datasources"}
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "qosfleet.yaml").read_text())
    for entry in provider["providers"]:
        mounted = host_path("grafana", entry["options"]["path"])
        assert mounted.parent == DASHBOARDS_JSON.resolve()  # one folder per language
        assert list(mounted.glob("*.json")), "no dashboards to load"
    sources = yaml.safe_load((PROVISIONING / "datasources" / "victoriametrics.yaml").read_text())
    for source in sources["datasources"]:
        assert_points_at(source["url"], "victoria-metrics")


@cache
def collector_serve_flags() -> frozenset[str]:
    done = subprocess.run(
        [venv_script("qos-collector"), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return frozenset(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", done.stdout))


def test_the_collector_gets_only_flags_qos_collector_serve_accepts() -> None:
    given = set(flags(command("collector")[1:]))
    assert given, "the collector has no flags"
    assert given - collector_serve_flags() == set()


def test_the_collector_reaches_broker_and_store_by_service_name() -> None:
    options = flags(command("collector"))
    assert_points_at(options["broker"], "mosquitto", schemes=("mqtts",))
    broker_port = urllib.parse.urlsplit(options["broker"]).port
    assert broker_port is not None
    assert mosquitto_listeners()[broker_port], "the collector's listener must have TLS"
    assert options["broker-ca"] in mounted_secrets("collector")
    assert_points_at(options["store"], "victoria-metrics")


def test_vmalert_and_vmagent_reach_the_store_and_alertmanager() -> None:
    alerting = flags(command("vmalert"))
    for key in ("datasource.url", "remoteWrite.url", "remoteRead.url"):
        assert_points_at(alerting[key], "victoria-metrics")
    assert_points_at(alerting["notifier.url"], "alertmanager")
    scraping = flags(command("vmagent"))
    assert_points_at(scraping["remoteWrite.url"], "victoria-metrics")


def scrape_jobs() -> dict[str, list[str]]:
    """Job name -> targets of the scrape config compose mounts into vmagent."""
    config = yaml.safe_load(VMAGENT_CONFIG.read_text(encoding="utf-8"))
    return {
        job["job_name"]: [
            target for static in job["static_configs"] for target in static["targets"]
        ]
        for job in config["scrape_configs"]
    }


def test_vmagent_scrapes_every_service_with_metrics_on_the_port_it_listens_on() -> None:
    mounted = flags(command("vmagent"))["promscrape.config"]
    assert host_path("vmagent", mounted) == VMAGENT_CONFIG.resolve()
    served_by = {
        "qos-collector": "collector",
        "victoria-metrics": "victoria-metrics",
        "vmagent": "vmagent",
        "vmalert": "vmalert",
        "alertmanager": "alertmanager",
        "grafana": "grafana",
    }
    jobs = scrape_jobs()
    # mosquitto has no /metrics: the collector's broker metrics stand for it.
    assert set(services()) - {served_by[job] for job in jobs} == {"mosquitto"}
    for job, targets in jobs.items():
        assert len(targets) == 1, job
        assert_points_at(f"http://{targets[0]}/metrics", served_by[job])
    collector_metrics = port_of(flags(command("collector"))["metrics-listen"])
    assert jobs["qos-collector"] == [f"collector:{collector_metrics}"]
    # Grafana's $__rate_interval assumes the scrape interval its datasource names.
    scrape = yaml.safe_load(VMAGENT_CONFIG.read_text(encoding="utf-8"))
    sources = yaml.safe_load((PROVISIONING / "datasources" / "victoriametrics.yaml").read_text())
    assert (
        scrape["global"]["scrape_interval"] == sources["datasources"][0]["jsonData"]["timeInterval"]
    )


def test_the_stack_alerts_name_the_jobs_vmagent_scrapes() -> None:
    rules = RULE_FILES[1].read_text(encoding="utf-8")
    for job in re.findall(r'job="([^"]+)"', rules):
        assert job in scrape_jobs(), job


def test_alertmanager_gets_the_secret_files_its_config_names() -> None:
    config = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    named = set(re.findall(r"(/run/secrets/[a-z_]+)", config))
    assert named, "the SMTP password and webhook token are secret files"
    assert named == mounted_secrets("alertmanager")


def test_grafana_needs_a_login_and_gives_new_accounts_the_viewer_role() -> None:
    environment = {key: str(value) for key, value in services()["grafana"]["environment"].items()}
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert environment["GF_USERS_AUTO_ASSIGN_ORG_ROLE"] == "Viewer"
    assert environment["GF_USERS_VIEWERS_CAN_EDIT"] == "false"
    password_file = environment["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert password_file in mounted_secrets("grafana")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment


def test_published_ports_lead_to_listening_ports() -> None:
    for name, service in services().items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            assert int(parts[-1]) in listen_ports(name), f"{name}: {mapping}"
            if name != "mosquitto":
                # Only the broker faces the probes; the rest sits behind the operator's proxy.
                assert parts[0] == "127.0.0.1", f"{name}: publish {mapping} on loopback only"
    broker_ports = {
        int(str(mapping).split(":")[-1]) for mapping in services()["mosquitto"]["ports"]
    }
    assert all(mosquitto_listeners()[port] for port in broker_ports), "publish TLS listeners only"


def _unit_settings(section: str) -> dict[str, list[str]]:
    """deploy/systemd/qos-agent.service's `Key=value` lines of one section (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    current = None
    for line in AGENT_UNIT.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("["):
            current = text
        elif current == f"[{section}]" and "=" in text and not text.startswith("#"):
            key, _, value = text.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_agent_unit_restarts_on_a_crash_but_not_on_a_refusal() -> None:
    """A refusal (bad config, CA file, read-only state) needs a person: no restart loop."""
    service = _unit_settings("Service")
    assert service["Restart"] in (["always"], ["on-failure"])
    prevented = {
        status for value in service["RestartPreventExitStatus"] for status in value.split()
    }
    assert str(REFUSED) in prevented
    assert float(service["RestartSec"][0]) >= 5, "a crash loop must not spin"
    assert service["ExecStart"][0].split()[1] == "run"
