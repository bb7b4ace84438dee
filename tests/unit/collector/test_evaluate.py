"""`qos-collector evaluate` on campaign CSV files: verdicts, bad rows and clear errors."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.evaluate import run_evaluate
from contract import i18n

FIXTURES = Path(__file__).parents[2] / "fixtures" / "campaigns"
START = datetime(2025, 3, 1, 6, 0)  # noqa: DTZ001 - naive on purpose: the CSV is read as UTC
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def spread(mean: float, sd: float, n: int) -> list[float]:
    """n values (n even) with exactly this mean and sample standard deviation."""
    offset = sd * math.sqrt((n - 1) / n)
    return [mean + offset if i % 2 else mean - offset for i in range(n)]


def write_campaign(
    path: Path,
    downloads: Sequence[float],
    uploads: Sequence[float] | None = None,
    step: timedelta = timedelta(minutes=1),
) -> Path:
    lines = ["timestamp,download_mbps,upload_mbps"]
    for i, download in enumerate(downloads):
        upload = f"{uploads[i]:.4f}" if uploads is not None else ""
        lines.append(f"{(START + i * step).isoformat()},{download:.4f},{upload}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The verdict of the record, with the record beside it and the count of bad rows."""
    assert run_evaluate([*argv, "--json"]) == 0
    record: dict[str, Any] = json.loads(capsys.readouterr().out)
    return {**record["verdict"], "record": record, "bad_rows": len(record["input"]["bad_rows"])}


def test_passing_village_campaign_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", spread(43.0, 18.35, 1600))
    report = run_json(capsys, "--profile", "4g", "--input", str(csv_file))
    assert report["status"] == "pass"
    assert report["n"] == 1600
    assert report["n_required"] == 1500
    assert report["mean_download_mbps"] == pytest.approx(43.0, abs=1e-3)
    assert report["ci_low"] == pytest.approx(42.1, abs=0.01)
    assert report["ci_high"] == pytest.approx(43.9, abs=0.01)
    assert report["share_at_or_above_min"] is None
    assert report["early_warning"] is False
    assert report["bad_rows"] == 0
    assert report["method"] == "monitoring per the QCVN method"
    # The window ends at the campaign's own latest sample, not today.
    assert report["window_end"] == "2025-03-02T08:39:00Z"
    criteria = {c["id"]: c for c in report["criteria"]}
    assert list(criteria) == ["download.mean", "access_failure", "access_delay.mean"]
    # The campaign did not measure access delay: not judged, and so not held against it.
    assert criteria["access_delay.mean"]["skipped"] is True
    assert "no sample in the window measured it" in criteria["access_delay.mean"]["note"]


def test_failing_village_campaign_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", spread(38.5, 10.0, 1600))
    report = run_json(capsys, "--profile", "4g", "--input", str(csv_file))
    assert report["status"] == "fail"
    assert report["mean_download_mbps"] == pytest.approx(38.5, abs=1e-3)
    assert report["criteria"][0]["passed"] is False


def test_few_samples_far_below_target_warns_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", spread(25.0, 15.78, 200))
    report = run_json(capsys, "--profile", "4g", "--input", str(csv_file))
    assert report["status"] == "insufficient-data"
    assert report["early_warning"] is True
    assert report["ci_high"] == pytest.approx(27.2, abs=0.01)


def test_bad_rows_are_reported_by_line_and_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--profile", "4g", "--input", str(FIXTURES / "bad_rows.csv"), "--json"]
    assert run_evaluate(argv) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    report = {**record["verdict"], "bad_rows": len(record["input"]["bad_rows"])}
    stderr = captured.err.splitlines()
    assert stderr == [
        "line 3: download_mbps 'abc' is not a number",
        "line 5: download_mbps '-2' is negative",
        "line 7: timestamp 'yesterday' is not a time (ISO 8601, or dd/mm/yyyy HH:MM)",
        "line 8: status 'maybe' is not one of ok, failed, probe_limited, unconverged",
        "line 9: download_mbps is missing; only a failed row may leave it empty",
        "line 11: rtt_ms 'inf' is not a finite number",
        "line 13: download_mbps is missing; only a failed row may leave it empty",
        "line 14: has more fields than the header",
    ]
    assert report["bad_rows"] == 8
    # Lines 2, 4 and 15 measured; line 6 failed to connect; line 12 hit the probe's ceiling.
    assert report["n"] == 3
    assert report["mean_download_mbps"] == pytest.approx((41.5 + 44.0 + 46.0) / 3)
    assert report["n_failed"] == 1
    assert report["n_probe_limited"] == 1
    assert report["n_attempts"] == 5
    assert report["access_failure_rate"] == pytest.approx(1 / 5)
    assert report["status"] == "insufficient-data"


