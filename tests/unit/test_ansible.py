"""deploy/ansible, checked without Ansible: the play's structure, and what it would write.

The inventory example is resolved the way Ansible would for each probe (role defaults < group
vars < host vars, templated strings rendered with jinja2), the agent.toml template is rendered for
both example probes and loaded with the agent's own `load_config`, and the rendered
`qos-agent enroll` command runs for real in a temp directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
import yaml

from agent.commands.enroll import SERVICE_USER
from agent.config import DEFAULT_PATH, DEFAULT_STATE_DIR, load_config
from lab.services import venv_script
from tests.certificates import make_certificates

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "deploy" / "ansible"
PLAYBOOK = ANSIBLE / "enroll-probe.yml"
INVENTORY = ANSIBLE / "inventory.example.yml"
ROLE = ANSIBLE / "roles" / "qosfleet_probe"
TEMPLATE = "agent.toml.j2"
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
UNIT_DEST = "/etc/systemd/system/qos-agent.service"
PROBE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
REQUIRED_PACKAGES = {"python3-venv", "iperf3", "modemmanager"}
# Keys a task may carry besides its one module (the ones this role uses, and common ones).
TASK_KEYWORDS = {
    "name",
    "when",
    "loop",
    "register",
    "notify",
    "no_log",
    "delegate_to",
    "run_once",
    "changed_when",
    "failed_when",
    "become",
    "tags",
    "vars",
}
# Variables Ansible itself provides.
MAGIC = {"inventory_hostname", "inventory_dir", "playbook_dir", "groups", "item", "hostvars"}
FAKE_PASSWORD = "Xq3pLmZ8vT2nR7wK"  # what the password lookup would generate


def lookup(plugin: str, term: str) -> str:
    """Ansible's lookup(): only the password plugin is used, to make one password per probe."""
    assert plugin == "ansible.builtin.password", plugin
    assert "/credentials/" in term
    assert "length=32" in term
    return FAKE_PASSWORD


def to_json(value: Any, **options: Any) -> str:
    return json.dumps(value, **options)


def environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """jinja2 with the Ansible filters, tests and template options this role relies on."""
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,  # the template module's default
        keep_trailing_newline=True,
    )
    env.filters["to_json"] = to_json
    env.filters["from_json"] = json.loads
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    env.filters["basename"] = os.path.basename
    env.filters["bool"] = bool
    env.tests["match"] = lambda value, pattern: re.match(pattern, str(value)) is not None
    env.tests["changed"] = lambda result: bool(result.get("changed"))
    env.globals["lookup"] = lookup
    return env


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def inventory_groups() -> dict[str, Any]:
    groups: dict[str, Any] = load_yaml(INVENTORY)["all"]["children"]
    return groups


def probe_hosts() -> list[str]:
    return list(inventory_groups()["probes"]["hosts"])


def defaults() -> dict[str, Any]:
    values: dict[str, Any] = load_yaml(ROLE / "defaults" / "main.yml")
    return values


def tasks() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load_yaml(ROLE / "tasks" / "main.yml")
    return result


def handlers() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load_yaml(ROLE / "handlers" / "main.yml")
    return result


def task(name: str) -> dict[str, Any]:
    return next(entry for entry in tasks() if entry["name"] == name)


def module(entry: dict[str, Any]) -> tuple[str, Any]:
    keys = [key for key in entry if key not in TASK_KEYWORDS]
    assert len(keys) == 1, f"{entry.get('name')}: one module per task, got {keys}"
    return keys[0], entry[keys[0]]


def render(value: Any, context: dict[str, Any]) -> Any:
    """Template every string in `value`, as Ansible does when it uses a variable."""
    if isinstance(value, str):
        return environment().from_string(value).render(context) if "{" in value else value
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    return value


