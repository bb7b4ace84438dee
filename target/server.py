"""The HTTP measurement endpoints: streaming download, upload sink, echo for round trips."""

from __future__ import annotations

import time

from aiohttp import web

CHUNK = memoryview(bytes(1 << 20))  # one MiB of zeros, sent again and again without copying
MAX_DOWNLOAD_BYTES = 10 * 1000**3  # one request never streams more than 10 GB
MAX_UPLOAD_BYTES = 10 * 1000**3


async def download(request: web.Request) -> web.StreamResponse:
    """Stream `bytes` bytes (default 10 MB) of incompressible-enough zeros."""
    try:
        size = int(request.query.get("bytes", "10000000"))
    except ValueError:
        raise web.HTTPBadRequest(text="bytes must be a whole number\n") from None
    if not 0 < size <= MAX_DOWNLOAD_BYTES:
        raise web.HTTPBadRequest(text=f"bytes must be between 1 and {MAX_DOWNLOAD_BYTES}\n")
    response = web.StreamResponse(
        headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
    )
    response.content_length = size
    await response.prepare(request)
    remaining = size
    while remaining > 0:
        piece = CHUNK[: min(remaining, len(CHUNK))]
        await response.write(piece)
        remaining -= len(piece)
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    """Read and discard the body; answer how many bytes arrived and over how long."""
    started = time.perf_counter()
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        if received > MAX_UPLOAD_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=received)
    elapsed = time.perf_counter() - started
    return web.json_response({"bytes": received, "seconds": elapsed})


async def echo(_request: web.Request) -> web.Response:
    """A tiny answer, for timing a round trip over an open connection."""
    return web.Response(body=b"ok", headers={"Cache-Control": "no-store"})


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "qos-target"})


def build_app() -> web.Application:
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/echo", echo)
    app.router.add_get("/health", health)
    return app
