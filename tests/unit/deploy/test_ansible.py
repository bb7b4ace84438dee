"""deploy/ansible, checked without Ansible: the play's structure, and what it would write.

The inventory example is resolved the way Ansible would for each probe (role defaults < group
vars < host vars, templated strings rendered with jinja2), the agent.toml template is rendered for
both example probes and loaded with the agent's own `load_config`, and the rendered
`qos-agent enroll` command runs for real in a temp directory. The playbook itself runs for real,
with the Debian package it installs, in tests/e2e/test_field_install.py.
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

REPO = Path(__file__).resolve().parents[3]
ANSIBLE = REPO / "deploy" / "ansible"
PLAYBOOK = ANSIBLE / "enroll-probe.yml"
INVENTORY = ANSIBLE / "inventory.example.yml"
ROLE = ANSIBLE / "roles" / "qosfleet_probe"
TEMPLATE = "agent.toml.j2"
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
PACKAGING = REPO / "packaging" / "deb"
UNIT = REPO / "deploy" / "systemd" / "qos-agent.service"
PROBE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
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
    "check_mode",
    "throttle",
    "until",
    "retries",
    "delay",
    "ignore_errors",
}
# Variables Ansible itself provides.
MAGIC = {
    "inventory_hostname",
    "inventory_dir",
    "playbook_dir",
    "groups",
    "item",
    "hostvars",
    "ansible_facts",
    "ansible_check_mode",
}
# The facts of a Raspberry Pi running Raspberry Pi OS Bookworm (64-bit).
PI_FACTS = {"architecture": "aarch64", "service_mgr": "systemd"}
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
    env.tests["failed"] = lambda result: bool(result.get("failed"))
    env.tests["skipped"] = lambda result: bool(result.get("skipped"))
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
        "ansible_facts": PI_FACTS,
        "ansible_check_mode": False,
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


def conditions(entry: dict[str, Any], key: str) -> list[str]:
    """A task's `when` (or another condition): one expression or a list that must all hold."""
    value = entry.get(key)
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list) else []


def holds(entry: dict[str, Any], context: dict[str, Any]) -> bool:
    """Whether Ansible would run the task: every `when` expression true in `context`."""
    env = environment()
    return all(
        env.from_string("{{ (" + condition + ") | bool }}").render(context) == "True"
        for condition in conditions(entry, "when")
    )


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
            for key in ("when", "changed_when", "failed_when", "until")
            for condition in conditions(entry, key)
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


def test_paths_are_the_agents_own_and_the_packages() -> None:
    variables = host_vars(probe_hosts()[0])
    assert variables["qosfleet_user"] == SERVICE_USER
    assert Path(variables["qosfleet_config"]) == DEFAULT_PATH
    assert Path(variables["qosfleet_state_dir"]) == DEFAULT_STATE_DIR
    assert variables["qosfleet_venv"] == "/opt/qosfleet"
    # The package's maintainer script makes exactly these (the role makes none of them itself).
    postinst = (PACKAGING / "postinst").read_text(encoding="utf-8")
    assert f"--home {DEFAULT_STATE_DIR}" in postinst
    assert f"-g {SERVICE_USER} -m 0750 {DEFAULT_PATH.parent}" in postinst
    assert f"-o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {DEFAULT_STATE_DIR}" in postinst
    assert f"VENV={variables['qosfleet_venv']}" in postinst
    # The system's Python, whatever comes first on PATH.
    assert '/usr/bin/python3 -m venv "$VENV"' in postinst


def test_the_role_installs_the_package_this_repository_builds() -> None:
    variables = host_vars(probe_hosts()[0])
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    assert variables["qosfleet_agent_version"] == version
    # `bash packaging/deb/build --arch arm64` writes it there, for a Pi's aarch64.
    package = REPO / "dist" / f"qosfleet-agent_{version}_arm64.deb"
    assert Path(variables["qosfleet_deb"]).resolve() == package
    assert "dist" in (PACKAGING / "build").read_text(encoding="utf-8")
    names = [entry["name"] for entry in tasks()]
    _, copy = module(task("Copy the qosfleet-agent package"))
    _, apt = module(task("Install the qosfleet-agent package"))
    assert render(apt["deb"], variables) == render(copy["dest"], variables)
    assert names.index("Install the qosfleet-agent package") < names.index(
        "Enroll the probe (make its signing key)"
    )
    # Every documented measurement: scapy (ICMP) and speedtest-cli in the extra the package
    # installs, never in an optional one.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    agent_extra = " ".join(project["optional-dependencies"]["agent"])
    assert "scapy" in agent_extra
    assert "speedtest-cli" in agent_extra
    assert '"qosfleet[agent]==@VERSION@"' in (PACKAGING / "postinst").read_text(encoding="utf-8")


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
    # mosquitto_passwd rewrites the file: probes of one run take turns.
    assert create["throttle"] == 1
    # The file mosquitto.conf reads accounts from.
    conf = MOSQUITTO_CONF.read_text(encoding="utf-8")
    password_file = re.search(r"^password_file\s+(\S+)", conf, re.MULTILINE)
    assert password_file is not None
    assert argv[2] == password_file.group(1)


