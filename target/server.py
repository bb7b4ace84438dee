"""The HTTP measurement endpoints: streaming download, upload sink, echo for round trips.

Also the few endpoints speedtest-cli needs, so it can be compared with the native runner offline:
it GETs /speedtest/latency.txt (expects "test=test"), /speedtest/random{N}x{N}.jpg (Ookla's
images are about 2 bytes per pixel; here they are that many random bytes) and POSTs to
/speedtest/upload.php (expects "size=<bytes>").
"""

from __future__ import annotations

import contextlib
import os
import time

from aiohttp import web

from target.iperf3 import Iperf3Server

CHUNK = memoryview(bytes(1 << 20))  # one MiB of zeros, sent again and again without copying
# speedtest-cli's images: random bytes, since a real JPEG does not compress either.
RANDOM_CHUNK = memoryview(os.urandom(1 << 20))
MAX_DOWNLOAD_BYTES = 10 * 1000**3  # one request never streams more than 10 GB
MAX_UPLOAD_BYTES = 10 * 1000**3
SPEEDTEST_SIDES = frozenset({350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000})
SPEEDTEST_BYTES_PER_PIXEL = 2


async def _stream(request: web.Request, size: int, chunk: memoryview) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
    )
    response.content_length = size
    await response.prepare(request)
    remaining = size
    # A client ending its test early resets the connection: that is how tests end, not an error.
    with contextlib.suppress(ConnectionError):
        while remaining > 0:
            piece = chunk[: min(remaining, len(chunk))]
            await response.write(piece)
            remaining -= len(piece)
        await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    """Stream `bytes` bytes (default 10 MB) of incompressible-enough zeros."""
    try:
        size = int(request.query.get("bytes", "10000000"))
    except ValueError:
        raise web.HTTPBadRequest(text="bytes must be a whole number\n") from None
    if not 0 < size <= MAX_DOWNLOAD_BYTES:
        raise web.HTTPBadRequest(text=f"bytes must be between 1 and {MAX_DOWNLOAD_BYTES}\n")
    return await _stream(request, size, CHUNK)


async def _drain(request: web.Request) -> int:
    """Read and discard the body; a client that stops early (a test ending) is no error."""
    received = 0
    with contextlib.suppress(ConnectionError):  # as in _stream: a test ending early
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received > MAX_UPLOAD_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=received)
    return received


async def upload(request: web.Request) -> web.Response:
    """Read and discard the body; answer how many bytes arrived and over how long."""
    started = time.perf_counter()
    received = await _drain(request)
    elapsed = time.perf_counter() - started
    return web.json_response({"bytes": received, "seconds": elapsed})


async def echo(_request: web.Request) -> web.Response:
    """A tiny answer, for timing a round trip over an open connection."""
    return web.Response(body=b"ok", headers={"Cache-Control": "no-store"})


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "qos-target"})


async def speedtest_latency(_request: web.Request) -> web.Response:
    return web.Response(text="test=test\n", headers={"Cache-Control": "no-store"})


async def speedtest_image(request: web.Request) -> web.StreamResponse:
    side = int(request.match_info["side"])
    if side not in SPEEDTEST_SIDES or request.match_info["other"] != request.match_info["side"]:
        raise web.HTTPNotFound
    return await _stream(request, side * side * SPEEDTEST_BYTES_PER_PIXEL, RANDOM_CHUNK)


async def speedtest_upload(request: web.Request) -> web.Response:
    received = await _drain(request)
    return web.Response(text=f"size={received}", headers={"Cache-Control": "no-store"})


def build_app(*, iperf3: Iperf3Server | None = None) -> web.Application:
    """The endpoints; with iperf3, an `iperf3 -s` runs (and is restarted) while the app does."""
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    if iperf3 is not None:
        app.cleanup_ctx.append(iperf3.lifetime)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/echo", echo)
    app.router.add_get("/health", health)
    app.router.add_get("/speedtest/latency.txt", speedtest_latency)
    app.router.add_get(r"/speedtest/random{side:\d+}x{other:\d+}.jpg", speedtest_image)
    app.router.add_post("/speedtest/upload.php", speedtest_upload)
    return app
