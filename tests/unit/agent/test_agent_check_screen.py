"""The technician's screen of `qos-agent check`: the verdict first, 80 columns without a broken
value, in Vietnamese or English; --simple, --csv and --json's verdict; typos answered."""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from rich.console import Console
from uuid6 import uuid7

import agent
from agent.cli import main
from agent.commands.check import ERROR_HINTS, show, simple_lines
from agent.screen import fit
from agent.summary import csv_rows, json_with_verdict
from contract import i18n
from contract.result import (
    SCHEMA,
    Clock,
    Ipv6,
    Latency,
    LatencyStats,
    Link,
    Location,
    MeasurementError,
    Measurements,
    Provenance,
    Result,
    Target,
    Throughput,
    decode_result,
)

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
# A figure and its unit, as the screen writes them in either language.
VALUE = re.compile(r"(?:[≥≤] )?\d[\d.,]* (?:Mb/s|MB|ms|s)(?![\w/])")


def _result(technology: str = "4g", download: float | None = 43.31, **link: object) -> Result:
    idle = LatencyStats(
        median_ms=31.5, p95_ms=48.25, jitter_ms=3.5, loss=0.0, count=10, method="icmp"
    )
    speed = Throughput(
        mbps=download or 0.0,
        bytes=54_000_000,
        duration_s=9.75,
        flows=4,
        warmup_s=2.5,
        stop_reason="stable",
        confidence=0.031,
    )
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id="vn-11-ban-na-hin",
        seq=7,
        started_at=NOW - timedelta(seconds=30),
        finished_at=NOW,
        clock=Clock(synced=True),
        location=Location(
            province_code="11", commune_code="03211", village="Bản Nà Hin", lat=21.39, lon=103.02
        ),
        link=msgspec.convert(
            {"interface": "wwan0", "access": "mobile", "technology": technology}
            | {"operator": "Viettel", "setting": "outdoor_moving"}
            | link,
            Link,
        ),
        target=Target(id="hn1", address="198.18.0.1", ip_version=4),
        measurements=Measurements(
            download=speed if download is not None else None,
            upload=msgspec.structs.replace(speed, mbps=12.5),
            latency=Latency(idle=idle, loaded=msgspec.structs.replace(idle, median_ms=180.0)),
        ),
        provenance=Provenance(agent_version="0.1.0", runner="http", bytes_used=61_234_567),
    )


@pytest.fixture(params=["vi", "en"])
def language(request: pytest.FixtureRequest) -> Iterator[i18n.Language]:
    yield i18n.use(request.param)
    i18n.use("en")


