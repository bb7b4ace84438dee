"""Export API: stored results and per-area verdicts as JSON, CSV or GeoJSON, paged.

GET /api/v1/results     one row per stored result, with the probe's coordinates: only with a
                        bearer token (RFC 6750) from the collector's --api-token-file
GET /api/v1/aggregates  one row per area x technology x operator at a `level`, judged over the
                        window by the same engine that writes the `qos_compliance_*` series

Results are read back from VictoriaMetrics' /api/v1/export; aggregates from the same rollups the
live verdicts use (collector/verdicts.py), so they cost per area, not per sample. Every parameter
is checked before the store is asked; a bad one is a 400 naming it and saying what would be
accepted. CSV cells that a spreadsheet would run as a formula are written as text.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import aiohttp
import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from collector.compliance import Verdict
from collector.export import ExportedSeries, ExportTooLargeError, export_series
from collector.series import FIELD_NAMES, LABEL_NAMES, MEASUREMENT
from collector.verdicts import Area, Level, areas_of, judge_window
from collector.verdicts import query as query_store
from contract.errors import ConfigError, QosfleetError, ServiceError
from contract.i18n import _
from contract.profiles import Profile
from contract.result import MAX_NAME_LENGTH, PROBE_ID_RE, Technology

Format = Literal["json", "csv", "geojson"]
Row = dict[str, Any]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# Each request reads its whole window from the store: bound what one request can ask for.
RESULTS_WINDOW = timedelta(days=1)
AGGREGATES_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=92)
LEVELS: tuple[Level, ...] = get_args(Level)
# Times outside these are typing errors, and some would overflow the window's arithmetic.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
UNIX_SECONDS = re.compile(r"[0-9]{1,11}(\.[0-9]{1,9})?")
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# RFC 6750's b64token; long enough that guessing is hopeless (openssl rand -base64 32: 44).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/-]{32,}=*")
REALM = 'Bearer realm="qosfleet export API"'
# Location filters an aggregate level allows: a coarser area judged on part of its samples would
# be a wrong verdict.
LOCATION_FILTERS: dict[Level, tuple[str, ...]] = {
    "village": ("province", "commune", "village"),
    "commune": ("province", "commune"),
    "province": ("province",),
    "nation": (),
}
COMMON_PARAMETERS = ("start", "end", "technology", "operator", "format", "limit", "offset")
RESULT_PARAMETERS = (*COMMON_PARAMETERS, "province", "commune", "village", "probe", "access")
AGGREGATE_PARAMETERS = (*COMMON_PARAMETERS, "province", "commune", "village", "level")
VERDICT_COLUMNS = (
    "profile",
    "status",
    "early_warning",
    "method",
    "n",
    "n_required",
    "n_attempts",
    "n_failed",
    "n_probe_limited",
    "n_unconverged",
    "mean_download_mbps",
    "ci_low",
    "ci_high",
    "share_at_or_above_min",
    "access_failure_rate",
    "mean_upload_mbps",
    "mean_latency_ms",
    "plan_conformity",
    "national_target",
)
_PATTERNS = {
    "province": re.compile(r"[0-9]{2}"),
    "commune": re.compile(r"[0-9]{5}"),
    "probe": PROBE_ID_RE,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "technology": get_args(Technology),
    "access": ("fixed", "mobile"),
    "format": get_args(Format),
    "level": LEVELS,
}


class BadRequestError(QosfleetError):
    """A query parameter we cannot serve; `parameter` names it."""

    def __init__(self, parameter: str, reason: str, hint: str = "") -> None:
        super().__init__(f"parameter {parameter!r}: {reason}", hint)
        self.parameter = parameter


class Query(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    filters: dict[str, str]  # label -> exact value
    format: Format
    limit: int
    offset: int
    level: Level = "village"


def parse_query(
    params: Iterable[tuple[str, str]],
    *,
    allowed: Sequence[str],
    default_window: timedelta,
    now: datetime,
) -> Query:
    """Check every parameter; BadRequestError names the first bad one."""
    values = _collect(params, allowed)
    end = _time(values, "end") or now
    start = _time(values, "start") or end - default_window
    if start >= end:
        raise BadRequestError("start", f"{start.isoformat()} is not before end {end.isoformat()}")
    if end - start > MAX_WINDOW:
        raise BadRequestError(
            "start", f"window longer than {MAX_WINDOW.days} days", "ask for shorter windows"
        )
    _check_values(values)
    level: Level = values.get("level", "village")  # type: ignore[assignment] # checked above
    if "level" in allowed:
        _check_level(values, level)
    filter_names = (*LABEL_NAMES, "probe")
    return Query(
        start=start,
        end=end,
        filters={k: v for k, v in values.items() if k in filter_names},
        format=values.get("format", "json"),  # type: ignore[arg-type] # checked above
        limit=_integer(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer(values, "offset", 0, 0, None),
        level=level,
    )


def _collect(params: Iterable[tuple[str, str]], allowed: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            raise BadRequestError(name, "unknown", f"known parameters: {', '.join(allowed)}")
        if name in values:
            raise BadRequestError(name, "given more than once")
        values[name] = value
    return values


def _check_values(values: Mapping[str, str]) -> None:
    for name, choices in _CHOICES.items():
        if name in values and values[name] not in choices:
            raise BadRequestError(name, f"{values[name]!r} is not one of {', '.join(choices)}")
    for name, pattern in _PATTERNS.items():
        if name in values and not pattern.fullmatch(values[name]):
            raise BadRequestError(name, f"{values[name]!r} is not a valid {name} code")
    for name in ("village", "operator"):
        if name in values and not 0 < len(values[name]) <= MAX_NAME_LENGTH:
            raise BadRequestError(name, f"must be 1 to {MAX_NAME_LENGTH} characters")
        if name in values and not values[name].isprintable():
            raise BadRequestError(name, "holds a character that is not printable, as no name does")


def _check_level(values: Mapping[str, str], level: Level) -> None:
    for name in ("province", "commune", "village"):
        if name in values and name not in LOCATION_FILTERS[level]:
            allowed = ", ".join(LOCATION_FILTERS[level]) or "nothing"
            raise BadRequestError(
                name,
                f"cannot narrow {level}-level aggregates",
                f"at level={level} filter by {allowed} (and technology, operator)",
            )


def _time(values: Mapping[str, str], name: str) -> datetime | None:
    text = values.get(name)
    if text is None:
        return None
    hint = "RFC 3339 (2026-11-24T12:00:00Z) or Unix seconds"
    try:
        moment = (
            datetime.fromtimestamp(float(text), UTC)
            if UNIX_SECONDS.fullmatch(text)
            else datetime.fromisoformat(text)
        )
    except (ValueError, OverflowError, OSError) as exc:
        raise BadRequestError(name, f"{text!r} is not a time", hint) from exc
    if moment.tzinfo is None:
        raise BadRequestError(name, f"{text!r} has no time zone", "end it with Z or +07:00")
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise BadRequestError(
            name, f"{text!r} is not between {EARLIEST_TIME.year} and {LATEST_TIME.year}", hint
        )
    return moment


def _integer(values: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = values.get(name)
    if text is None:
        return default
    number = int(text) if WHOLE_NUMBER.fullmatch(text) else -1
    if number < low or (high is not None and number > high):
        upper = f" to {high}" if high is not None else " or more"
        raise BadRequestError(name, f"{text!r} is not a whole number from {low}{upper}")
    return number


# reading -------------------------------------------------------------------------------------


def selector(names: Iterable[str], filters: Mapping[str, str]) -> str:
    """A series selector for the per-result series `names` with exact label filters."""
    parts = [f'__name__=~"{MEASUREMENT}_({"|".join(names)})"']
    parts += [f'{label}="{_quote(value)}"' for label, value in sorted(filters.items())]
    return "{" + ", ".join(parts) + "}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_key(metric: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in metric.items() if k != "__name__"))


def result_rows(series: Iterable[ExportedSeries]) -> list[Row]:
    """Join the per-field series back into one row per result (same labels, same timestamp)."""
    joined: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, float]] = {}
    for line in series:
        field = line.metric.get("__name__", "").removeprefix(f"{MEASUREMENT}_")
        key = _label_key(line.metric)
        for timestamp, value in zip(line.timestamps, line.values, strict=True):
            joined.setdefault((key, timestamp), {})[field] = value
    rows: list[Row] = []
    for (key, timestamp), values in joined.items():
        tags = dict(key)
        row: Row = {"time": datetime.fromtimestamp(timestamp / 1000, UTC)}
        row.update({name: tags.get(name) for name in LABEL_NAMES})
        row.update({name: values.get(name) for name in FIELD_NAMES})
        rows.append(row)
    rows.sort(key=lambda r: (r["time"], *(r[n] or "" for n in LABEL_NAMES)))
    return rows


def aggregate_rows(
    verdicts: Mapping[Area, Verdict],
    places: Mapping[Area, list[tuple[float, float]]],
    query: Query,
) -> list[Row]:
    """The verdicts at the query's level and filters, each at the mean of its probes' places."""
    rows = [
        _aggregate_row(area, verdict, places.get(area, []))
        for area, verdict in verdicts.items()
        if area.level == query.level
        and all(getattr(area, name, value) == value for name, value in query.filters.items())
    ]
    rows.sort(key=lambda r: tuple(r[n] or "" for n in Area._fields))
    return rows


async def area_places(
    session: aiohttp.ClientSession, store_url: str, query: Query
) -> dict[Area, list[tuple[float, float]]]:
    """Each probe link's latest coordinates in the window, per area it belongs to (a rollup)."""
    span = f"{round((query.end - query.start).total_seconds() * 1000)}ms"
    latest: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for axis in ("lat", "lon"):
        for vector in await query_store(
            session, store_url, f"last_over_time({MEASUREMENT}_{axis}[{span}])", query.end
        ):
            latest.setdefault(_label_key(vector.metric), {})[axis] = float(vector.value[1])
    places: dict[Area, list[tuple[float, float]]] = {}
    for key, position in latest.items():
        if len(position) == 2:  # noqa: PLR2004 - both coordinates
            for area in areas_of(dict(key)):
                places.setdefault(area, []).append((position["lat"], position["lon"]))
    return places


