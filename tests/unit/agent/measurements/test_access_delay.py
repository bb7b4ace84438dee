"""Access delay against a real qos-target on loopback, and the failures that become errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent.engine import UNENROLLED_LINK, measure_link, target_for
from agent.envelope import build_result
from agent.measurements import access_delay
from agent.measurements.base import Binding
from agent.measurements.kind import LinkUnderTest, MeasureOptions, registered_kinds
from contract.result import Clock, decode_result, encode_result
from lab.services import free_port
from target.server import build_app

SERVER_WAIT_S = 0.3


@pytest.fixture
async def target() -> AsyncIterator[str]:
    async with TestServer(build_app(), host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


async def _slow_download(_request: web.Request) -> web.Response:
    await asyncio.sleep(SERVER_WAIT_S)
    return web.Response(body=b"x" * 1000)


@pytest.fixture
async def slow_target() -> AsyncIterator[str]:
    """A target that takes SERVER_WAIT_S to start answering, or answers 404 elsewhere."""
    app = web.Application()
    app.router.add_get("/download", _slow_download)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that never accepts: the connection is made (backlog), nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def _link(url: str) -> LinkUnderTest:
    return LinkUnderTest(target_url=url, binding=Binding())


async def test_access_delay_is_a_kind_in_the_result_with_its_own_times(target: str) -> None:
    assert "access_delay" in registered_kinds().kinds
    options = MeasureOptions(kinds=("access_delay",))
    measured = await measure_link(target, None, options=options)
    result = build_result(
        None,
        link=UNENROLLED_LINK,
        target=target_for(target, None),
        measured=measured,
        clock=Clock(synced=True),
    )
    assert result.errors == ()
    block = decode_result(encode_result(result)).measurements.kinds["access_delay"]
    delay = block.values["access_delay"]
    assert 0 < delay < 1000  # ms, on loopback
    assert block.started_at is not None
    assert block.finished_at is not None
    elapsed_ms = (block.finished_at - block.started_at).total_seconds() * 1000
    assert delay <= elapsed_ms + 1
    # A request and a status line, never the body.
    assert 0 < (block.bytes_used or 0) < 1000
    assert result.provenance.bytes_used == block.bytes_used


async def test_the_delay_runs_to_the_first_byte_of_the_answer(slow_target: str) -> None:
    reading = await access_delay.measure(_link(slow_target))
    assert reading.errors == ()
    assert reading.block is not None
    assert reading.block["values"]["access_delay"] >= SERVER_WAIT_S * 1000


async def test_a_closed_port_is_an_access_failure_not_a_delay() -> None:
    reading = await access_delay.measure(_link(f"http://127.0.0.1:{free_port()}"))
    assert reading.block is None
    assert [(e.stage, e.code) for e in reading.errors] == [("access_delay", "connect-failed")]


async def test_no_answer_in_time_is_a_timeout(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_delay, "ACCESS_TIMEOUT_S", 0.2)
    reading = await access_delay.measure(_link(f"http://127.0.0.1:{silent_port}"))
    assert reading.block is None
    assert [e.code for e in reading.errors] == ["timeout"]


async def test_an_answer_other_than_200_is_no_delay(
    slow_target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_delay, "REQUEST_PATH", "/nothing-here")
    reading = await access_delay.measure(_link(slow_target))
    assert reading.block is None
    assert [e.code for e in reading.errors] == ["bad-answer"]
    assert reading.bytes_used > 0
