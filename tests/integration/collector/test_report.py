"""`qos-collector report` against a real VictoriaMetrics holding known results: the PDF read back
(pypdf) says the verdict, n and the fingerprint `evaluate` prints for the evidence file, in the
language asked for; the HTML says the same; an offline report of the evidence agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import msgspec
import pytest
from pypdf import PdfReader

from collector.report.scope import VIETNAM
from collector.store import StoreWriter
from contract.result import Location, Result
from lab.services import VictoriaMetrics
from tests.strategies import sample_result

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TODAY = (datetime.now(UTC) + VIETNAM).date()
FIRST, LAST = TODAY - timedelta(days=3), TODAY - timedelta(days=2)
# Bản Ná, Xã Ngọc Đường, Tuyên Quang: 1,600 counted 4G samples at a mean of 38.5 Mb/s (fail),
# 20 probe-limited ones (excluded); Hồ Chí Minh's 5G samples are another area's.
TUYEN_QUANG = Location(
    province_code="08", commune_code="00700", village="Bản Ná", lat=22.8, lon=104.98
)
SAIGON = Location(province_code="79", commune_code="25747", village="Khu 1", lat=10.98, lon=106.65)
COUNTED, LIMITED = 1600, 20


def _result(probe: str, at: datetime, rate: float, place: Location, technology: str) -> Result:
    result = sample_result(probe, finished_at=at, download_mbps=rate)
    link = msgspec.structs.replace(result.link, technology=technology)
    return msgspec.structs.replace(result, location=place, link=link)


def _seeded() -> list[Result]:
    start = datetime.combine(FIRST, time(), UTC) - VIETNAM + timedelta(minutes=1)
    results = []
    for index in range(COUNTED):
        at = start + timedelta(seconds=100 * index)
        rate = 37.5 if index % 2 else 39.5
        results.append(_result(f"vn-08-ban-na-{index % 2}", at, rate, TUYEN_QUANG, "4g"))
    for index in range(LIMITED):
        at = start + timedelta(seconds=100 * index + 50)
        slow = _result("vn-08-ban-na-2", at, 5.0, TUYEN_QUANG, "4g")
        provenance = msgspec.structs.replace(slow.provenance, probe_limited=True)
        results.append(msgspec.structs.replace(slow, provenance=provenance))
    results += [
        _result("vn-79-khu-1", start + timedelta(minutes=5 * i), 150.0, SAIGON, "5g")
        for i in range(50)
    ]
    return results


@pytest.fixture
async def seeded(store: VictoriaMetrics) -> VictoriaMetrics:
    writer = StoreWriter(store.url)
    try:
        results = _seeded()
        for start in range(0, len(results), 500):
            await writer.write(results[start : start + 500])
    finally:
        await writer.close()
    store.wait_for("count_over_time(qos_download_mbps[10d])", count=4)
    return store


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "LANG": "C.UTF-8"},
    )


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _report(store: VictoriaMetrics, output: Path, *extra: str) -> str:
    ran = _run(
        "report",
        "--store",
        store.url,
        "--area",
        "08",
        "--from",
        FIRST.isoformat(),
        "--to",
        f"{LAST:%d/%m/%Y}",
        "--output",
        str(output),
        *extra,
    )
    assert ran.returncode == 0, ran.stderr
    return _pdf_text(output.with_name(output.name + ".pdf"))


def _evaluate(evidence: Path) -> dict[str, object]:
    end = datetime.combine(LAST + timedelta(days=1), time(), UTC) - VIETNAM
    ran = _run(
        "evaluate",
        "--profile",
        "4g",
        "--input",
        str(evidence),
        "--now",
        end.isoformat(),
        "--window-days",
        "2",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    record: dict[str, object] = json.loads(ran.stdout)
    return record


async def test_report_from_the_store_reads_back_as_evaluate_judges(
    seeded: VictoriaMetrics, tmp_path: Path
) -> None:
    output = tmp_path / "bao-cao"
    page = str(tmp_path / "page.png")
    text = _report(seeded, output, "--lang", "vi", "--level", "village", "--page-png", page)
    evidence = tmp_path / "bao-cao-4g-viettel.csv"
    record = _evaluate(evidence)
    sha256 = record["input"]["sha256"]  # type: ignore[index]
    verdict = record["verdict"]
    assert verdict["status"] == "fail"  # type: ignore[index]
    assert verdict["n"] == COUNTED  # type: ignore[index]
    assert verdict["n_probe_limited"] == LIMITED  # type: ignore[index]

    flat = text.replace("\n", " ")
    assert "KHÔNG ĐẠT" in flat
    assert "Tuyên Quang" in flat
    villages = flat.split("Kết luận của từng thôn trong khu vực")[1]
    assert villages.split()[:3] == ["thôn", "công", "nghệ"]  # the table's header
    assert "Bản Ná, Xã Ngọc Đường, Tuyên Quang 4g Viettel KHÔNG ĐẠT 1.600 / 1.500" in villages
    assert "1.600 / 1.500" in flat  # n in Vietnamese figures
    assert "38,50 Mb/s" in flat
    assert sha256 in text.replace("\n", "")
    assert "5g" not in flat.split("Verdicts")[0]  # Hồ Chí Minh is not in Tuyên Quang's report
    assert "vn-79-khu-1" not in flat
    assert "giống nhau" in flat or "same verdict" in flat
    html = output.with_name(output.name + ".html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in html
    assert "KHÔNG ĐẠT" in html
    assert sha256 in html
    assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG")

    offline = tmp_path / "offline"
    ran = _run(
        "report",
        "--input",
        str(evidence),
        "--profile",
        "4g",
        "--area",
        "08",
        "--from",
        FIRST.isoformat(),
        "--to",
        LAST.isoformat(),
        "--output",
        str(offline),
        "--lang",
        "en",
    )
    assert ran.returncode == 0, ran.stderr
    english = _pdf_text(tmp_path / "offline.pdf")
    assert sha256 in english.replace("\n", "")
    flat = english.replace("\n", " ")
    assert "FAIL — 4g" in flat
    assert "1,600 / 1,500" in flat
    assert "KHÔNG ĐẠT" not in flat


async def test_a_period_without_samples_is_refused(seeded: VictoriaMetrics, tmp_path: Path) -> None:
    before = date(2020, 1, 1)
    ran = _run(
        "report",
        "--store",
        seeded.url,
        "--area",
        "08",
        "--from",
        before.isoformat(),
        "--to",
        (before + timedelta(days=5)).isoformat(),
        "--output",
        str(tmp_path / "r"),
        "--lang",
        "en",
    )
    assert ran.returncode == 2
    assert "no speed sample of Tuyên Quang" in ran.stderr
    assert "->" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "r.pdf").exists()
