"""A report made offline from a campaign CSV: the evidence's bytes, the PDF read back, the HTML."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from collector.evaluate import parse_campaign
from collector.report.command import run_report
from collector.report.evidence import evidence_csv, evidence_name
from contract.i18n import use

START = datetime(2026, 11, 1, tzinfo=UTC)


def _campaign(path: Path, *, rate: float, count: int, probe: str = "vn-08-ban-na") -> Path:
    lines = ["timestamp,download_mbps,status,setting,probe"]
    for index in range(count):
        at = START + timedelta(minutes=20 * index)
        status = "failed" if index % 100 == 0 else "ok"
        download = "" if status == "failed" else f"{rate + (index % 3 - 1) * 2:.2f}"
        lines.append(f"{at.isoformat()},{download},{status},indoor,{probe}-{index % 2}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _text(path: Path) -> str:
    return " ".join(page.extract_text() for page in PdfReader(path).pages).replace("\n", " ")


def test_a_passing_campaign_in_vietnamese(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path / "chien-dich.csv", rate=45.0, count=1700)
    argv = ["--input", str(campaign), "--profile", "4g", "--area", "00700"]
    assert run_report([*argv, "--output", str(tmp_path / "r"), "--lang", "vi"]) == 0
    text = _text(tmp_path / "r.pdf")
    assert "ĐẠT — bộ chỉ tiêu 4g" in text
    assert "KHÔNG ĐẠT" not in text.split("ĐẠT — bộ chỉ tiêu 4g")[0]
    assert "Xã Ngọc Đường, Tuyên Quang" in text
    assert "1.683 / 1.500" in text  # 17 failed attempts out of 1,700
    assert hashlib.sha256(campaign.read_bytes()).hexdigest() in text.replace(" ", "")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in html
    assert "<svg" in html  # the charts, inline


def test_a_campaign_short_of_samples_is_not_judged(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path / "c.csv", rate=20.0, count=200)
    argv = ["--input", str(campaign), "--profile", "4g", "--output", str(tmp_path / "r")]
    assert run_report([*argv, "--lang", "en"]) == 0
    text = _text(tmp_path / "r.pdf")
    assert "NOT ENOUGH DATA" in text
    assert "early warning" in text


def test_a_fixed_line_has_two_verdicts_against_its_plan_and_the_national_target(
    tmp_path: Path,
) -> None:
    campaign = tmp_path / "ftth.csv"
    times = [START + timedelta(minutes=20 * index) for index in range(1200)]
    rows = [f"{at.isoformat()},{250 + index % 3},90,vn-08-ftth" for index, at in enumerate(times)]
    campaign.write_text("timestamp,download_mbps,upload_mbps,probe\n" + "\n".join(rows) + "\n")
    argv = ["--input", str(campaign), "--profile", "fixed", "--output", str(tmp_path / "r")]
    plan = ["--plan-download-mbps", "300", "--plan-upload-mbps", "100"]
    assert run_report([*argv, *plan, "--lang", "en"]) == 0
    text = _text(tmp_path / "r.pdf")
    assert "PASS — fixed profile: QCVN 34 plan conformity" in text
    assert "national target (programme indicator): FAIL" in text
    assert "(240 Mb/s)" in text  # 0.8 x the plan's 300 Mb/s
    assert "--plan-download-mbps 300 --plan-upload-mbps 100" in text
    assert run_report([*argv, "--plan-download-mbps", "300", "--lang", "en"]) == 2


def test_a_campaign_of_failed_attempts_only_is_a_report_too(tmp_path: Path) -> None:
    campaign = tmp_path / "c.csv"
    campaign.write_text("timestamp,download_mbps,status\n2026-11-01T00:00:00Z,,failed\n")
    argv = ["--input", str(campaign), "--profile", "4g", "--output", str(tmp_path / "r")]
    assert run_report([*argv, "--lang", "en"]) == 0
    text = _text(tmp_path / "r.pdf")
    assert "NOT ENOUGH DATA — 4g profile: download mean -, n 0 / 1,500" in text


def test_names_from_the_data_are_text_in_the_html(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path / "c.csv", rate=45.0, count=50, probe="<script>alert(1)</script>")
    argv = ["--input", str(campaign), "--profile", "4g", "--output", str(tmp_path / "r")]
    assert run_report([*argv, "--lang", "en"]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;-0" in html


def test_a_store_that_does_not_answer_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", "http://127.0.0.1:9", "--output", str(tmp_path / "r"), "--lang", "en"]
    assert run_report(argv) == 2
    said = capsys.readouterr().err
    assert "cannot read from the store at http://127.0.0.1:9" in said
    assert "-> check that VictoriaMetrics runs" in said
    assert not (tmp_path / "r.pdf").exists()


def test_an_unknown_profile_and_a_missing_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use("en")
    assert run_report(["--input", str(tmp_path / "none.csv"), "--profile", "4g"]) == 2
    assert "no such file" in capsys.readouterr().err
    campaign = _campaign(tmp_path / "c.csv", rate=20.0, count=10)
    assert run_report(["--input", str(campaign), "--profile", "6g", "--lang", "en"]) == 2
    assert "choose one of: 4g" in capsys.readouterr().err
    assert not (tmp_path / "qos-report.pdf").exists()


def test_the_evidence_is_canonical_and_read_as_evaluate_reads_it() -> None:
    row = {
        "time": START,
        "download_mbps": 41.5,
        "upload_mbps": None,
        "latency_idle_median_ms": 12.25,
        "sample_class": 1.0,
        "probe": "vn-08-ban-na-1",
        "setting": "indoor",
        "technology": "4g",
        "operator": "Viettel",
        "province": "08",
        "commune": "00700",
        "village": "=HYPERLINK(1)",
    }
    failed = row | {"time": START + timedelta(minutes=1), "download_mbps": None}
    failed["attempt_failed"] = 1.0
    first, second = evidence_csv([row, failed]), evidence_csv([failed, row])
    assert first == second  # the same samples make the same bytes, whatever their order
    assert b",'=HYPERLINK(1)\n" in first  # text in a spreadsheet, not a formula
    campaign = parse_campaign(io.StringIO(first.decode(), newline=""))
    assert not campaign.bad_rows
    assert [s.status for s in campaign.samples] == ["ok", "failed"]
    assert campaign.samples[0].download_mbps == 41.5
    assert campaign.samples[0].rtt_ms == 12.25
    assert campaign.samples[0].device == "vn-08-ban-na-1"


def test_evidence_names_are_safe_file_names() -> None:
    assert evidence_name("r", "4g", "../Viettel Telecom") == "r-4g----viettel-telecom.csv"
