"""qos-target's endpoints, served for real on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import BaseTestServer, TestServer

from target.server import build_app


@pytest.fixture
async def server() -> AsyncIterator[BaseTestServer]:
    async with TestServer(build_app(), host="127.0.0.1") as running:
        yield running


async def test_download_streams_exactly_the_bytes_asked(server: BaseTestServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/download"), params={"bytes": "3000001"}) as response,
    ):
        body = await response.read()
    assert response.status == 200
    assert len(body) == 3_000_001
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("size", ["0", "-5", "lots", "99999999999999"])
async def test_download_refuses_bad_sizes(server: BaseTestServer, size: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/download"), params={"bytes": size}) as response,
    ):
        assert response.status == 400
        assert "bytes must" in await response.text()


async def test_upload_counts_what_arrived(server: BaseTestServer) -> None:
    payload = b"x" * 2_500_000
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url("/upload"), data=payload) as response,
    ):
        answer = await response.json()
    assert answer["bytes"] == len(payload)
    assert answer["seconds"] >= 0


async def test_echo_and_health(server: BaseTestServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/echo")) as response:
            assert await response.read() == b"ok"
        async with session.get(server.make_url("/health")) as response:
            assert (await response.json())["service"] == "qos-target"
