"""Writing results to the time-series store as InfluxDB line protocol.

VictoriaMetrics by default (it names a series `<measurement>_<field>`); the same line protocol works
with InfluxDB 2/3. Labels are deterministic and the timestamp is the measurement's, so a result
delivered twice lands on the same sample. dashboards/SERIES.md lists every series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision

from contract.errors import ServiceError
from contract.result import Location, Result

MEASUREMENT = "qos"
BUCKET = "qosfleet"
# The labels and fields `labels` and `fields` produce, in their order (readers use these).
LABEL_NAMES = (
    "probe",
    "province",
    "commune",
    "village",
    "access",
    "technology",
    "operator",
    "interface",
    "target",
    "ip_version",
)
FIELD_NAMES = (
    "download_mbps",
    "upload_mbps",
    "latency_idle_median_ms",
    "latency_loaded_median_ms",
    "attempt_failed",
    "probe_limited",
    "errors",
    "bytes_used",
    "clock_synced",
    "ipv6_works",
    "lat",
    "lon",
    "plan_download_mbps",
    "plan_upload_mbps",
    "seq",
)


def labels(result: Result, location: Location | None = None) -> dict[str, str]:
    """The series identity of a result: where, which link, which target."""
    location = result.location or location
    return {
        "probe": result.probe_id,
        "province": location.province_code if location else "",
        "commune": location.commune_code if location else "",
        "village": location.village if location else "",
        "access": result.link.access,
        "technology": result.link.technology,
        "operator": result.link.operator,
        "interface": result.link.interface,
        "target": result.target.id,
        "ip_version": str(result.target.ip_version),
    }


def fields(result: Result, location: Location | None = None) -> dict[str, float]:
    """The numbers of one result; absent measurements are absent fields, not zeros."""
    measurements = result.measurements
    location = result.location or location
    values: dict[str, float] = {
        "bytes_used": float(result.provenance.bytes_used),
        "probe_limited": float(result.provenance.probe_limited),
        "errors": float(len(result.errors)),
        # QCVN access failure: a download attempted that could not run. A light test (latency,
        # IPv6) or a probe-side problem (interface missing) is not an attempt on the link.
        "attempt_failed": float(
            measurements.download is None and any(e.stage == "download" for e in result.errors)
        ),
        "seq": float(result.seq),
    }
    optional: dict[str, float | None] = {
        "download_mbps": measurements.download.mbps if measurements.download else None,
        "upload_mbps": measurements.upload.mbps if measurements.upload else None,
        "clock_synced": None if result.clock.synced is None else float(result.clock.synced),
        "ipv6_works": float(measurements.ipv6.status == "works") if measurements.ipv6 else None,
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "plan_download_mbps": result.link.plan.download_mbps if result.link.plan else None,
        "plan_upload_mbps": result.link.plan.upload_mbps if result.link.plan else None,
    }
    latency = measurements.latency
    if latency and latency.idle:
        optional["latency_idle_median_ms"] = latency.idle.median_ms
    if latency and latency.loaded:
        optional["latency_loaded_median_ms"] = latency.loaded.median_ms
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


# Control characters become (escaped) spaces: a raw newline would end the line.
_TAG_ESCAPES = str.maketrans(
    {",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "}
)


def make_line(
    measurement: str, tags: Mapping[str, str], values: Mapping[str, float | None], at_ms: int
) -> str:
    """One line of line protocol; empty tags and None or non-finite values are left out.

    Rendered here rather than with influxdb-client's Point, which costs ~40 us a line: at 5,000
    results/s that alone would be a fifth of a core. A trailing backslash in a tag is dropped (it
    would escape the separator after it).
    """
    tag_text = "".join(
        f",{key}={tag.translate(_TAG_ESCAPES).rstrip(chr(92))}" for key, tag in tags.items() if tag
    )
    field_text = ",".join(
        f"{key}={float(number)!r}"
        for key, number in values.items()
        if number is not None and math.isfinite(number)
    )
    return f"{measurement}{tag_text} {field_text} {at_ms}"


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def result_line(result: Result, location: Location | None = None) -> str:
    """A result as one line; `location` (from enrollment) labels a result that carries none."""
    return make_line(
        MEASUREMENT,
        labels(result, location),
        fields(result, location),
        epoch_ms(result.finished_at),
    )


class StoreWriter:
    """An open connection to the store; a write returns only when the store has the lines."""

    def __init__(self, url: str) -> None:
        self.url = url
        # VictoriaMetrics ignores token and org; InfluxDB 2 needs real ones (issue: store config).
        self._client = InfluxDBClientAsync(url=url, token="qosfleet", org="qosfleet")  # noqa: S106
        self._api = self._client.write_api()

    async def write(self, results: list[Result]) -> None:
        await self.write_lines([result_line(result) for result in results])

    async def write_lines(self, lines: list[str]) -> None:
        try:
            await self._api.write(
                bucket=BUCKET,
                record=lines,
                write_precision=WritePrecision.MS,  # type: ignore[arg-type] # a str constant in the client
            )
        except Exception as exc:  # the client raises many kinds: all mean "not stored"
            raise ServiceError(
                f"store at {self.url} did not take the write: {type(exc).__name__}: {exc}",
                "check that VictoriaMetrics runs and --store points at it",
            ) from exc

    async def close(self) -> None:
        await self._client.close()
