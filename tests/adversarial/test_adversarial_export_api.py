"""The export API of a real collector process: who may read raw results, hostile parameters,
formula cells, and an export line longer than any HTTP client's line buffer."""

from __future__ import annotations

import csv
import io
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import receipt_topic
from lab.services import VictoriaMetrics, free_port, mosquitto, victoria_metrics
from tests.adversarial.conftest import ADVERSARIAL, production_collector
from tests.integration.collector.support import EnrolledProbe, receipts

pytestmark = [ADVERSARIAL, pytest.mark.integration]

TOKEN = "Zq3v8R1xLk0pT6yW2bN9mC4dF7gH5jK8sA1eU3iO0rY="
# aiohttp's StreamReader.readline gives up on a line over 2 x 256 KiB.
LONG_SERIES_SAMPLES = 50_000
FORMULAS = {"village": '=HYPERLINK("http://198.18.0.66/x","Bấm")', "operator": "@SUM(A1:A9)"}


@dataclass
class Api:
    url: str
    port: int
    store: VictoriaMetrics
    broker_url: str

    def get(
        self, path: str, params: dict[str, str] | None = None, token: str | None = TOKEN
    ) -> tuple[int, dict[str, str], bytes]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}{path}{query}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir = tmp_path_factory.mktemp("adversarial-api")
    tokens = workdir / "api-tokens"
    tokens.write_text(f"# the regulator's analyst\n{TOKEN}\n", encoding="utf-8")
    tokens.chmod(0o600)
    port = free_port()
    with (
        mosquitto(workdir / "mosquitto") as broker,
        victoria_metrics(workdir / "victoria-metrics") as store,
        production_collector(
            workdir,
            broker.url,
            store.url,
            extra_args=("--api-listen", str(port), "--api-token-file", str(tokens)),
        ),
    ):
        yield Api(f"http://127.0.0.1:{port}", port, store, broker.url)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, words))
    return found


def test_listens_on_loopback_only_when_given_a_port(api: Api) -> None:
    assert listening_addresses(api.port) == {"127.0.0.1"}


def test_raw_results_need_a_bearer_token_aggregates_do_not(api: Api) -> None:
    status, headers, _ = api.get("/api/v1/results", token=None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, headers, _ = api.get("/api/v1/results", token="not-" + TOKEN)
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert api.get("/api/v1/results", token=TOKEN.lower())[0] == 401
    assert api.get("/api/v1/results")[0] == 200
    assert api.get("/api/v1/aggregates", token=None)[0] == 200


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "²"}, "limit"),
        ({"offset": "¹"}, "offset"),
        ({"limit": "9" * 5000}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"end": "0001-01-01T00:00:00Z"}, "end"),
        ({"start": "9999-12-31T23:59:59+00:00"}, "start"),
        ({"start": "99999999999"}, "start"),
        ({"end": "1e400"}, "end"),
        ({"end": "2026-02-30T00:00:00Z"}, "end"),
        ({"province": "٧٩"}, "province"),
        ({"village": "Ấp A\nB"}, "village"),
        ({"operator": "x" * 201}, "operator"),
        ({"format": "xlsx"}, "format"),
        ({"limit": "10", "limit ": "10"}, "limit "),
    ],
)
def test_every_bad_parameter_is_a_400_naming_it(
    api: Api, params: dict[str, str], named: str
) -> None:
    for path in ("/api/v1/results", "/api/v1/aggregates"):
        status, _, body = api.get(path, params)
        assert status == 400, (path, params, body)
        assert f"'{named}'" in json.loads(body)["error"]


async def test_csv_cells_are_never_formulas(api: Api) -> None:
    probe = EnrolledProbe.new("vn-79-formula", **FORMULAS)
    async with mqtt_client(BrokerConfig(url=api.broker_url), identifier="formula") as client:
        await probe.enroll(client)
        await client.subscribe(receipt_topic(probe.probe_id), qos=1)
        await probe.send(client, probe.result(seq=1))
        assert [r.status for r in await receipts(client, 1, timeout_s=15)] == ["stored"]
    api.store.flush()
    status, _, body = api.get("/api/v1/results", {"probe": probe.probe_id, "format": "csv"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [(row["village"], row["operator"]) for row in rows] == [
        (f"'{FORMULAS['village']}", f"'{FORMULAS['operator']}")
    ]
    # Machine formats carry the name as it is.
    status, _, body = api.get("/api/v1/results", {"probe": probe.probe_id})
    assert json.loads(body)["items"][0]["village"] == FORMULAS["village"]


def test_an_export_line_over_512_kib_is_read(api: Api) -> None:
    base = round((datetime.now(UTC) - timedelta(hours=20)).timestamp() * 1000)
    lines = "\n".join(
        f"qos,probe=vn-79-long,province=79,village=Ap download_mbps={n % 97}.5 {base + n * 1000}"
        for n in range(LONG_SERIES_SAMPLES)
    )
    written = urllib.request.Request(
        f"{api.store.url}/write?precision=ms", data=lines.encode(), method="POST"
    )
    urllib.request.urlopen(written, timeout=30).close()
    api.store.flush()
    exported = api.store.export('qos_download_mbps{probe="vn-79-long"}')
    assert len(json.dumps(exported)) > 512 * 1024  # one line, longer than aiohttp's readline takes

    status, headers, body = api.get("/api/v1/results", {"probe": "vn-79-long", "limit": "3"})
    assert status == 200, body
    assert headers["X-Total-Count"] == str(LONG_SERIES_SAMPLES)
    assert [item["download_mbps"] for item in json.loads(body)["items"]] == [0.5, 1.5, 2.5]