def host_vars(hostname: str, **overrides: Any) -> dict[str, Any]:
    """A probe's variables: role defaults < group vars < host vars < overrides, all rendered."""
    groups = inventory_groups()
    probes = groups["probes"]
    variables = {
        **defaults(),
        **probes.get("vars", {}),
        **probes["hosts"][hostname],
        **overrides,
    }
    magic = {
        "inventory_hostname": hostname,
        "inventory_dir": str(ANSIBLE),
        "playbook_dir": str(ANSIBLE),
        "groups": {name: list(group.get("hosts", {})) for name, group in groups.items()},
    }
    # Variables refer to variables: render until nothing changes (Ansible resolves lazily).
    for _ in range(10):
        rendered = render(variables, {**magic, **variables})
        if rendered == variables:
            break
        variables = rendered
    return {**magic, **variables}


def render_config(hostname: str, **overrides: Any) -> str:
    loader = jinja2.FileSystemLoader(ROLE / "templates")
    return environment(loader).get_template(TEMPLATE).render(host_vars(hostname, **overrides))


def all_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from all_strings(item)


def test_the_playbook_runs_the_role_on_probes_as_root() -> None:
    plays = load_yaml(PLAYBOOK)
    assert len(plays) == 1
    play = plays[0]
    assert play["hosts"] == "probes"
    assert play["become"] is True
    assert [entry["role"] for entry in play["roles"]] == [ROLE.name]
    assert (ANSIBLE / "roles" / ROLE.name / "tasks" / "main.yml").is_file()


def test_every_task_is_named_and_uses_a_builtin_module() -> None:
    for entry in [*tasks(), *handlers()]:
        assert entry.get("name"), entry
        name, _ = module(entry)
        assert name.startswith("ansible.builtin."), f"{entry['name']}: use the FQCN, not {name}"


def test_every_notified_handler_exists() -> None:
    names = {entry["name"] for entry in handlers()}
    for entry in tasks():
        notify = entry.get("notify", [])
        for handler in [notify] if isinstance(notify, str) else notify:
            assert handler in names, f"{entry['name']} notifies unknown {handler}"


def test_the_inventory_example_has_two_probes_and_a_broker() -> None:
    assert len(probe_hosts()) == 2
    assert inventory_groups()["broker"]["hosts"]
    for hostname in probe_hosts():
        assert PROBE_ID.match(hostname), f"{hostname} is not a probe id"
        location = inventory_groups()["probes"]["hosts"][hostname]["qosfleet_location"]
        assert isinstance(location["province_code"], str), "quote the codes"
        assert isinstance(location["commune_code"], str), "quote the codes"
        assert {"village", "lat", "lon"} <= location.keys()


def test_every_variable_the_role_uses_is_defined() -> None:
    per_host = [set(inventory_groups()["probes"]["hosts"][host]) for host in probe_hosts()]
    defined = (
        set(defaults())
        | set(inventory_groups()["probes"].get("vars", {}))
        | set.intersection(*per_host)
        | {entry["register"] for entry in tasks() if "register" in entry}
        | MAGIC
    )
    env = environment()
    sources = [
        *(text for entry in [*tasks(), *handlers()] for text in all_strings(entry)),
        *(
            "{{ " + condition + " }}"
            for entry in tasks()
            for key in ("when", "changed_when", "failed_when")
            for condition in ([entry[key]] if isinstance(entry.get(key), str) else [])
        ),
        *(
            "{{ " + check + " }}"
            for check in task("Check the probe's inventory entry")["ansible.builtin.assert"]["that"]
        ),
        (ROLE / "templates" / TEMPLATE).read_text(encoding="utf-8"),
    ]
    used: set[str] = set()
    for source in sources:
        used |= jinja2.meta.find_undeclared_variables(env.parse(source))
    assert used - defined == set(), "undefined in defaults and inventory"


