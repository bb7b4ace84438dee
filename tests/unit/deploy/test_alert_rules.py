"""The alert rules and Alertmanager config as files: valid for every tool that loads them.

`promtool test rules` runs deploy/alerts/*.rules.test.yml, where each rule fires where it should
and stays quiet where it should not. vmalert and amtool check what they will load, and amtool
says which receiver each kind of alert reaches. A tool that is not installed skips its test
(bash scripts/setup installs them all).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.alerting import ALERTMANAGER_CONFIG, CENTRAL_RULES_FILE, RULE_FILES, RULES_FILE

DOCS = Path(__file__).resolve().parents[3] / "docs" / "operate-central.md"
# Always firing, by design: it is never quiet and has no severity.
HEARTBEAT = "Watchdog"
AREA_LABELS = ("level", "province", "commune", "village", "technology", "operator", "profile")


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; bash scripts/setup)")
    return path


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def unit_tests_of(rules_file: Path) -> Path:
    return rules_file.with_name(rules_file.name.replace(".rules.yml", ".rules.test.yml"))


def groups(rules_file: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = document["groups"]
    return found


def rules(rules_file: Path = RULES_FILE) -> list[dict[str, Any]]:
    return [rule for group in groups(rules_file) for rule in group["rules"]]


def all_rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for rule in rules(path)]


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda path: path.name)
def test_promtool_accepts_the_rules(rules_file: Path) -> None:
    done = run(
        [tool("promtool", "prometheus"), "check", "rules", rules_file.name], rules_file.parent
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda path: path.name)
def test_promtool_rule_tests_pass(rules_file: Path) -> None:
    done = run(
        [tool("promtool", "prometheus"), "test", "rules", unit_tests_of(rules_file).name],
        rules_file.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda path: path.name)
def test_vmalert_accepts_the_rules(rules_file: Path) -> None:
    """vmalert parses with MetricsQL: a rule promtool likes may still not load there."""
    done = run([tool("vmalert", "victoria-metrics"), "-dryRun", f"-rule={rules_file}"], Path.cwd())
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    done = run(
        [tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTMANAGER_CONFIG)],
        Path.cwd(),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_says_how_bad_and_what_to_do() -> None:
    for rule in all_rules():
        severities = {"none"} if rule["alert"] == HEARTBEAT else {"critical", "warning"}
        assert rule["labels"]["severity"] in severities, rule["alert"]
        # English, and Vietnamese beside it for the people who read it first.
        expected = {"summary", "description", "summary_vi", "description_vi"}
        assert expected <= rule["annotations"].keys(), rule["alert"]


def test_alerts_about_the_central_stack_go_to_the_operator() -> None:
    """`scope: stack` routes to the operator: every rule about the stack's services (the
    collector's and central.rules.yml's) has it, and no rule about an area or a probe."""
    collector = next(g for g in groups(RULES_FILE) if g["name"] == "qosfleet-collector")
    stack = {rule["alert"] for rule in collector["rules"] if "qos_collector_" in rule["expr"]}
    stack -= {"ProbeEnrollmentDisputed"}  # a probe's identity: for whoever approves probes
    stack |= {rule["alert"] for rule in rules(CENTRAL_RULES_FILE)} - {HEARTBEAT}
    scoped = {rule["alert"] for rule in all_rules() if rule["labels"].get("scope") == "stack"}
    assert scoped == stack


def test_verdict_alerts_name_their_part_and_the_national_target_never_pages() -> None:
    """The regulation and the fixed 1 Gb/s programme target are two parts, never merged: an
    alert on a verdict says which part it comes from, and the programme's is a warning at most."""
    verdict_rules = [rule for rule in rules() if "qos_compliance_" in rule["expr"]]
    parts = {rule["alert"]: rule["labels"].get("part") for rule in verdict_rules}
    assert set(parts.values()) == {"regulation", "national_target"}, parts
    for rule in verdict_rules:
        reads_national = "national_target" in rule["expr"]
        assert reads_national == (rule["labels"]["part"] == "national_target"), rule["alert"]
        if reads_national:
            assert rule["labels"]["severity"] == "warning", rule["alert"]


@pytest.mark.parametrize("rules_file", RULE_FILES, ids=lambda path: path.name)
def test_every_rule_is_unit_tested(rules_file: Path) -> None:
    document = yaml.safe_load(unit_tests_of(rules_file).read_text(encoding="utf-8"))
    tested = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if not case["exp_alerts"]
    }
    names = {rule["alert"] for rule in rules(rules_file)}
    assert names - tested == set(), "rules never seen firing"
    assert names - quiet - {HEARTBEAT} == set(), "rules never seen quiet"


def test_alertmanager_groups_by_area() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    group_by = set(config["route"]["group_by"])
    assert group_by <= set(AREA_LABELS)
    assert {"province", "commune", "village", "technology", "operator"} <= group_by


def receiver_of(labels: dict[str, str]) -> str:
    done = run(
        [
            tool("amtool", "prometheus-alertmanager"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            *(f"{name}={value}" for name, value in labels.items()),
        ],
        Path.cwd(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_each_kind_of_alert_reaches_its_receiver() -> None:
    """Labels as each rule gives them: critical verdicts, warnings, the stack, the heartbeat."""
    by_name = {rule["alert"]: rule["labels"] for rule in all_rules()}
    area = {"province": "11", "commune": "03211", "village": "Ban Na Hin", "operator": "Viettel"}
    expected = {
        "QcvnAreaFailing": "critical",
        "ProbeEnrollmentDisputed": "critical",
        "QcvnAreaEarlyWarning": "warnings",
        "NationalTargetBelow": "warnings",
        "ProbeOffline": "warnings",
        "CentralServiceDown": "operator",
        "CollectorDisconnected": "operator",
        "CertificateExpiresSoon": "operator",
        "StoreDiskLow": "operator",
        HEARTBEAT: "heartbeat",
    }
    for name, receiver in expected.items():
        labels = {"alertname": name, **area, **by_name[name]}
        assert receiver_of(labels) == receiver, name
    receivers = {r["name"] for r in yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["receivers"]}
    assert receivers == set(expected.values())


def values(node: object) -> Iterator[str]:
    """Every string value of a YAML document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from values(value)
    elif isinstance(node, list):
        for item in node:
            yield from values(item)
    elif isinstance(node, str):
        yield node


def test_every_placeholder_of_the_receivers_is_documented() -> None:
    """What the operator must fill in (`change-me`) is listed in docs/operate-central.md."""
    placeholders = [
        value
        for value in values(yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8")))
        if "change-me" in value
    ]
    assert placeholders, "the shipped receivers have their placeholders"
    docs = DOCS.read_text(encoding="utf-8")
    for placeholder in placeholders:
        assert placeholder in docs, placeholder