def _aggregate_row(area: Area, verdict: Verdict, places: list[tuple[float, float]]) -> Row:
    row: Row = {name: value or None for name, value in area._asdict().items()}
    row.update({name: getattr(verdict, name) for name in VERDICT_COLUMNS})
    row["window_start"] = verdict.window_start
    row["window_end"] = verdict.window_end
    row["lat"] = sum(p[0] for p in places) / len(places) if places else None
    row["lon"] = sum(p[1] for p in places) / len(places) if places else None
    return row


# rendering -----------------------------------------------------------------------------------


def render(request: web.Request, rows: list[Row], query: Query) -> web.Response:
    page = rows[query.offset : query.offset + query.limit]
    following = query.offset + len(page)
    next_url = (
        str(request.rel_url.update_query({"offset": str(following)}))
        if following < len(rows)
        else None
    )
    headers = {"X-Total-Count": str(len(rows))}
    if next_url is not None:
        headers["Link"] = f'<{next_url}>; rel="next"'
    if query.format == "csv":
        return web.Response(
            text=_csv(page), content_type="text/csv", charset="utf-8", headers=headers
        )
    paging = {"total": len(rows), "offset": query.offset, "limit": query.limit, "next": next_url}
    if query.format == "geojson":
        body: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [_feature(row) for row in page],
            **paging,
        }
        content_type = "application/geo+json"
    else:
        body = {"items": page, **paging}
        content_type = "application/json"
    return web.Response(body=msgspec.json.encode(body), content_type=content_type, headers=headers)


