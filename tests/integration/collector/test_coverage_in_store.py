"""Coverage in a real VictoriaMetrics: every commune of the gazetteer, with its enrolled probes."""

from __future__ import annotations

import time

import pytest

from collector.coverage import coverage_lines, enrolled_places
from collector.registry import Pin, ProbeRecord, Standing
from collector.store import StoreWriter
from contract.places import provinces
from contract.result import Location
from lab.services import VictoriaMetrics

pytestmark = pytest.mark.integration

COMMUNES = sum(len(province.communes) for province in provinces().values())


def probe(probe_id: str, commune: str, standing: Standing = "trusted") -> ProbeRecord:
    location = Location(
        province_code="04", commune_code=commune, village="Na Sang", lat=22.6, lon=106.2
    )
    return ProbeRecord(probe_id, standing, Pin(public_key="k", location=location), None, None)


async def test_every_commune_has_a_series_and_a_probe_count(store: VictoriaMetrics) -> None:
    records = [
        probe("vn-04-a", "01273"),
        probe("vn-04-b", "01273"),
        probe("vn-04-c", "01279", "revoked"),  # a revoked probe measures nothing
        ProbeRecord("vn-04-d", None, None, None, None),  # never enrolled
    ]
    now = time.time()
    writer = StoreWriter(store.url)
    try:
        await writer.write_lines(coverage_lines(enrolled_places(records), round(now * 1000)))
    finally:
        await writer.close()
    every = store.wait_for("qos_coverage_probes_enrolled", at=now, count=COMMUNES)
    assert len(every) == COMMUNES == 3321
    covered = store.wait_for("qos_coverage_probes_enrolled > 0", at=now)
    assert [(s["metric"]["commune"], s["value"][1]) for s in covered] == [("01273", "2")]
    assert covered[0]["metric"]["commune_name"] == provinces()["04"].communes["01273"]
    assert covered[0]["metric"]["province"] == "04"
    revoked = store.wait_for('qos_coverage_probes_enrolled{commune="01279"}', at=now)
    assert revoked[0]["value"][1] == "0"
