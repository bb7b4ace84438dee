"""The export API's pure parts: parameters, tokens, CSV cells; and the export line reader."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from collector import cli as collector_cli
from collector.api import (
    AGGREGATE_PARAMETERS,
    RESULT_PARAMETERS,
    ApiTokens,
    BadRequestError,
    Query,
    _cell,
    parse_query,
    read_api_tokens,
)
from collector.export import ExportedSeries, ExportTooLargeError, export_series
from contract.errors import ConfigError

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
TOKEN = "Zq3v8R1xLk0pT6yW2bN9mC4dF7gH5jK8sA1eU3iO0rY="
OTHER = "Yw7-Kd2_pQ9.zX4~mB6+nC1/vF5gH8jL3sA0eR2tU9i"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(RESULT_PARAMETERS) | st.text(max_size=8),
            st.text(max_size=40) | st.from_regex(r"\A-?[0-9.e+:TZ-]{0,30}\Z"),
        ),
        max_size=6,
    ),
    st.sampled_from([RESULT_PARAMETERS, AGGREGATE_PARAMETERS]),
)
def test_any_parameters_give_a_query_or_a_400_naming_one(
    params: list[tuple[str, str]], allowed: tuple[str, ...]
) -> None:
    try:
        query = parse_query(params, allowed=allowed, default_window=timedelta(days=1), now=NOW)
    except BadRequestError as exc:
        assert exc.parameter in {name for name, _ in params} | {"start", "end"}
    else:
        assert isinstance(query, Query)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+84 912", "'+84 912"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tA", "'\tA"),
        ("\rA", "'\rA"),
        ("Ấp Thạnh Hòa", "Ấp Thạnh Hòa"),
        (-12.5, "-12.5"),  # a number of ours is a number
    ],
)
def test_csv_cells_a_spreadsheet_would_run_are_text(value: object, cell: str) -> None:
    assert _cell(value) == cell


def test_tokens_are_read_one_a_line_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# analysts\n\n{TOKEN}\n  {OTHER}  \n", encoding="utf-8")
    tokens = read_api_tokens(path)
    assert tokens.allow(TOKEN)
    assert tokens.allow(OTHER)
    assert not tokens.allow(TOKEN[:-1])
    assert not tokens.allow("")
    assert not ApiTokens(())


@pytest.mark.parametrize("text", ["", "# only a comment\n", "short-token\n", f"{TOKEN} extra\n"])
def test_a_token_file_without_usable_tokens_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_api_tokens(path)
    assert caught.value.key == "--api-token-file"


def _export_body(series: list[ExportedSeries]) -> bytes:
    return b"".join(msgspec.json.encode(line) + b"\n" for line in series)


async def _served(body: bytes) -> TestServer:
    """A stand-in for /api/v1/export sending `body` in chunks of random sizes."""
    chunks = random.Random(7)

    async def export(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        start = 0
        while start < len(body):
            size = chunks.choice([1, 7, 4096, 65_536, 300_000])
            await response.write(body[start : start + size])
            start += size
        return response

    app = web.Application()
    app.router.add_get("/api/v1/export", export)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_export_lines_of_any_length_are_read_and_what_is_read_is_bounded() -> None:
    series = [
        ExportedSeries({"__name__": "qos_download_mbps", "probe": f"p{n}"}, [1.5] * n, [7] * n)
        for n in (1, 60_000, 0, 3)  # the second line is ~600 KiB
    ]
    body = _export_body(series)
    server = await _served(body)
    url = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            got = await export_series(session, url, "qos_download_mbps", NOW, NOW)
            assert got == series
            with pytest.raises(ExportTooLargeError):
                await export_series(session, url, "x", NOW, NOW, max_bytes=len(body) - 1)
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--verdict-interval", "1e-9"),
        ("--verdict-interval", "nan"),
        ("--fleet-interval", "0"),
        ("--max-age-days", "-1"),
        ("--max-age-days", "inf"),
    ],
)
def test_collector_numbers_out_of_range_are_refused(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        collector_cli.main(["serve", option, value])
    assert stopped.value.code == 2
    assert "out of range" in capsys.readouterr().err