def test_the_broker_is_reloaded_whenever_it_refuses_the_probe() -> None:
    """Not a handler behind the agent's restart: a login decides, on every run."""
    variables = host_vars(probe_hosts()[0])
    broker_host = next(iter(inventory_groups()["broker"]["hosts"]))
    names = [entry["name"] for entry in tasks()]
    login = task("Log in to the broker as the probe")
    reload_task = task("Reload the broker (it re-reads its accounts)")
    relogin = task("Log in to the broker as the probe after the reload")
    order = [
        "Create the probe's broker account",
        login["name"],
        reload_task["name"],
        relogin["name"],
        "Say why the broker refuses the probe",
        "Apply pending restarts",
        "Start qos-agent now and at every boot",
    ]
    assert [names.index(name) for name in order] == sorted(names.index(name) for name in order)
    for entry in (login, reload_task, relogin):
        assert render(entry["delegate_to"], variables) == broker_host
    _, command = module(login)
    argv = render(command["argv"], variables)
    probe = probe_hosts()[0]
    assert argv[0] == "mosquitto_sub"
    assert argv[argv.index("-u") + 1] == probe
    assert argv[argv.index("-P") + 1] == FAKE_PASSWORD
    assert argv[argv.index("-t") + 1] == f"qos/v1/{probe}/receipt"  # the ACL lets it read this
    assert "-E" in argv
    assert login["no_log"] is True
    assert login["check_mode"] is False  # read-only: it also runs in check mode
    # The broker's plain listener on its own host, as mosquitto.conf opens it.
    listener = re.search(r"^listener (\d+) (\S+)$", conf_text(), re.MULTILINE)
    assert listener is not None
    assert (argv[argv.index("-p") + 1], argv[argv.index("-h") + 1]) == listener.groups()
    context = {**variables, "qosfleet_broker_login": {"rc": 5}}
    assert holds(reload_task, context)
    assert not holds(reload_task, {**variables, "qosfleet_broker_login": {"rc": 0}})
    _, reload_command = module(reload_task)
    assert reload_command["argv"] == "{{ qosfleet_broker_reload }}"
    assert variables["qosfleet_broker_reload"] == ["systemctl", "reload", "mosquitto"]
    assert module(relogin)[1] == module(login)[1]
    # The only handler is the agent's restart: nothing of the broker waits behind it.
    assert [entry["name"] for entry in handlers()] == ["Restart qos-agent"]


def conf_text() -> str:
    return MOSQUITTO_CONF.read_text(encoding="utf-8")


def test_check_mode_on_a_new_probe_skips_what_needs_the_package() -> None:
    variables = host_vars(probe_hosts()[0], ansible_check_mode=True)
    # What check mode registers on a probe without the package: would-change, no output.
    new_probe = {
        **variables,
        "qosfleet_apt": {"changed": True},
        "qosfleet_deb_copy": {"changed": True},
        "qosfleet_package": {"changed": False, "skipped": True},
        "qosfleet_enrollment": {"changed": True, "stdout": ""},
    }
    for name in (
        "Install the qosfleet-agent package",
        "Copy the fleet CA",
        "Show the new probe's public key",
        "Write the agent configuration from the inventory",
        "Log in to the broker as the probe after the reload",
    ):
        assert not holds(task(name), {**new_probe, "qosfleet_broker_login": {"rc": 5}}), name
    # For real, a new key is shown.
    enrolled = {**new_probe, "ansible_check_mode": False}
    assert holds(task("Show the new probe's public key"), enrolled)


def test_the_unit_comes_with_the_package_and_is_enabled() -> None:
    variables = host_vars(probe_hosts()[0])
    build = (PACKAGING / "build").read_text(encoding="utf-8")
    assert '"$repo/deploy/systemd/qos-agent.service" "$root/lib/systemd/system/' in build
    exec_start = re.search(r"^ExecStart=(\S+)", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    assert exec_start is not None
    assert exec_start.group(1) == f"{variables['qosfleet_venv']}/bin/qos-agent"
    start = task("Start qos-agent now and at every boot")
    _, service = module(start)
    assert service == {
        "name": "qos-agent",
        "enabled": True,
        "state": "started",
        "daemon_reload": True,
    }
    assert holds(start, variables)
    # Where systemd does not run the machine, the run says so instead of failing.
    elsewhere = {**variables, "ansible_facts": {**PI_FACTS, "service_mgr": "sysvinit"}}
    assert not holds(start, elsewhere)
    assert holds(task("Say the agent was not started"), elsewhere)


# Letters only Vietnamese writes (the operator running the play reads Vietnamese first).
VIETNAMESE = re.compile(r"[ăâđêôơưĂÂĐÊÔƠƯạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]")


def test_every_message_the_play_shows_reads_vietnamese_then_english() -> None:
    messages = {
        entry["name"]: str(arguments.get("msg") or arguments.get("fail_msg"))
        for entry in tasks()
        for _name, arguments in [module(entry)]
        if isinstance(arguments, dict) and ("msg" in arguments or "fail_msg" in arguments)
    }
    assert len(messages) >= 4
    for name, message in messages.items():
        vietnamese, _sep, english = message.partition(" / EN: ")
        assert VIETNAMESE.search(vietnamese), name
        assert not VIETNAMESE.search(english), name
        assert re.search(r"\b(the|is|in|not)\b", english), name
