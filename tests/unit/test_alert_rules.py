"""The alert rules and Alertmanager config as files: valid for every tool that loads them.

`promtool test rules` runs deploy/alerts/qosfleet.rules.test.yml, where each rule fires where it
should and stays quiet where it should not. vmalert and amtool check what they will load. A tool
that is not installed skips its test (bash scripts/setup installs them all).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.alerting import ALERTMANAGER_CONFIG, RULES_FILE

RULES_TEST_FILE = RULES_FILE.with_name("qosfleet.rules.test.yml")
AREA_LABELS = ("level", "province", "commune", "village", "technology", "operator", "profile")


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; bash scripts/setup)")
    return path


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    done = run(
        [tool("promtool", "prometheus"), "check", "rules", RULES_FILE.name], RULES_FILE.parent
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_tests_pass() -> None:
    done = run(
        [tool("promtool", "prometheus"), "test", "rules", RULES_TEST_FILE.name], RULES_FILE.parent
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_vmalert_accepts_the_rules() -> None:
    """vmalert parses with MetricsQL: a rule promtool likes may still not load there."""
    done = run([tool("vmalert", "victoria-metrics"), "-dryRun", f"-rule={RULES_FILE}"], Path.cwd())
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    done = run(
        [tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTMANAGER_CONFIG)],
        Path.cwd(),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_says_how_bad_and_what_to_do() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


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


def test_every_rule_is_unit_tested() -> None:
    document = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))
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
    names = {rule["alert"] for rule in rules()}
    assert names - tested == set(), "rules never seen firing"
    assert names - quiet == set(), "rules never seen quiet"


def test_alertmanager_groups_by_area() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    group_by = set(config["route"]["group_by"])
    assert group_by <= set(AREA_LABELS)
    assert {"province", "commune", "village", "technology", "operator"} <= group_by