def _screen(result: Result, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    show(console, result, None)
    return console.export_text().splitlines()


def test_the_verdict_comes_first_with_its_profile_and_figure() -> None:
    i18n.use("vi")
    try:
        assert _screen(_result())[0] == "ĐẠT — bộ chỉ tiêu 4g: tải xuống 43,3 Mb/s (≥ 40 Mb/s)"
        assert _screen(_result(download=25.0))[0] == (
            "KHÔNG ĐẠT — bộ chỉ tiêu 4g: tải xuống 25,0 Mb/s (≥ 40 Mb/s)"
        )
    finally:
        i18n.use("en")
    assert _screen(_result())[0] == "PASS — 4g profile: download 43.3 Mb/s (≥ 40 Mb/s)"
    assert _screen(_result(download=25.0))[0].startswith("FAIL — 4g profile: download 25.0")
    assert _screen(_result("unknown"))[0] == "NOT JUDGED — no QCVN profile for technology unknown"


def test_a_failed_attempt_fails_on_access() -> None:
    error = MeasurementError(stage="download", code="connect-failed", message="refused")
    failed = msgspec.structs.replace(_result(download=None), errors=(error,))
    assert _screen(failed)[0] == "FAIL — 4g profile: access: the attempt failed"


def test_the_screen_fits_80_columns_and_never_breaks_a_value(language: i18n.Language) -> None:
    result = _result()
    assert max(len(line) for line in _screen(result)) <= 80
    # Each value the screen writes is whole on one line: unwrapped, then found on a line, at
    # every width down to 60 (the wrap falls somewhere else at each).
    unwrapped = " ".join(_screen(result, width=1000))
    values = set(VALUE.findall(unwrapped))
    expected = {"43,3 Mb/s", "31,5 ms"} if language == "vi" else {"43.3 Mb/s", "31.5 ms"}
    assert expected | {"≥ 40 Mb/s"} <= values
    assert len(values) >= 8
    for width in range(60, 81):
        lines = _screen(result, width)
        assert max(len(line) for line in lines) <= width
        broken = [value for value in values if not any(value in line for line in lines)]
        assert not broken, (width, broken)


def test_fit_holds_a_figure_and_its_unit_together() -> None:
    text = "aaaa bbbb ccc 40 Mb/s end, n ≥ 1.500 counted"
    assert fit(text, 16).splitlines() == ["aaaa bbbb ccc", "40 Mb/s end,", "n ≥ 1.500", "counted"]


def test_simple_is_a_few_plain_lines(language: i18n.Language) -> None:
    lines = simple_lines(_result(), None)
    assert 3 <= len(lines) <= 6
    assert lines[0].startswith("ĐẠT — " if language == "vi" else "PASS — ")
    assert not any("\x1b" in line or "[" in line for line in lines)


def test_csv_reads_the_same_in_every_language(language: i18n.Language) -> None:
    (row,) = csv.DictReader(io.StringIO(csv_rows(_result())))
    assert row["verdict"] == "pass"
    assert row["profile"] == "4g"
    assert row["download_mbps"] == "43.31"
    assert row["latency_loaded_ms"] == "180"
    assert row["bytes_used"] == "61234567"


def test_json_is_the_envelope_with_the_verdict_beside_it() -> None:
    result = _result(download=25.0)
    answer = msgspec.json.decode(json_with_verdict(result))
    verdict = answer.pop("verdict")
    # Readers of the envelope read it as before: it is the published result, field for field.
    assert decode_result(msgspec.json.encode(answer), now=NOW) == result
    assert verdict["outcome"] == "fail"
    assert verdict["profile"] == "4g"
    download = verdict["criteria"][0]
    assert download == {
        "id": "download.mean",
        "part": "regulation",
        "value": 25.0,
        "threshold": 40.0,
        "meets": False,
    }


@pytest.mark.parametrize(
    ("arguments", "suggested"),
    [
        (["check", "--jsn"], "did you mean --json?"),
        (["check", "--runner", "iperf"], "did you mean iperf3?"),
        (["chek"], "did you mean check?"),
        (["status", "--confg", "x"], "did you mean --config?"),
    ],
)
def test_a_typo_is_answered_with_a_suggestion(
    arguments: list[str], suggested: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2
    assert suggested in capsys.readouterr().err


def test_lang_chooses_the_language_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        for arguments in (["--lang", "vi", "check", "--jsn"], ["check", "--jsn", "--lang=vi"]):
            with pytest.raises(SystemExit):
                main(arguments)
            assert "có phải ý bạn là --json?" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["--lang", "fr", "check"])
        assert "vi, en" in capsys.readouterr().err
    finally:
        i18n.use("en")


def test_a_target_that_is_down_gets_a_hint(language: i18n.Language) -> None:
    error = MeasurementError(stage="download", code="connect-failed", message="refused")
    failed = msgspec.structs.replace(_result(download=None), errors=(error,))
    screen = " ".join(line.strip("│ ") for line in _screen(failed, width=1000))
    hint = "máy đích không trả lời" if language == "vi" else "the target did not answer"
    assert "download: connect-failed — refused" in screen
    assert hint in screen
    assert any(hint in line for line in simple_lines(failed, None))


def test_the_ipv6_checks_are_named_in_the_language(language: i18n.Language) -> None:
    evidence: dict[str, str | int | float | bool] = {
        "global_address": "fd00::2",
        "ula": True,
        "aaaa": "no-dns",
        "tcp_connect_ms": 1.25,
        "happy_eyeballs": "not-tested: no dual-stack target",
    }
    measured = msgspec.structs.replace(
        _result().measurements, ipv6=Ipv6(status="works", evidence=evidence)
    )
    screen = " ".join(
        line.strip("│ ")
        for line in _screen(msgspec.structs.replace(_result(), measurements=measured), 1000)
    )
    if language == "vi":
        expected = "địa chỉ toàn cầu fd00::2, địa chỉ ULA có, tra AAAA không có máy chủ DNS, "
        expected += "kết nối TCP 1,2 ms, Happy Eyeballs chưa kiểm tra"
    else:
        expected = "global address fd00::2, ULA address yes, AAAA lookup no DNS server, "
        expected += "TCP connect 1.2 ms, Happy Eyeballs not tested"
    assert expected in screen


def _constants(node: ast.AST | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _constants(node.body) | _constants(node.orelse)
    return set()


def _codes_at(node: ast.AST) -> set[str]:
    """A MeasurementError's code, failed_speed's code, a `code = ...` chosen before either, an
    `_error_code` classifier's answers."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "MeasurementError":
            return {v for k in node.keywords if k.arg == "code" for v in _constants(k.value)}
        if node.func.id == "failed_speed" and len(node.args) > 2:
            return _constants(node.args[2])
    if isinstance(node, ast.Assign) and any(
        isinstance(target, ast.Name) and target.id == "code" for target in node.targets
    ):
        return _constants(node.value)
    if isinstance(node, ast.FunctionDef) and node.name == "_error_code":
        returns = [r for r in ast.walk(node) if isinstance(r, ast.Return)]
        return {v for r in returns for v in _constants(r.value)}
    return set()


def _error_codes() -> set[str]:
    """Every error code the agent's source gives a measurement error."""
    return {
        code
        for path in Path(agent.__file__).parent.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for code in _codes_at(node)
    }


def test_every_error_the_agent_gives_has_a_hint() -> None:
    codes = _error_codes()
    assert {"connect-failed", "server-busy", "no-data", "interface-missing"} <= codes
    assert sorted(codes - ERROR_HINTS.keys()) == []
