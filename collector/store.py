"""Writing results to the time-series store as InfluxDB line protocol.

VictoriaMetrics by default (it names a series `<measurement>_<field>`); the same line protocol works
with InfluxDB 2/3. Labels are deterministic and the timestamp is the measurement's, so a result
delivered twice lands on the same sample. collector/series.py maps a result to its series;
dashboards/SERIES.md lists them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision

from collector.series import MEASUREMENT, fields, labels
from contract.errors import ServiceError
from contract.profiles import Profile
from contract.result import Location, Result
from contract.sampling import epoch_ms

BUCKET = "qosfleet"


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


def result_line(
    result: Result,
    location: Location | None = None,
    profiles: Mapping[str, Profile] | None = None,
) -> str:
    """A result as one line; `location` (from enrollment) labels a result that carries none, the
    profiles decide its sample class (collector/series.py)."""
    return make_line(
        MEASUREMENT,
        labels(result, location),
        fields(result, location, profiles),
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