def test_paths_are_the_agents_own() -> None:
    variables = host_vars(probe_hosts()[0])
    assert variables["qosfleet_user"] == SERVICE_USER
    assert Path(variables["qosfleet_config"]) == DEFAULT_PATH
    assert Path(variables["qosfleet_state_dir"]) == DEFAULT_STATE_DIR
    assert variables["qosfleet_venv"] == "/opt/qosfleet"
    assert set(variables["qosfleet_packages"]) >= REQUIRED_PACKAGES
    _, apt = module(task("Install the packages the agent uses"))
    assert apt["name"] == "{{ qosfleet_packages }}"
    _, user = module(task("Create the service user"))
    assert user["name"] == "{{ qosfleet_user }}"
    assert user["system"] is True
    _, pip = module(task("Install qosfleet with the agent extra"))
    argv = render(pip["argv"], variables)
    assert argv[:2] == ["/opt/qosfleet/bin/pip", "install"]
    # The wheel `pip wheel --no-deps -w dist .` makes at the repository root, this version.
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    wheel = f"qosfleet-{version}-py3-none-any.whl"
    assert Path(variables["qosfleet_wheel"]).resolve() == REPO / "dist" / wheel
    assert argv[-1] == f"/opt/qosfleet/dist/{wheel}[agent]"


@pytest.mark.parametrize("hostname", probe_hosts())
def test_the_config_renders_and_the_agent_loads_it(tmp_path: Path, hostname: str) -> None:
    assert 'ca_file = "/etc/qosfleet/ca.crt"' in render_config(hostname)
    # The agent refuses a CA file it cannot read or use: stand one in where the playbook puts it.
    ca_file, _, _ = make_certificates(tmp_path)
    path = tmp_path / "agent.toml"
    path.write_text(render_config(hostname, qosfleet_broker_ca_dest=str(ca_file)), encoding="utf-8")
    config = load_config(path)
    entry = inventory_groups()["probes"]["hosts"][hostname]
    assert config.probe_id == hostname
    assert config.location.village == entry["qosfleet_location"]["village"]
    assert config.location.commune_code == entry["qosfleet_location"]["commune_code"]
    assert [(link.interface, link.setting) for link in config.links] == [
        (link["interface"], link.get("setting")) for link in entry["qosfleet_links"]
    ]
    assert config.broker.username == hostname
    assert config.broker.password == FAKE_PASSWORD
    assert config.broker.url.startswith("mqtts://")
    assert config.broker.ca_file == str(ca_file)
    assert config.key_path == DEFAULT_STATE_DIR / "probe.key"
    assert len(config.targets) == len(inventory_groups()["probes"]["vars"]["qosfleet_targets"])


def test_the_config_takes_plans_budgets_and_tuning(tmp_path: Path) -> None:
    hostname = probe_hosts()[0]
    tuning = {"schedule": {"speed_mean_s": 10800.0, "flows": 8}, "publish": {"window": 20}}
    path = tmp_path / "agent.toml"
    path.write_text(
        render_config(hostname, qosfleet_agent_tuning=tuning, qosfleet_broker_ca=""),
        encoding="utf-8",
    )
    config = load_config(path)
    fixed = config.link_config("eth0")
    assert fixed.plan is not None
    assert fixed.plan.download_mbps == 300
    assert config.link_config("wwan0").budget_bytes == 3_000_000_000
    assert config.schedule.speed_mean_s == 10800.0
    assert config.schedule.flows == 8
    assert config.publish.window == 20
    assert config.broker.ca_file is None


