"""The export API over a real VictoriaMetrics holding stored results."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector.api import ApiTokens, api_app
from collector.store import StoreWriter
from contract.profiles import bundled_profiles
from contract.result import Link, Location, Result
from lab.services import VictoriaMetrics
from tests.strategies import sample_result

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "k2Vx0bq4yT9mZ8cL1nR5sW7uA3dF6gH2jJ4kP9qX0vB="
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
VILLAGES = (
    # Each: probe id, commune code, village name, latitude, longitude, technology, Mb/s.
    ("vn-79-a", "26734", "Ấp Thạnh Hòa", 10.77, 106.70, "4g", 43.0),
    ("vn-79-b", "26734", "Ấp Bình Lợi", 10.79, 106.72, "4g", 25.0),
    ("vn-79-c", "26740", "Ấp Tân Phú", 10.80, 106.75, "5g", 150.0),
)


def _results() -> list[Result]:
    results = []
    for probe, commune, village, lat, lon, technology, mbps in VILLAGES:
        location = Location(
            province_code="79", commune_code=commune, village=village, lat=lat, lon=lon
        )
        link = Link(interface="wwan0", access="mobile", technology=technology, operator="Viettel")  # type: ignore[arg-type]
        for n in range(4):
            result = sample_result(
                probe, finished_at=NOW - timedelta(minutes=10 + n), download_mbps=mbps + n
            )
            results.append(msgspec.structs.replace(result, location=location, link=link, seq=n))
    return results


@pytest.fixture
async def api(store: VictoriaMetrics) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    writer = StoreWriter(store.url)
    await writer.write(_results())
    await writer.close()
    store.flush()
    client: TestClient[web.Request, web.Application] = TestClient(
        TestServer(api_app(store.url, bundled_profiles(), ApiTokens([TOKEN])))
    )
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


WINDOW = {"start": (NOW - timedelta(hours=1)).isoformat(), "end": NOW.isoformat()}


async def test_results_as_json_are_paged_in_time_order(
    api: TestClient[web.Request, web.Application],
) -> None:
    first = await api.get("/api/v1/results", params={**WINDOW, "limit": "5"}, headers=AUTHORIZED)
    assert first.status == 200
    page = await first.json()
    assert page["total"] == 12
    assert len(page["items"]) == 5
    assert page["next"] is not None
    times = [item["time"] for item in page["items"]]
    assert times == sorted(times)
    second = await api.get(page["next"], headers=AUTHORIZED)
    rest = await second.json()
    assert rest["offset"] == 5
    assert len(rest["items"]) == 5
    assert {i["probe"] for i in page["items"] + rest["items"]} <= {v[0] for v in VILLAGES}
    item = page["items"][0]
    assert item["village"] is not None
    assert item["download_mbps"] is not None
    assert item["lat"] is not None


async def test_results_filtered_as_csv_and_geojson(
    api: TestClient[web.Request, web.Application],
) -> None:
    reply = await api.get(
        "/api/v1/results",
        params={**WINDOW, "village": "Ấp Bình Lợi", "format": "csv"},
        headers=AUTHORIZED,
    )
    assert reply.status == 200
    assert reply.headers["X-Total-Count"] == "4"
    rows = list(csv.DictReader(io.StringIO(await reply.text())))
    assert {row["probe"] for row in rows} == {"vn-79-b"}
    assert sorted(float(row["download_mbps"]) for row in rows) == [25.0, 26.0, 27.0, 28.0]

    reply = await api.get(
        "/api/v1/results",
        params={**WINDOW, "technology": "5g", "format": "geojson"},
        headers=AUTHORIZED,
    )
    collection = await reply.json(content_type="application/geo+json")
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 4
    assert collection["features"][0]["geometry"] == {
        "type": "Point",
        "coordinates": [106.75, 10.80],
    }


async def test_aggregates_per_commune_and_village(
    api: TestClient[web.Request, web.Application],
) -> None:
    reply = await api.get("/api/v1/aggregates", params={**WINDOW, "level": "commune"})
    assert reply.status == 200
    rows = (await reply.json())["items"]
    assert {(r["commune"], r["technology"]) for r in rows} == {
        ("26734", "4g"),
        ("26740", "5g"),
    }
    commune = next(r for r in rows if r["commune"] == "26734")
    assert commune["n"] == 8
    assert commune["mean_download_mbps"] == pytest.approx(
        (43 + 44 + 45 + 46 + 25 + 26 + 27 + 28) / 8
    )
    assert commune["status"] == "insufficient-data"
    assert commune["village"] is None

    reply = await api.get(
        "/api/v1/aggregates",
        params={**WINDOW, "level": "village", "commune": "26734", "format": "geojson"},
    )
    features = (await reply.json(content_type="application/geo+json"))["features"]
    assert {f["properties"]["village"] for f in features} == {"Ấp Thạnh Hòa", "Ấp Bình Lợi"}
    assert all(f["geometry"]["type"] == "Point" for f in features)


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/v1/results", {"provnce": "79"}, "provnce"),
        ("/api/v1/results", {"province": "7"}, "province"),
        ("/api/v1/results", {"technology": "6g"}, "technology"),
        ("/api/v1/results", {"start": "yesterday"}, "start"),
        ("/api/v1/results", {"start": "2026-01-01T00:00:00"}, "start"),
        ("/api/v1/results", {"limit": "0"}, "limit"),
        ("/api/v1/results", {"format": "xml"}, "format"),
        ("/api/v1/aggregates", {"level": "district"}, "level"),
        ("/api/v1/aggregates", {"level": "province", "commune": "26734"}, "commune"),
        (
            "/api/v1/aggregates",
            {"start": "2025-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "start",
        ),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    api: TestClient[web.Request, web.Application], path: str, params: dict[str, str], named: str
) -> None:
    reply = await api.get(path, params=params, headers=AUTHORIZED)
    assert reply.status == 400
    body = await reply.json()
    assert f"'{named}'" in body["error"]
