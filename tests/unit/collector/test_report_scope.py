"""What a report covers, and the refusals of a bad area or period: exit 2, a hint, no traceback."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from collector.report.command import run_report
from collector.report.scope import (
    Period,
    Scope,
    choose_breakdown,
    choose_period,
    choose_scope,
)
from collector.verdicts import Area
from contract.errors import QosfleetError
from contract.i18n import use

TODAY = date(2026, 12, 6)


@pytest.fixture(autouse=True)
def english() -> None:
    use("en")


def test_the_default_period_is_the_last_30_complete_days() -> None:
    period = choose_period(None, None, today=TODAY)
    assert (period.first_day, period.last_day, period.days) == (
        date(2026, 11, 6),
        date(2026, 12, 5),
        30,
    )
    # Whole days of Vietnam time: midnight in Hanoi is 17:00 UTC the day before.
    assert period.start == datetime(2026, 11, 5, 17, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 5, 17, tzinfo=UTC)


def test_days_are_read_iso_or_day_first() -> None:
    assert choose_period("01/11/2026", "2026-11-30", today=TODAY) == Period(
        first_day=date(2026, 11, 1), last_day=date(2026, 11, 30)
    )


@pytest.mark.parametrize(
    ("first", "last", "said"),
    [
        ("2026-11-30", "2026-11-01", "starts (2026-11-30) after it ends (2026-11-01)"),
        ("2026-12-01", "2026-12-07", "after today"),
        ("2026-02-30", None, "'2026-02-30' is not a day"),
        ("2026-01-01", "2026-11-30", "334 days long"),
        ("yesterday", None, "not a day"),
    ],
)
def test_a_bad_period_is_refused_with_a_hint(first: str, last: str | None, said: str) -> None:
    with pytest.raises(QosfleetError) as refused:
        choose_period(first, last, today=TODAY)
    assert said in refused.value.message
    assert refused.value.hint


def test_areas_from_codes() -> None:
    assert choose_scope(None) == Scope(level="nation")
    assert choose_scope("08") == Scope(level="province", province="08")
    assert choose_scope("00700") == Scope(level="commune", province="08", commune="00700")
    village = choose_scope("00700/ Bản Ná ")
    assert village == Scope(level="village", province="08", commune="00700", village="Bản Ná")
    assert village.name() == "Bản Ná, Xã Ngọc Đường, Tuyên Quang"
    assert village.labels == {"province": "08", "commune": "00700", "village": "Bản Ná"}
    assert village.holds(Area("village", "08", "00700", "Bản Ná", "4g", "Viettel"))
    assert not village.holds(Area("commune", "08", "00700", "", "4g", "Viettel"))
    assert Scope(level="nation").holds(Area("nation", "", "", "", "5g", "MobiFone"))
    assert village.encloses(Area("village", "08", "00700", "Bản Ná", "4g", "Viettel"))
    assert not village.encloses(Area("village", "08", "00700", "Bản Nà", "4g", "Viettel"))
    province = choose_scope("08")
    assert province.encloses(Area("commune", "08", "00700", "", "4g", "Viettel"))
    assert not province.encloses(Area("commune", "79", "25747", "", "4g", "Viettel"))


def test_a_breakdown_is_of_a_finer_level() -> None:
    province = choose_scope("08")
    assert choose_breakdown(province, "commune") == "commune"
    assert choose_breakdown(province, "province") is None
    assert choose_breakdown(Scope(level="nation"), "village") == "village"
    with pytest.raises(QosfleetError) as refused:
        choose_breakdown(choose_scope("00700"), "province")
    assert "--level province is not inside Xã Ngọc Đường, Tuyên Quang" in refused.value.message
    assert refused.value.hint == "list a finer level: village"
    with pytest.raises(QosfleetError) as refused:
        choose_breakdown(choose_scope("00700/Bản Ná"), "commune")
    assert "leave out --level" in refused.value.hint


@pytest.mark.parametrize(
    ("area", "said", "hint"),
    [
        ("99", "no province has the code '99'", "01 04 08"),
        ("00701", "no commune has the code '00701'", "did you mean"),
        ("00700/", "names no village", "00700/Bản Ná"),
    ],
)
def test_an_unknown_area_is_refused_with_a_hint(area: str, said: str, hint: str) -> None:
    with pytest.raises(QosfleetError) as refused:
        choose_scope(area)
    assert said in refused.value.message
    assert hint in refused.value.hint


def test_the_command_refuses_with_exit_2_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_report(["--area", "99", "--lang", "en"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("qos-collector report: no province has the code '99'")
    assert "-> today's province codes" in said
    assert run_report(["--from", "2026-11-30", "--to", "2026-11-01", "--lang", "en"]) == 2
    assert "after it ends" in capsys.readouterr().err


def test_the_installed_command_says_it_in_vietnamese_by_default(tmp_path: object) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "collector.cli", "report", "--area", "99"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert "'99'" in ran.stderr
    assert "no province has the code" not in ran.stderr  # translated
