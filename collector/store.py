"""Writing results to the time-series store as InfluxDB line protocol.

VictoriaMetrics by default (it names a series `<measurement>_<field>`); the same line protocol works
with InfluxDB 2/3. Labels are deterministic and the timestamp is the measurement's, so a result
delivered twice lands on the same sample. dashboards/SERIES.md lists every series.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from contract.errors import ServiceError
from contract.result import Result

MEASUREMENT = "qos"
BUCKET = "qosfleet"


def labels(result: Result) -> dict[str, str]:
    """The series identity of a result: where, which link, which target."""
    location = result.location
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


def fields(result: Result) -> dict[str, float]:
    """The numbers of one result; absent measurements are absent fields, not zeros."""
    measurements = result.measurements
    values: dict[str, float] = {
        "bytes_used": float(result.provenance.bytes_used),
        "probe_limited": float(result.provenance.probe_limited),
        "errors": float(len(result.errors)),
        "attempt_failed": float(measurements.download is None and bool(result.errors)),
        "seq": float(result.seq),
    }
    optional: dict[str, float | None] = {
        "download_mbps": measurements.download.mbps if measurements.download else None,
        "upload_mbps": measurements.upload.mbps if measurements.upload else None,
        "clock_synced": None if result.clock.synced is None else float(result.clock.synced),
        "ipv6_works": float(measurements.ipv6.status == "works") if measurements.ipv6 else None,
        "lat": result.location.lat if result.location else None,
        "lon": result.location.lon if result.location else None,
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


def make_point(
    measurement: str, tags: Mapping[str, str], values: Mapping[str, float | None], at: datetime
) -> Point:
    """One line of line protocol; empty tags and None values are left out."""
    point = Point(measurement)
    for key, tag in tags.items():
        if tag:
            point.tag(key, tag)
    for key, number in values.items():
        if number is not None:
            point.field(key, number)
    return point.time(at, WritePrecision.MS)


def to_point(result: Result) -> Point:
    return make_point(MEASUREMENT, labels(result), fields(result), result.finished_at)


class StoreWriter:
    """An open connection to the store; `write` returns only when the store has the points."""

    def __init__(self, url: str) -> None:
        self.url = url
        # VictoriaMetrics ignores token and org; InfluxDB 2 needs real ones (issue: store config).
        self._client = InfluxDBClientAsync(url=url, token="qosfleet", org="qosfleet")  # noqa: S106
        self._api = self._client.write_api()

    async def write(self, results: list[Result]) -> None:
        await self.write_points([to_point(result) for result in results])

    async def write_points(self, points: list[Point]) -> None:
        try:
            await self._api.write(bucket=BUCKET, record=points)
        except Exception as exc:  # the client raises many kinds: all mean "not stored"
            raise ServiceError(
                f"store at {self.url} did not take the write: {type(exc).__name__}: {exc}",
                "check that VictoriaMetrics runs and --store points at it",
            ) from exc

    async def close(self) -> None:
        await self._client.close()
