"""Writing results to the time-series store as InfluxDB line protocol.

VictoriaMetrics by default (it names a series `<measurement>_<field>`); the same line protocol works
with InfluxDB 2/3 (InfluxDB 2 keeps an escaped backslash as two). Labels are deterministic and
the timestamp is the measurement's, so a result delivered twice lands on the same sample.
collector/series.py maps a result to its series; dashboards/SERIES.md lists them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision

from collector.series import MEASUREMENT, fields, labels
from contract.errors import ServiceError
from contract.profiles import Profile
from contract.result import Location, Result
from contract.sampling import epoch_ms

BUCKET = "qosfleet"


# VictoriaMetrics reads `\\` as one backslash and `\\,` `\\=` `\\ ` as the character, and finds
# separators by the parity of the backslashes before them: escaping the backslash first keeps every
# value whole, a trailing backslash included. A line break cannot be escaped at all (the store
# splits lines before it reads escapes); the contract refuses it in every name
# (contract.result.check_names).
_TAG_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ "})


def make_line(
    measurement: str, tags: Mapping[str, str], values: Mapping[str, float | None], at_ms: int
) -> str:
    """One line of line protocol; empty tags and None or non-finite values are left out.

    Rendered here rather than with influxdb-client's Point, which costs ~40 us a line: at 5,000
    results/s that alone would be a fifth of a core. Every tag value but one holding a line break
    (which no name of the contract does) comes back from VictoriaMetrics as it went in.
    """
    tag_text = "".join(f",{key}={tag.translate(_TAG_ESCAPES)}" for key, tag in tags.items() if tag)
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


# What every VictoriaMetrics process says in its /metrics: when it started and how long it has
# run, both in whole seconds.
START_GAUGE = "vm_app_start_timestamp"
UPTIME_GAUGE = "vm_app_uptime_seconds"
RUN_CHECK_TIMEOUT_S = 5.0


class StoreRun(NamedTuple):
    """Which run of the store's processes answers: their start seconds, joined.

    A start second names one process only once that process has run past it (`settled`): two
    processes can start within one second (a crash loop), but none can start in the second of a
    process that is still running a second later.
    """

    starts: str
    settled: bool


class StoreWriter:
    """An open connection to the store; a write returns only when the store has the lines.

    "Has" is not "keeps": the store acknowledges rows it holds in memory for a few seconds. `run`
    tells which run of the store's processes answers, so the caller can tell that a restart may
    have lost acknowledged rows (collector/journal.py).
    """

    def __init__(self, url: str, metrics_urls: Sequence[str] = ()) -> None:
        self.url = url
        # Every process that may hold acknowledged rows in memory: the single node by default;
        # for a cluster, each vminsert and vmstorage (deploy/SCALING.md).
        self.metrics_urls = tuple(metrics_urls) or (f"{url.rstrip('/')}/metrics",)
        # VictoriaMetrics ignores token and org; InfluxDB 2 needs real ones (issue: store config).
        self._client = InfluxDBClientAsync(url=url, token="qosfleet", org="qosfleet")  # noqa: S106
        self._api = self._client.write_api()
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> StoreRun:
        """Which run of the store answers, from its processes' /metrics.

        A process keeps its start time for its whole life, so a different answer means a restart
        since the last one. Raises ServiceError when a process cannot say.
        """
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=RUN_CHECK_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        runs: list[StoreRun] = []
        for url in self.metrics_urls:
            try:
                async with self._session.get(url) as response:
                    response.raise_for_status()
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ServiceError(
                    f"cannot read {url}: {exc or type(exc).__name__}",
                    "check that the store runs and --store-metrics names its /metrics",
                ) from exc
            runs.append(process_run(text, url))
        return StoreRun(
            ",".join(run.starts for run in runs), settled=all(run.settled for run in runs)
        )

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
        if self._session is not None:
            await self._session.close()


def process_run(metrics_text: str, url: str) -> StoreRun:
    """One process's start second and whether it has run past it, from its /metrics text."""
    found: dict[str, str] = {}
    for line in metrics_text.splitlines():
        name, _, value = line.partition(" ")
        if name in {START_GAUGE, UPTIME_GAUGE}:
            found[name] = value.strip()
    try:
        return StoreRun(str(int(found[START_GAUGE])), settled=int(found[UPTIME_GAUGE]) >= 1)
    except (KeyError, ValueError) as exc:
        raise ServiceError(
            f"{url} does not show {START_GAUGE} and {UPTIME_GAUGE}: cannot tell when the store "
            "restarts",
            "point --store-metrics at the /metrics of each VictoriaMetrics process",
        ) from exc
