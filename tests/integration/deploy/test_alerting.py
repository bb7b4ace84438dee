"""The alert rules through real VictoriaMetrics, vmalert and Alertmanager.

Three villages are judged by the collector's engine from samples, and their verdicts written as the
collector writes them (collector.verdicts.verdict_line): a 4G village failing, one passing, and a
fixed village whose line conforms to QCVN 34 but is below the 1 Gb/s national target. The failing
village's critical QcvnAreaFailing alert must reach Alertmanager with its area labels; the fixed
village must raise the NationalTargetBelow warning and nothing critical; the passing one nothing.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.compliance import Sample, Verdict, evaluate_compliance
from collector.verdicts import Area, verdict_line
from contract.errors import ServiceError
from contract.profiles import bundled_profiles, profile_for
from contract.result import Plan
from lab.alerting import RULES_FILE, Alertmanager, alertmanager, rules_with_short_for, vmalert
from lab.services import VictoriaMetrics

pytestmark = pytest.mark.integration

FAILING_VILLAGE = Area("village", "11", "03211", "Ban Na Hin", "4g", "Viettel")
PASSING_VILLAGE = FAILING_VILLAGE._replace(village="Ban Phai")
FIXED_VILLAGE = Area("village", "01", "00004", "Phuc Xa", "ftth", "FPT")
# Long enough to pass through vmalert's pending state, short enough for a test.
SHORT_FOR = "2s"
ALERT_TIMEOUT_S = 30.0
Verdicts = dict[Area, Verdict]


def judged(
    area: Area, count: int, download_mbps: float, upload_mbps: float | None = None
) -> Verdict:
    """The engine's verdict on `count` samples around `download_mbps`, one every 15 min."""
    now = datetime.now(UTC)
    profile = profile_for(area.technology)
    assert profile is not None
    samples = [
        Sample(
            timestamp=now - timedelta(minutes=15 * (number + 1)),
            download_mbps=download_mbps + (1.0 if number % 2 else -1.0),
            upload_mbps=upload_mbps,
            technology=area.technology,
        )
        for number in range(count)
    ]
    plan = Plan(download_mbps=1000.0, upload_mbps=1000.0) if profile.access == "fixed" else None
    return evaluate_compliance(samples, profile, now=now, plan=plan)


@pytest.fixture(scope="module")
def verdicts() -> Verdicts:
    found = {
        FAILING_VILLAGE: judged(FAILING_VILLAGE, 1600, 30.1),
        PASSING_VILLAGE: judged(PASSING_VILLAGE, 1600, 52.4),
        # A 1 Gb/s plan delivering 956 Mb/s: above 0.8 x plan, below the 1,000 Mb/s target.
        FIXED_VILLAGE: judged(FIXED_VILLAGE, 1200, 956.0, upload_mbps=930.0),
    }
    fixed = found[FIXED_VILLAGE]
    assert (found[FAILING_VILLAGE].status, found[PASSING_VILLAGE].status) == ("fail", "pass")
    assert (fixed.status, fixed.plan_conformity, fixed.national_target) == ("pass", "pass", "fail")
    return found


def write_verdicts(store: VictoriaMetrics, verdicts: Verdicts) -> None:
    """The verdicts stamped now, as the collector rewrites them every minute."""
    profiles = bundled_profiles()
    now = datetime.now(UTC)
    body = "\n".join(
        verdict_line(area, verdict, profiles[verdict.profile], now)
        for area, verdict in verdicts.items()
    ).encode()
    request = urllib.request.Request(f"{store.url}/write?precision=ms", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204
    # A new series can take ~10 s to become searchable in this VictoriaMetrics (1.79); a forced
    # flush makes it so at once and keeps the test short and steady.
    with urllib.request.urlopen(f"{store.url}/internal/force_flush", timeout=5) as response:
        assert response.status == 200


def wait_for_alerts(
    store: VictoriaMetrics, manager: Alertmanager, verdicts: Verdicts, wanted: dict[str, Area]
) -> dict[str, dict[str, Any]]:
    """Keep the verdicts fresh until every wanted alert (name -> area) has arrived."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    arrived: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        write_verdicts(store, verdicts)
        for name, area in wanted.items():
            for alert in manager.alerts(alertname=name):
                if alert["labels"].get("village") == area.village:
                    arrived[name] = alert
        if arrived.keys() == wanted.keys():
            return arrived
        time.sleep(1.0)
    pytest.fail(
        f"alerts {sorted(wanted.keys() - arrived.keys())} missing after {ALERT_TIMEOUT_S:g} s; "
        f"Alertmanager holds {manager.alerts()}"
    )


def test_failing_village_pages_fixed_village_warns_passing_village_stays_quiet(
    store: VictoriaMetrics, tmp_path: Path, verdicts: Verdicts
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
        arrived = wait_for_alerts(
            store,
            manager,
            verdicts,
            {"QcvnAreaFailing": FAILING_VILLAGE, "NationalTargetBelow": FIXED_VILLAGE},
        )

        failing = arrived["QcvnAreaFailing"]
        labels = failing["labels"]
        for key, value in FAILING_VILLAGE._asdict().items():
            assert labels.get(key) == value, key
        assert labels["profile"] == "4g"
        assert (labels["severity"], labels["part"]) == ("critical", "regulation")
        assert failing["status"]["state"] == "active"
        assert (
            "village Ban Na Hin (commune 03211, province 11)" in failing["annotations"]["summary"]
        )

        national = arrived["NationalTargetBelow"]["labels"]
        assert (national["severity"], national["part"]) == ("warning", "national_target")
        assert (
            "national target of 1000 Mb/s"
            in arrived["NationalTargetBelow"]["annotations"]["summary"]
        )
        # Neither Alertmanager nor vmalert (which also lists pending alerts) holds anything else
        # for the passing village or the conforming fixed one.
        with urllib.request.urlopen(f"{evaluator.url}/api/v1/alerts", timeout=5) as response:
            evaluated = json.load(response)["data"]["alerts"] or []
        for held in (manager.alerts(), evaluated):
            names = {(a["labels"].get("village"), a["labels"]["alertname"]) for a in held}
            assert {name for village, name in names if village == "Ban Phai"} == set()
            assert {name for village, name in names if village == "Phuc Xa"} == {
                "NationalTargetBelow"
            }


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
