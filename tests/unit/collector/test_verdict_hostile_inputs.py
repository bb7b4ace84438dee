"""The verdict engine against hostile inputs: a store answering what it should not, campaign files
a spreadsheet or a forger writes, profiles that contradict the method. Each is refused clearly or
judged by the method's rules, never turned into a wrong verdict or a crash."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from collector.compliance import Sample, evaluate_compliance
from collector.evaluate import run_evaluate
from collector.verdicts import _Vector, query, stats_from_rollups
from contract.errors import ConfigError, ServiceError
from contract.profiles import BUNDLED, bundled_profiles, load_profiles
from contract.sampling import too_close

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
VILLAGE = {"province": "11", "commune": "03211", "village": "Bản Nà Hin", "technology": "4g",
           "operator": "Viettel", "setting": "indoor", "plan": ""}  # fmt: skip


# The store's answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollup", "labels"),
    [
        ("class", {"vmrange": "6.995e+00...7.813e+00"}),  # a class code the collector never writes
        ("day_part", {"vmrange": "5.995e+00...6.813e+00"}),  # a fifth part of the day
        ("class", {"vmrange": "1e308...1e309"}),
        ("download", {"rollup": "max_over_time"}),
    ],
)
def test_an_answer_of_an_unexpected_shape_is_refused(rollup: str, labels: dict[str, str]) -> None:
    answers = {rollup: [_Vector(VILLAGE | labels, (0.0, "3"))]}
    with pytest.raises(ServiceError):
        stats_from_rollups(answers)


@pytest.mark.parametrize("value", ["-3", "garbage", "NaN", "+Inf"])
def test_a_count_that_is_no_count_is_refused(value: str) -> None:
    answers = {"class": [_Vector(VILLAGE | {"vmrange": "8.799e-01...1.000e+00"}, (0.0, value))]}
    with pytest.raises(ServiceError, match="not an exact whole number"):
        stats_from_rollups(answers)


def test_a_store_that_does_not_answer_in_time_is_an_outage() -> None:
    async def silent(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def ask() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", silent)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            timeout = aiohttp.ClientTimeout(total=0.2)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await query(session, f"http://127.0.0.1:{port}", "1", NOW)
        finally:
            await runner.cleanup()

    # A bare TimeoutError would end keep_verdicts_fresh, and with it the collector's TaskGroup.
    with pytest.raises(ServiceError, match="TimeoutError"):
        asyncio.run(ask())


# The sample rules --------------------------------------------------------------------------


def test_the_same_millisecond_of_one_device_counts_once_without_a_minimum_gap() -> None:
    # Two targets of one fixed-line test stamped alike: the probe says gap 0, the profile no gap.
    assert too_close(0.0, 0.0)
    assert not too_close(0.001, 0.0)
    assert not too_close(None, 0.0)


def test_the_window_is_taken_at_the_stores_millisecond() -> None:
    profile = bundled_profiles()["4g"]
    window = timedelta(days=1)
    samples = [
        # Stored at `now` (the store keeps milliseconds): inside, as the rollup counts it.
        Sample(timestamp=NOW + timedelta(microseconds=300), download_mbps=50.0, device="a"),
        # Stored at the window's start: outside, as the rollup leaves it.
        Sample(
            timestamp=NOW - window + timedelta(microseconds=300), download_mbps=60.0, device="b"
        ),
    ]
    verdict = evaluate_compliance(samples, profile, now=NOW, window=window)
    assert (verdict.n, verdict.mean_download_mbps) == (1, 50.0)


# evaluate's files ---------------------------------------------------------------------------


def _evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *argv: str
) -> tuple[int, dict[str, object] | None, str]:
    csv_file = tmp_path / "campaign.csv"
    csv_file.write_text(text, encoding="utf-8")
    code = run_evaluate(["--input", str(csv_file), "--json", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_a_draft_profile_applies_its_ceiling_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 4g-draft-2023 is no technology's default, yet declares the 4G ceiling: one absurd sample
    # must not enter its statistics.
    text = "timestamp,download_mbps\n2025-03-10T08:00:00Z,99999\n2025-03-10T09:00:00Z,41\n"
    code, report, err = _evaluate(tmp_path, capsys, text, "--profile", "4g-draft-2023")
    assert code == 0
    assert report is not None
    verdict = report["verdict"]
    assert isinstance(verdict, dict)
    assert (verdict["n"], verdict["n_implausible"]) == (1, 1)
    assert "line 2: a rate above the 4g ceiling of 2,000 Mb/s" in err


@pytest.mark.parametrize(
    ("stamp", "zone"),
    [
        ("0001-01-01T00:00:00", "+07:00"),  # year 0 in UTC
        ("0001-01-01T03:00:00+00:00", "UTC"),  # no window fits before it
        ("1969-12-31T23:59:59Z", "UTC"),  # before anything the store can hold
    ],
)
def test_a_time_before_the_epoch_is_a_bad_row_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp: str, zone: str
) -> None:
    text = f"timestamp,download_mbps\n{stamp},40\n2025-03-10T08:00:00Z,41\n"
    code, report, err = _evaluate(tmp_path, capsys, text, "--profile", "4g", "--timezone", zone)
    assert code == 0, err
    assert report is not None
    record = report["input"]
    assert isinstance(record, dict)
    assert [row["line"] for row in record["bad_rows"]] == [2]
    assert "line 2: timestamp" in err


@pytest.mark.parametrize("rate", ["1.234", "1.234,5", "12.345.678"])
def test_a_thousands_separator_in_a_decimal_comma_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    # A spreadsheet set to Vietnamese groups thousands with a point: "1.234" is 1234 Mb/s there.
    text = f"timestamp;download_mbps\n10/03/2025 08:00;{rate}\n10/03/2025 09:00;41,5\n"
    code, report, err = _evaluate(tmp_path, capsys, text, "--profile", "4g")
    assert code == 0, err
    assert report is not None
    assert report["verdict"]["n"] == 1  # type: ignore[index]
    assert "line 2: download_mbps" in err
    assert "thousands separator" in err


def test_a_decimal_point_in_a_semicolon_file_is_still_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "timestamp;download_mbps\n10/03/2025 08:00;0.500\n10/03/2025 09:00;41.25\n"
    code, report, err = _evaluate(tmp_path, capsys, text, "--profile", "4g")
    assert code == 0, err
    assert report is not None
    assert report["verdict"]["n"] == 2  # type: ignore[index]


# Profiles that contradict the method --------------------------------------------------------


def _edited_profiles(tmp_path: Path, old: str, new: str) -> Path:
    text = BUNDLED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "profiles.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_plan_conformity_cannot_be_a_programme_indicator(tmp_path: Path) -> None:
    # It would give a regulation status (plan_conformity) that the verdict's status ignores.
    path = _edited_profiles(
        tmp_path, 'programme = ["download.mean"]', 'programme = ["download.mean", "download.plan"]'
    )
    with pytest.raises(ConfigError, match="plan conformity"):
        load_profiles(path)


def test_a_share_of_upload_samples_is_refused(tmp_path: Path) -> None:
    # No engine counts it: every verdict of the profile would stay insufficient-data for ever.
    path = _edited_profiles(
        tmp_path,
        "upload = { mean_min_mbps = 30.0 }",
        "upload = { mean_min_mbps = 30.0, share_min_mbps = 10.0, share_required = 0.9 }",
    )
    with pytest.raises(ConfigError, match="upload"):
        load_profiles(path)


def test_a_row_spanning_lines_is_reported_at_its_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "timestamp,download_mbps,setting\r\n"
        '2025-03-10T08:00:00Z,41,"in\r\ndoor"\r\n'  # lines 2-3
        "\r\n"
        "2025-03-10T09:00:00Z,abc,\r\n"  # line 5
        "2025-03-10T10:00:00Z,3000,\r\n"  # line 6: above the 4G ceiling
        "2025-03-10T11:00:00Z,42,\r\n"
    )
    code, report, err = _evaluate(tmp_path, capsys, text, "--profile", "4g")
    assert code == 0, err
    assert report is not None
    record = report["input"]
    assert isinstance(record, dict)
    assert [row["line"] for row in record["bad_rows"]] == [2, 5, 6]


def test_an_overlong_field_names_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "timestamp,download_mbps\n2025-03-10T08:00:00Z,41\n"
        f"2025-03-10T08:10:00Z,{'4' * 200_000}\n2025-03-10T09:00:00Z,42\n"
    )
    code, _, err = _evaluate(tmp_path, capsys, text, "--profile", "4g")
    assert code == 2
    assert "line 3: not valid CSV" in err