def _feature(row: Row) -> dict[str, Any]:
    lat, lon = row.get("lat"), row.get("lon")
    geometry = None if lat is None or lon is None else {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "geometry": geometry, "properties": row}


def _csv(rows: list[Row]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        # A name from a probe ("=HYPERLINK(...)"): a leading quote makes it text.
        return f"'{value}"
    return str(value)


# the application -----------------------------------------------------------------------------


def _error(status: int, message: str, hint: str = "") -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode({"error": message, "hint": hint}),
        content_type="application/json",
    )


# who may read raw results ------------------------------------------------------------------


class ApiTokens:
    """The bearer tokens that may read raw results; compared in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        # Digests have one length, so comparing them takes the same time whatever the token.
        self._digests = tuple(_digest(token) for token in tokens)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def allow(self, token: str) -> bool:
        given = _digest(token)
        # Every token is compared, so the time taken does not tell which one (or none) matched.
        return sum(hmac.compare_digest(given, digest) for digest in self._digests) > 0


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def read_api_tokens(path: Path) -> ApiTokens:
    """Tokens from a file: one a line; blank lines and lines starting with # are skipped."""
    option = "--api-token-file"
    hint = _("one token a line, e.g. `openssl rand -base64 32 >> FILE` (mode 0600)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else _("it is not UTF-8 text")
        raise ConfigError(
            option, _("cannot read {path}: {reason}").format(path=path, reason=reason), hint
        ) from exc
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if not TOKEN_PATTERN.fullmatch(token):
            raise ConfigError(
                option,
                _(
                    "{path} line {line} is not a token of 32 or more characters "
                    "(letters, digits and - . _ ~ + / =)"
                ).format(path=path, line=number),
                hint,
            )
        tokens.append(token)
    if not tokens:
        raise ConfigError(option, _("{path} holds no token").format(path=path), hint)
    return ApiTokens(tokens)


def _refusal(request: web.Request, tokens: ApiTokens) -> web.Response | None:
    """None when the request may read raw results, else the answer that says why not."""
    if not tokens:
        return _error(
            403,
            "raw results are not served: the collector has no tokens",
            "start qos-collector with --api-token-file; aggregates need none",
        )
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        response = _error(
            401,
            "raw results (with the probes' coordinates) need a bearer token",
            "send the header `Authorization: Bearer TOKEN`",
        )
        response.headers["WWW-Authenticate"] = REALM
        return response
    if not tokens.allow(token.strip()):
        response = _error(401, "the bearer token is not one of the collector's", "check it")
        response.headers["WWW-Authenticate"] = f'{REALM}, error="invalid_token"'
        return response
    return None


async def _index(_request: web.Request) -> web.Response:
    return web.json_response(
        {
            "results": {
                "path": "/api/v1/results",
                "parameters": RESULT_PARAMETERS,
                "authorization": "Bearer",
            },
            "aggregates": {"path": "/api/v1/aggregates", "parameters": AGGREGATE_PARAMETERS},
            "formats": get_args(Format),
            "levels": LEVELS,
        }
    )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except BadRequestError as exc:
        return _error(400, exc.message, exc.hint)
    except ServiceError as exc:
        return _error(503, exc.message, "the store is unreachable: try again later")
    return response


def api_app(
    store_url: str, profiles: dict[str, Profile], tokens: ApiTokens | None = None
) -> web.Application:
    """The export API over the store at `store_url`; raw results only for `tokens`."""
    session_key = web.AppKey("session", aiohttp.ClientSession)
    tokens = tokens or ApiTokens(())

    async def results(request: web.Request) -> web.Response:
        refusal = _refusal(request, tokens)
        if refusal is not None:
            return refusal
        query = parse_query(
            request.query.items(),
            allowed=RESULT_PARAMETERS,
            default_window=RESULTS_WINDOW,
            now=datetime.now(UTC),
        )
        match = selector(FIELD_NAMES, query.filters)
        try:
            series = await export_series(
                request.app[session_key], store_url, match, query.start, query.end
            )
        except ExportTooLargeError as exc:
            raise BadRequestError("start", exc.message, exc.hint) from exc
        return render(request, result_rows(series), query)

    async def aggregates(request: web.Request) -> web.Response:
        query = parse_query(
            request.query.items(),
            allowed=AGGREGATE_PARAMETERS,
            default_window=AGGREGATES_WINDOW,
            now=datetime.now(UTC),
        )
        session = request.app[session_key]
        window = query.end - query.start
        verdicts = await judge_window(session, store_url, profiles, now=query.end, window=window)
        places = await area_places(session, store_url, query)
        return render(request, aggregate_rows(verdicts, places, query), query)

    async def open_session(app: web.Application) -> AsyncIterator[None]:
        app[session_key] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        yield
        await app[session_key].close()

    app = web.Application(middlewares=[_errors])
    app.cleanup_ctx.append(open_session)
    app.router.add_get("/api/v1", _index)
    app.router.add_get("/api/v1/results", results)
    app.router.add_get("/api/v1/aggregates", aggregates)
    return app
