"""The demos' verdict table: the collector's two fixed parts in two columns, nothing invented."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from contract.profiles import bundled_profiles, load_profiles
from lab.verdicts import (
    Reader,
    VerdictRow,
    count_cell,
    demo_profiles,
    programme_cell,
    regulation_cell,
    verdict_table,
)

# A school's fibre on a 300 Mb/s plan, delivering 287 Mb/s: as the collector stores it.
SCHOOL_FIBRE: dict[str, float | None] = {
    "status": 1.0,
    "plan_status": 1.0,
    "national_target_status": 0.0,
    "n": 6.0,
    "mean_download_mbps": 286.8,
    "ci_low_mbps": 285.9,
    "ci_high_mbps": 287.7,
    "target_download_mbps": 240.0,
    "national_target_download_mbps": 1000.0,
}


def test_a_fixed_line_conforming_below_the_national_target_is_a_pass_and_a_warning() -> None:
    assert regulation_cell(SCHOOL_FIBRE) == "[green]pass[/] (QCVN 34: ≥ 240)"
    assert programme_cell(SCHOOL_FIBRE) == "[yellow]below 1,000[/] (warning)"
    assert "fail" not in programme_cell(SCHOOL_FIBRE) + regulation_cell(SCHOOL_FIBRE)


def test_a_fixed_line_meeting_both_parts() -> None:
    town = SCHOOL_FIBRE | {"national_target_status": 1.0, "target_download_mbps": 800.0}
    assert regulation_cell(town).startswith("[green]pass[/]")
    assert programme_cell(town) == "[green]meets[/] 1,000"


def test_a_fixed_line_below_its_plan_fails_the_regulation() -> None:
    below = SCHOOL_FIBRE | {"status": 0.0, "plan_status": 0.0}
    assert regulation_cell(below).startswith("[red]fail[/]")


def test_a_fixed_line_without_a_plan_is_not_judged_by_qcvn_34() -> None:
    no_plan = SCHOOL_FIBRE | {"status": -1.0, "plan_status": None, "target_download_mbps": None}
    assert regulation_cell(no_plan) == "[yellow]not judged[/] (QCVN 34 needs the plan)"


def test_a_mobile_line_has_no_programme_part() -> None:
    village: dict[str, float | None] = {"status": 0.0, "target_download_mbps": 40.0, "n": 3.0}
    assert regulation_cell(village) == "[red]fail[/] (≥ 40)"
    assert programme_cell(village) == "-"
    assert regulation_cell({}) == "-"


def test_samples_the_method_excludes_are_shown_beside_n() -> None:
    assert count_cell({"n": 0.0, "n_probe_limited": 2.0, "n_too_close": 1.0}) == "0 (+3 excluded)"
    assert count_cell({"n": 4.0, "n_implausible": 0.0}) == "4"


def test_the_table_shows_what_the_store_answered_for_each_row() -> None:
    rows = [
        VerdictRow("Trường Lũng Cú", "ftth", "VNPT", "shaped 300/300", 300.0),
        VerdictRow("Bản Khe", "4g", "MobiFone", "shaped 60/20", None),
    ]
    stored: dict[str, dict[str, float | None]] = {"Trường Lũng Cú": SCHOOL_FIBRE, "Bản Khe": {}}

    def read(row: VerdictRow) -> Reader:
        return stored[row.village].get

    console = Console(width=200, record=True)
    console.print(verdict_table(rows, read))
    text = console.export_text()
    school, village = (line for line in text.splitlines() if "Trường" in line or "Bản Khe" in line)
    assert "287 [286, 288]" in school
    assert "pass (QCVN 34: ≥ 240)" in school
    assert "below 1,000 (warning)" in school
    assert "Bản Khe" in village
    assert "pass" not in village


def test_demo_profiles_lower_only_n_required(tmp_path: Path) -> None:
    demo = load_profiles(demo_profiles(tmp_path / "demo.toml", n_required=3))
    for name, bundled in bundled_profiles().items():
        assert demo[name].n_required == 3
        assert demo[name].min_gap_s == bundled.min_gap_s
        assert demo[name].ceilings_mbps == bundled.ceilings_mbps
        assert demo[name].download == bundled.download
        assert "demo: n_required lowered to 3" in demo[name].title
