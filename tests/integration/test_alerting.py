"""The alert rules through real VictoriaMetrics, vmalert and Alertmanager.

Two villages' verdicts are written to the store: one failing, one passing. The failing village's
QcvnAreaFailing alert must reach Alertmanager with its area labels; the passing one must raise
nothing.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from contract.errors import ServiceError
from lab.alerting import RULES_FILE, Alertmanager, alertmanager, rules_with_short_for, vmalert
from lab.services import VictoriaMetrics

pytestmark = pytest.mark.integration

FAILING_VILLAGE = {
    "level": "village",
    "province": "11",
    "commune": "03211",
    "village": "Ban Na Hin",
    "technology": "4g",
    "operator": "Viettel",
    "profile": "4g",
}
PASSING_VILLAGE = FAILING_VILLAGE | {"village": "Ban Phai"}
# Long enough to pass through vmalert's pending state, short enough for a test.
SHORT_FOR = "2s"
ALERT_TIMEOUT_S = 30.0


def escape_tag(value: str) -> str:
    return value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def verdict_line(area: dict[str, str], *, status: int, mean_download_mbps: float) -> str:
    """One verdict in line protocol, stamped now: field `status` becomes qos_compliance_status."""
    tags = ",".join(f"{key}={escape_tag(value)}" for key, value in area.items())
    fields = (
        f"status={status},n=1600,n_required=1500,"
        f"mean_download_mbps={mean_download_mbps},early_warning=0"
    )
    return f"qos_compliance,{tags} {fields} {time.time_ns()}"


def write_verdicts(store: VictoriaMetrics) -> None:
    body = "\n".join(
        [
            verdict_line(FAILING_VILLAGE, status=0, mean_download_mbps=30.1),
            verdict_line(PASSING_VILLAGE, status=1, mean_download_mbps=52.4),
        ]
    ).encode()
    request = urllib.request.Request(f"{store.url}/write", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204
    # A new series can take ~10 s to become searchable in this VictoriaMetrics (1.79); a forced
    # flush makes it so at once and keeps the test short and steady.
    with urllib.request.urlopen(f"{store.url}/internal/force_flush", timeout=5) as response:
        assert response.status == 200


def wait_for_failing_alert(store: VictoriaMetrics, manager: Alertmanager) -> dict[str, Any]:
    """Keep the verdicts fresh (the collector refreshes them too) until the alert arrives."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while time.monotonic() < deadline:
        write_verdicts(store)
        for alert in manager.alerts(alertname="QcvnAreaFailing"):
            if alert["labels"].get("village") == FAILING_VILLAGE["village"]:
                return alert
        time.sleep(1.0)
    pytest.fail(
        f"no QcvnAreaFailing alert for {FAILING_VILLAGE['village']} in {ALERT_TIMEOUT_S:g} s; "
        f"Alertmanager holds {manager.alerts()}"
    )


def test_failing_village_alerts_and_passing_village_stays_quiet(
    store: VictoriaMetrics, tmp_path: Path
) -> None:
    rules = rules_with_short_for(tmp_path / "rules" / "qosfleet.rules.yml", SHORT_FOR)
    with (
        alertmanager(tmp_path / "alertmanager") as manager,
        vmalert(
            tmp_path / "vmalert",
            datasource_url=store.url,
            notifier_url=manager.url,
            rule_files=[rules],
        ) as evaluator,
    ):
        alert = wait_for_failing_alert(store, manager)

        labels = alert["labels"]
        for key in ("level", "province", "commune", "village", "technology", "operator", "profile"):
            assert labels.get(key) == FAILING_VILLAGE[key], key
        assert labels["severity"] == "critical"
        assert alert["status"]["state"] == "active"
        assert "village Ban Na Hin (commune 03211, province 11)" in alert["annotations"]["summary"]
        # Neither Alertmanager nor vmalert (which also lists pending alerts) holds the passing one.
        with urllib.request.urlopen(f"{evaluator.url}/api/v1/alerts", timeout=5) as response:
            evaluated = json.load(response)["data"]["alerts"] or []
        for held in (manager.alerts(), evaluated):
            assert [a for a in held if a["labels"].get("village") == "Ban Phai"] == []


def test_missing_binary_is_a_service_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(ServiceError, match="prometheus-alertmanager is not installed"),
        alertmanager(tmp_path),
    ):
        pass
    with (
        pytest.raises(ServiceError, match="vmalert is not installed"),
        vmalert(
            tmp_path,
            datasource_url="http://127.0.0.1:1",
            notifier_url="http://127.0.0.1:1",
            rule_files=[RULES_FILE],
        ),
    ):
        pass