def test_readable_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", spread(43.0, 18.35, 1600))
    assert run_evaluate(["--profile", "4g", "--input", str(csv_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS — 4g profile: download mean 43.00 Mb/s, n 1,600 / 1,500\n")
    summary = "n 1,600 / 1,500 required (0 failed, 0 probe-limited, 0 unconverged, 0 implausible"
    assert summary in out
    assert "download mean 43.00 Mb/s, 95 % CI [42.10, 43.90]" in out
    assert "  ✓ download mean ≥ 40 Mb/s: 43.00 Mb/s" in out
    assert "  ✓ access failure rate ≤ 5%: 0.0%" in out
    assert "method: monitoring per the QCVN method" in out
    assert "outdoor fixed 0/500" in out


def test_readable_summary_marks_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", spread(38.5, 10.0, 1600))
    assert run_evaluate(["--profile", "4g", "--input", str(csv_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FAIL — 4g profile: download mean 38.50 Mb/s")
    assert "  ✗ download mean ≥ 40 Mb/s: 38.50 Mb/s" in out


def test_unknown_profile_lists_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", [43.0])
    assert run_evaluate(["--profile", "6g", "--input", str(csv_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown profile '6g'" in captured.err
    assert "4g, 4g-draft-2023, 5g, fixed" in captured.err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.csv"
    assert run_evaluate(["--profile", "4g", "--input", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such file" in err
    assert "check the --input path" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("timestamp,upload_mbps\n2025-03-01T00:00:00Z,3\n", "the header has no download_mbps"),
        ("timestamp,download_mbps\nnow,fast\n", "no valid rows (1 bad)"),
    ],
)
def test_unusable_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    csv_file = tmp_path / "campaign.csv"
    csv_file.write_text(content, encoding="utf-8")
    assert run_evaluate(["--profile", "4g", "--input", str(csv_file)]) == 2
    assert message in capsys.readouterr().err


def test_fixed_profile_with_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = write_campaign(
        tmp_path / "ftth.csv", spread(250.0, 30.0, 1200), spread(90.0, 10.0, 1200)
    )
    report = run_json(
        capsys,
        "--profile",
        "fixed",
        "--input",
        str(csv_file),
        "--plan-download-mbps",
        "300",
        "--plan-upload-mbps",
        "100",
    )
    assert report["plan_conformity"] == "pass"
    assert report["plan_download_threshold_mbps"] == pytest.approx(240.0)
    assert report["plan_upload_threshold_mbps"] == pytest.approx(80.0)
    assert report["national_target"] == "fail"
    # The regulation passes; the 1 Gb/s programme target is reported apart, never merged.
    assert report["status"] == "pass"
    assert report["mean_upload_mbps"] == pytest.approx(90.0, abs=1e-3)


def test_fixed_profile_summary_shows_both_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(
        tmp_path / "ftth.csv", spread(250.0, 30.0, 1200), spread(90.0, 10.0, 1200)
    )
    argv = ["--profile", "fixed", "--input", str(csv_file)]
    assert run_evaluate([*argv, "--plan-download-mbps", "300", "--plan-upload-mbps", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS — fixed profile: QCVN 34 plan conformity (the regulation)")
    assert "national target (programme indicator): FAIL" in out
    assert "FAIL" not in out.splitlines()[1]
    assert run_evaluate(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("NOT JUDGED — fixed profile: QCVN 34 plan conformity (the regulation)")
    assert "give the plan with --plan-download-mbps" in out
    assert "  - download mean ≥ 0.8 x plan" in out


def test_half_a_plan_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = write_campaign(tmp_path / "ftth.csv", [250.0])
    argv = ["--profile", "fixed", "--input", str(csv_file), "--plan-download-mbps", "300"]
    assert run_evaluate(argv) == 2
    assert "go together" in capsys.readouterr().err


def test_window_defaults_to_the_campaign_and_can_be_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One sample a day for 60 days: the first 30 at 10 Mb/s, the last 30 at 50 Mb/s.
    rates = [10.0] * 30 + [50.0] * 30
    csv_file = write_campaign(tmp_path / "daily.csv", rates, step=timedelta(days=1))
    argv = ["--profile", "4g", "--input", str(csv_file)]
    latest = run_json(capsys, *argv)
    assert latest["n"] == 30
    assert latest["mean_download_mbps"] == pytest.approx(50.0)
    week = run_json(capsys, *argv, "--window-days", "7")
    assert week["n"] == 7
    # Ending the window on day 29 (in +07:00) catches the first 30 days only.
    day_29 = (START + timedelta(days=29)).replace(tzinfo=UTC).astimezone(HANOI)
    earlier = run_json(capsys, *argv, "--now", day_29.isoformat())
    assert earlier["n"] == 30
    assert earlier["mean_download_mbps"] == pytest.approx(10.0)
    assert earlier["window_end"] == "2025-03-30T06:00:00Z"


def test_another_profiles_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        "[profiles.pilot]\n"
        'title = "pilot"\nsource = "test"\naccess = "mobile"\nn_required = 4\n'
        "download = { mean_min_mbps = 20.0 }\n",
        encoding="utf-8",
    )
    csv_file = write_campaign(tmp_path / "village.csv", [21.0, 22.0, 23.0, 24.0])
    argv = ["--profiles", str(profiles), "--input", str(csv_file)]
    report = run_json(capsys, *argv, "--profile", "pilot")
    assert report["status"] == "pass"
    assert report["mean_download_mbps"] == pytest.approx(22.5)
    assert run_evaluate([*argv, "--profile", "4g"]) == 2
    assert "choose one of: pilot" in capsys.readouterr().err


def test_a_broken_profiles_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text("[profiles.pilot]\ntitel = 'typo'\n", encoding="utf-8")
    csv_file = write_campaign(tmp_path / "village.csv", [21.0])
    argv = ["--profiles", str(profiles), "--profile", "pilot", "--input", str(csv_file)]
    assert run_evaluate(argv) == 2
    assert "profiles.toml" in capsys.readouterr().err


def test_a_spreadsheet_in_vietnamese_format_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Semicolons between fields, decimal commas, day-first dates: what a spreadsheet set to
    # Vietnamese writes.
    csv_file = tmp_path / "vi.csv"
    csv_file.write_text(
        "timestamp;download_mbps;probe\n05/12/2026 08:00;41,5;a\n05/12/2026 08:10;44,5;a\n",
        encoding="utf-8",
    )
    report = run_json(capsys, "--profile", "4g", "--input", str(csv_file))
    assert report["n"] == 2
    assert report["mean_download_mbps"] == pytest.approx(43.0)
    assert report["window_end"] == "2026-12-05T08:10:00Z"


def test_a_decimal_comma_with_comma_separators_is_answered_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "mixed.csv"
    csv_file.write_text('timestamp,download_mbps\n2026-12-05T08:00:00Z,"41,5"\n', encoding="utf-8")
    assert run_evaluate(["--profile", "4g", "--input", str(csv_file)]) == 2
    assert "a decimal comma needs ; between fields" in capsys.readouterr().err


def test_the_record_names_profile_methods_and_fingerprints_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = write_campaign(tmp_path / "village.csv", [43.0, 45.0, 3000.0])
    record = run_json(capsys, "--profile", "4g", "--input", str(csv_file))["record"]
    assert record["profile"]["name"] == "4g"
    assert record["profile"]["source"].startswith("Decision 1110")
    assert "verify" in record["profile"]
    assert "per-sample" in record["statistic_method"]
    assert "Student-t" in record["interval_method"]
    assert record["tool"] == "qos-collector evaluate"
    assert record["tool_version"]
    assert record["generated_at"]
    assert record["input"]["sha256"] == hashlib.sha256(csv_file.read_bytes()).hexdigest()
    assert record["input"]["rows"] == 3
    # Above 4G's physical ceiling: kept as evidence, reported by line, counted as implausible.
    (implausible,) = record["input"]["bad_rows"]
    assert implausible["line"] == 4
    assert "ceiling" in implausible["reason"]
    assert record["verdict"]["n_implausible"] == 1
    assert record["verdict"]["n"] == 2


def test_the_minimum_gap_and_duplicates_are_applied_per_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "gaps.csv"
    csv_file.write_text(
        "timestamp,download_mbps,probe\n"
        "2026-12-05T08:00:00Z,40,a\n"
        "2026-12-05T08:00:10Z,10,a\n"  # 10 s after a's counted one: too close
        "2026-12-05T08:00:30Z,42,a\n"  # 30 s after it: counted
        "2026-12-05T08:00:30Z,42,a\n"  # the same row again: a duplicate
        "2026-12-05T08:00:10Z,44,b\n",  # another device: counted
        encoding="utf-8",
    )
    report = run_json(capsys, "--profile", "4g", "--input", str(csv_file))
    assert (report["n"], report["n_too_close"], report["n_duplicates"]) == (3, 1, 1)
    assert report["mean_download_mbps"] == pytest.approx(42.0)


def test_times_without_zone_can_be_vietnam_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "vi.csv"
    csv_file.write_text("timestamp;download_mbps\n05/12/2026 08:00;41,5\n", encoding="utf-8")
    argv = ["--profile", "4g", "--input", str(csv_file)]
    report = run_json(capsys, *argv, "--timezone", "+07:00")
    assert report["window_end"] == "2026-12-05T01:00:00Z"
    assert run_json(capsys, *argv, "--timezone", "Asia/Ho_Chi_Minh")["window_end"] == (
        "2026-12-05T01:00:00Z"
    )
    with pytest.raises(SystemExit):
        run_evaluate([*argv, "--timezone", "Mars/Olympus"])
    assert "not a time zone" in capsys.readouterr().err


@pytest.fixture
def vietnamese() -> Iterator[None]:
    yield
    i18n.use("en")


@pytest.mark.usefixtures("vietnamese")
def test_in_vietnamese_bad_rows_reasons_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = write_campaign(tmp_path / "village.csv", spread(43.0, 18.35, 1600))
    with campaign.open("a", encoding="utf-8") as rows:
        rows.write("yesterday,41,2\n2025-03-02T08:00:00,abc,2\n2025-03-02T08:01:00,-2,2\n")
    assert run_evaluate(["--lang", "vi", "--profile", "4g", "--input", str(campaign)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        (
            "dòng 1602: timestamp 'yesterday' không phải là thời điểm "
            "(ISO 8601, hoặc dd/mm/yyyy HH:MM)"
        ),
        "dòng 1603: download_mbps 'abc' không phải là một số",
        "dòng 1604: download_mbps '-2' là số âm",
    ]
    out = captured.out
    # Babel's vi locale: a point between thousands, a decimal comma, the day first.
    assert out.startswith(
        "ĐẠT — bộ chỉ tiêu 4g: tải xuống trung bình 43,00 Mb/s, n 1.600 / 1.500\n"
    )
    assert "tải xuống trung bình 43,00 Mb/s, khoảng tin cậy 95 % [42,10; 43,90]" in out
    assert "khoảng đánh giá 31/01/2025 08:39 UTC .. 02/03/2025 08:39 UTC" in out
    assert "Băng rộng di động 4G" in out
    assert "(không đánh giá: không mẫu nào trong khoảng đánh giá đo chỉ tiêu này)" in out
    assert "3 dòng bị bỏ qua hoặc loại ra" in out