def test_the_template_task_validates_with_the_agent(tmp_path: Path) -> None:
    entry = task("Write the agent configuration from the inventory")
    _, template = module(entry)
    assert template["src"] == TEMPLATE
    assert template["mode"] == "0640"
    venv = str(Path(venv_script("qos-agent")).parent.parent)
    variables = host_vars(probe_hosts()[0], qosfleet_venv=venv)
    # The playbook installs the CA before it writes the config.
    ca_file, _, _ = make_certificates(tmp_path)
    rendered = render_config(probe_hosts()[0], qosfleet_broker_ca_dest=str(ca_file))
    good = tmp_path / "good.toml"
    good.write_text(rendered, encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(rendered.replace("probe_id", "probe_name"))
    validate = render(template["validate"], variables)
    for path, code in ((good, 0), (bad, 1)):
        argv = shlex.split(validate.replace("%s", shlex.quote(str(path))))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == code, done.stderr


def test_enroll_makes_the_key_once_before_the_config_is_written() -> None:
    names = [entry["name"] for entry in tasks()]
    enroll = task("Enroll the probe (make its signing key)")
    assert names.index(enroll["name"]) < names.index(
        "Write the agent configuration from the inventory"
    )
    _, command = module(enroll)
    variables = host_vars(probe_hosts()[0])
    assert Path(render(command["creates"], variables)) == DEFAULT_STATE_DIR / "probe.key"
    assert enroll["no_log"] is True, "the command line holds the broker password"


@pytest.mark.parametrize("hostname", probe_hosts())
def test_the_rendered_enroll_command_runs(tmp_path: Path, hostname: str) -> None:
    _, command = module(task("Enroll the probe (make its signing key)"))
    venv = str(Path(venv_script("qos-agent")).parent.parent)
    variables = host_vars(
        hostname,
        qosfleet_venv=venv,
        qosfleet_config=str(tmp_path / "etc" / "agent.toml"),
        qosfleet_state_dir=str(tmp_path / "state"),
    )
    argv = shlex.split(render(command["cmd"], variables))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    meta = json.loads(done.stdout)
    assert meta["probe_id"] == hostname
    assert meta["public_key"]
    key = Path(render(command["creates"], variables))
    assert key == tmp_path / "state" / "probe.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    written = load_config(tmp_path / "etc" / "agent.toml")
    assert written.probe_id == hostname
    entry = inventory_groups()["probes"]["hosts"][hostname]
    assert [link.setting for link in written.links] == [
        link.get("setting") for link in entry["qosfleet_links"]
    ]
    assert written.broker.password == FAKE_PASSWORD


def test_the_broker_account_is_made_on_the_broker_host() -> None:
    variables = host_vars(probe_hosts()[0])
    broker_host = next(iter(inventory_groups()["broker"]["hosts"]))
    names = [entry["name"] for entry in tasks()]
    look, create = (
        task("Look for the probe's broker account"),
        task("Create the probe's broker account"),
    )
    assert names.index(look["name"]) < names.index(create["name"])
    for entry in (look, create):
        assert render(entry["delegate_to"], variables) == broker_host
    _, command = module(create)
    argv = render(command["argv"], variables)
    assert argv[:2] == ["mosquitto_passwd", "-b"]
    assert argv[3:] == [probe_hosts()[0], FAKE_PASSWORD]
    assert create["no_log"] is True
    # The file mosquitto.conf reads accounts from.
    conf = MOSQUITTO_CONF.read_text(encoding="utf-8")
    password_file = re.search(r"^password_file\s+(\S+)", conf, re.MULTILINE)
    assert password_file is not None
    assert argv[2] == password_file.group(1)
    reload_handler = next(entry for entry in handlers() if entry["name"] == create["notify"])
    assert render(reload_handler["delegate_to"], variables) == broker_host
    # The account exists before the agent first connects.
    assert names.index("Apply pending restarts and the broker reload") < names.index(
        "Start qos-agent now and at every boot"
    )


def test_the_unit_is_installed_and_enabled() -> None:
    variables = host_vars(probe_hosts()[0])
    _, copy = module(task("Install the qos-agent unit"))
    unit = Path(render(copy["src"], variables)).resolve()
    assert unit == REPO / "deploy" / "systemd" / "qos-agent.service"
    assert unit.is_file(), "deploy/systemd/qos-agent.service is missing"
    assert copy["dest"] == UNIT_DEST
    exec_start = re.search(r"^ExecStart=(\S+)", unit.read_text(encoding="utf-8"), re.MULTILINE)
    assert exec_start is not None
    assert exec_start.group(1) == f"{variables['qosfleet_venv']}/bin/qos-agent"
    _, service = module(task("Start qos-agent now and at every boot"))
    assert service == {
        "name": "qos-agent",
        "enabled": True,
        "state": "started",
        "daemon_reload": True,
    }
