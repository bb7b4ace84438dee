"""Reading raw samples back from VictoriaMetrics' /api/v1/export (JSON lines, one per series).

A line holds every sample of one series in the window, so it has no useful length limit: a busy
series over a month is megabytes. The body is read in chunks and split on newlines here rather
than with the HTTP client's readline, which refuses a line beyond its buffer; what one request
may read in all is bounded instead.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp
import msgspec

from contract.errors import ServiceError

CHUNK_BYTES = 256 * 1024
# One request's whole export, as JSON; decoded it takes about three times as much memory.
MAX_EXPORT_BYTES = 128 * 1024 * 1024


class ExportedSeries(msgspec.Struct, frozen=True):
    """One line of VictoriaMetrics' /api/v1/export."""

    metric: dict[str, str]
    values: list[float]
    timestamps: list[int]


class ExportTooLargeError(ServiceError):
    """The window holds more than one request may read."""


_decoder = msgspec.json.Decoder(ExportedSeries)


async def export_series(
    session: aiohttp.ClientSession,
    store_url: str,
    match: str,
    start: datetime,
    end: datetime,
    *,
    max_bytes: int = MAX_EXPORT_BYTES,
) -> list[ExportedSeries]:
    """The series `match` selects between start and end; ExportTooLargeError past `max_bytes`."""
    params = {
        "match[]": match,
        "start": f"{start.timestamp():.3f}",
        "end": f"{end.timestamp():.3f}",
    }
    series: list[ExportedSeries] = []
    partial = bytearray()  # the start of a line whose newline has not arrived yet
    total = 0
    try:
        async with session.get(f"{store_url}/api/v1/export", params=params) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise ExportTooLargeError(
                        f"the store holds more than {max_bytes // 2**20} MiB of samples for "
                        "this request",
                        "ask for a shorter window, or narrow it to a province, commune or village",
                    )
                # Only the new chunk is searched, so a line of any length costs linear time.
                last = chunk.rfind(b"\n")
                if last < 0:
                    partial += chunk
                    continue
                partial += chunk[:last]
                series.extend(_decode_lines(partial))
                partial = bytearray(chunk[last + 1 :])
        series.extend(_decode_lines(partial))
    except (aiohttp.ClientError, msgspec.DecodeError) as exc:
        raise ServiceError(
            f"cannot read from the store at {store_url}: {exc}",
            "check that VictoriaMetrics runs and --store points at it",
        ) from exc
    return series


def _decode_lines(text: bytes | bytearray) -> list[ExportedSeries]:
    return [_decoder.decode(line) for line in text.split(b"\n") if line.strip()]
