"""Measurement kinds: the entry-point registry, the one outcome shape, the one result builder."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import msgspec
import pytest

from agent.engine import UNENROLLED_LINK, measure_link, target_for
from agent.envelope import build_result
from agent.measurements.kind import (
    LinkOutcome,
    Measurement,
    MeasureOptions,
    Outcome,
    Reading,
    Transfer,
    load_kinds,
    registered_kinds,
)
from contract.errors import ConfigError
from contract.quantities import ENTRY_POINT_GROUP, quantities_of
from contract.result import Clock, MeasurementError, Result, decode_result, encode_result

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

# A site's own package: a kind measuring "hops", installed as a distribution with an entry point.
SITE_KIND = """
from contract.quantities import Quantity
from agent.measurements.kind import Reading

class Hops:
    name = "hops"
    slot = ("kinds", "hops")
    jobs = frozenset({"speed", "light"})
    order = 90
    during = None
    delay_s = 0.0
    bulk = False
    quantities = (Quantity("hops", "hop count", "hops", "hops", 1, "<="),)

    async def run(self, link):
        return Reading(block={"values": {"hops": 7.0}}, bytes_used=120)

KIND = Hops()
NOT_A_KIND = object()
"""


@pytest.fixture
def site_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installed distribution `site-kinds` whose entry points name its kinds."""
    (tmp_path / "site_kinds.py").write_text(textwrap.dedent(SITE_KIND), encoding="utf-8")
    info = tmp_path / "site_kinds-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: site-kinds\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhops = site_kinds:KIND\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return info


def test_the_installed_kinds_come_in_the_order_a_test_runs_them() -> None:
    registry = registered_kinds()
    assert registry.unusable == ()
    kinds = registry.kinds
    assert list(kinds)[:6] == [
        "access_delay", "latency", "download", "latency_loaded", "upload", "ipv6",
    ]  # fmt: skip
    assert all(isinstance(kind, Measurement) for kind in kinds.values())
    assert kinds["latency_loaded"].during == "download"
    assert {name for name, kind in kinds.items() if kind.bulk} == {"download", "upload"}


def test_a_site_adds_a_kind_from_its_own_distribution(site_distribution: Path) -> None:
    assert site_distribution.exists()
    found = entry_points(group=ENTRY_POINT_GROUP)
    kinds = load_kinds(found).kinds
    assert list(kinds)[-1] == "hops"  # order 90: after the bundled kinds
    assert "latency" in kinds
    assert quantities_of(found).quantities["hops"].counted_field == "counted_hops_hops"


async def test_a_site_kind_lands_in_the_result_with_its_own_times(
    site_distribution: Path,
) -> None:
    assert site_distribution.name.endswith(".dist-info")
    registry = load_kinds(entry_points(group=ENTRY_POINT_GROUP))
    options = MeasureOptions(kinds=("hops",))
    measured = await measure_link("http://127.0.0.1:9", None, options=options, registry=registry)
    result = build_result(
        None,
        link=UNENROLLED_LINK,
        target=target_for("http://127.0.0.1:9", None),
        measured=measured,
        clock=Clock(synced=True),
    )
    block = result.measurements.kinds["hops"]
    assert block.values == {"hops": 7.0}
    assert block.bytes_used == 120
    assert block.started_at is not None
    assert block.finished_at is not None
    assert result.started_at <= block.started_at <= block.finished_at <= result.finished_at
    assert result.provenance.bytes_used == 120
    # Through the wire and back: the collector's decoder reads it without knowing the kind.
    assert decode_result(encode_result(result)).measurements.kinds["hops"] == block


async def test_a_kind_that_raises_is_an_error_beside_the_others_readings(
    site_distribution: Path,
) -> None:
    (site_distribution.parent / "faulty_kinds.py").write_text(
        textwrap.dedent(SITE_KIND).replace(
            'return Reading(block={"values": {"hops": 7.0}}, bytes_used=120)',
            'raise RuntimeError("a bug in the site kind")',
        ),
        encoding="utf-8",
    )
    (site_distribution / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhops = faulty_kinds:KIND\n", encoding="utf-8"
    )
    registry = load_kinds(entry_points(group=ENTRY_POINT_GROUP))
    options = MeasureOptions(kinds=("hops", "ipv6"))
    measured = await measure_link("http://127.0.0.1:9", None, options=options, registry=registry)
    assert [outcome.kind for outcome in measured.outcomes] == ["ipv6", "hops"]
    (failed,) = [outcome for outcome in measured.outcomes if outcome.kind == "hops"]
    assert failed.reading.block is None
    assert [(e.stage, e.code) for e in failed.reading.errors] == [("hops", "internal")]
    assert "a bug in the site kind" in failed.reading.errors[0].message


async def test_a_broken_site_kind_is_an_error_in_every_result_not_the_end_of_measuring(
    site_distribution: Path,
) -> None:
    (site_distribution / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhops = site_kinds:NOT_A_KIND\nlost = site_kinds:MISSING\n"
        "renamed = site_kinds:KIND\n"
    )
    registry = load_kinds(entry_points(group=ENTRY_POINT_GROUP))
    assert "latency" in registry.kinds
    reasons = {error.stage: error.message for error in registry.unusable}
    assert set(reasons) == {"hops", "lost", "renamed"}
    assert "hops = site_kinds:NOT_A_KIND" in reasons["hops"]
    assert "not a measurement kind" in reasons["hops"]
    assert "cannot be loaded" in reasons["lost"]
    assert "names its kind 'hops'" in reasons["renamed"]
    options = MeasureOptions(kinds=("ipv6",))
    measured = await measure_link("http://127.0.0.1:9", None, options=options, registry=registry)
    assert [outcome.kind for outcome in measured.outcomes] == ["ipv6"]
    assert {error.code for error in measured.all_errors} == {"kind-unusable"}
    # The collector's side: the broken kinds declare nothing, and say why.
    found = quantities_of(entry_points(group=ENTRY_POINT_GROUP))
    assert "access_delay" in found.quantities
    assert len(found.unusable) == 1  # the missing one; NOT_A_KIND declares nothing
    assert "hops" in found.quantities  # the misnamed kind still declares its quantity


def test_no_kind_at_all_says_to_reinstall() -> None:
    with pytest.raises(ConfigError, match="no usable measurement kind") as raised:
        load_kinds([])
    assert "pip install -e" in raised.value.hint


async def test_an_unknown_kind_is_refused_before_measuring() -> None:
    with pytest.raises(ConfigError, match="nosuch: no such measurement"):
        await measure_link("http://127.0.0.1:9", None, options=MeasureOptions(kinds=("nosuch",)))


def _outcome(kind: str, slot: tuple[str, ...], reading: Reading, start_s: int) -> Outcome:
    return Outcome(
        kind=kind,
        slot=slot,
        started_at=T0 + timedelta(seconds=start_s),
        finished_at=T0 + timedelta(seconds=start_s + 1),
        reading=reading,
    )


def _built(*outcomes: Outcome, errors: tuple[MeasurementError, ...] = ()) -> LinkOutcome:
    return LinkOutcome(
        runner="http",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=30),
        outcomes=outcomes,
        errors=errors,
    )


def _result(measured: LinkOutcome) -> Result:
    return build_result(
        None,
        link=UNENROLLED_LINK,
        target=target_for("http://198.18.0.2:8080", None),
        measured=measured,
        clock=Clock(synced=True),
    )


def test_every_block_has_the_same_outer_shape_and_the_provenance_follows_the_download() -> None:
    throughput = {"mbps": 80.0, "bytes": 10_000_000, "duration_s": 1.0, "flows": 4}
    stats = {
        "median_ms": 20.0, "p95_ms": 30.0, "jitter_ms": 1.0, "loss": 0.0, "count": 10,
        "method": "tcp-connect",
    }  # fmt: skip
    measured = _built(
        _outcome("latency", ("latency", "idle"), Reading(block=stats, bytes_used=320), 0),
        _outcome(
            "download",
            ("download",),
            Reading(
                block=throughput,
                bytes_used=11_000_000,
                attempt=True,
                transfer=Transfer(flows=4, warmup_s=0.5, stop_reason="stable", confidence=0.01),
                tool_version="http 1",
                cpu_peak_percent=40.0,
            ),
            2,
        ),
        _outcome("latency_loaded", ("latency", "loaded"), Reading(block=stats, bytes_used=99), 3),
        _outcome("ipv6", ("ipv6",), Reading(block={"status": "no-v6"}, bytes_used=10), 5),
    )
    result = _result(measured)
    measurements = result.measurements
    assert measurements.latency is not None
    blocks = [
        measurements.download,
        measurements.latency.idle,
        measurements.latency.loaded,
        measurements.ipv6,
    ]
    assert all(blocks)
    assert [block.started_at if block else None for block in blocks] == [
        T0 + timedelta(seconds=s) for s in (2, 0, 3, 5)
    ]
    assert [block.bytes_used if block else None for block in blocks] == [11_000_000, 320, 99, 10]
    provenance = result.provenance
    assert (provenance.flows, provenance.warmup_s, provenance.stop_reason) == (4, 0.5, "stable")
    assert provenance.bytes_used == 11_000_000 + 320 + 99 + 10
    assert provenance.tool_version == "http 1"
    assert provenance.cpu_peak_percent == 40.0


def test_a_block_the_contract_refuses_is_an_error_not_a_lost_result() -> None:
    measured = _built(
        _outcome("ipv6", ("ipv6",), Reading(block={"status": "no-v6"}), 0),
        _outcome("hops", ("kinds", "hops"), Reading(block={"values": {"hops": -1.0}}), 1),
        errors=(MeasurementError(stage="bind", code="x", message="y"),),
    )
    result = _result(measured)
    assert result.measurements.kinds == {}
    assert result.measurements.ipv6 is not None
    codes = [(e.stage, e.code) for e in result.errors]
    assert codes == [("bind", "x"), ("hops", "invalid-block")]


def test_results_written_before_blocks_had_times_still_decode() -> None:
    result = _result(_built(_outcome("ipv6", ("ipv6",), Reading(block={"status": "works"}), 0)))
    old = msgspec.json.decode(encode_result(result))
    for key in ("started_at", "finished_at", "bytes_used"):
        del old["measurements"]["ipv6"][key]
    assert "kinds" not in old["measurements"]  # left off when empty: old readers see nothing new
    decoded = decode_result(msgspec.json.encode(old))
    assert decoded.measurements.ipv6 is not None
    assert decoded.measurements.ipv6.started_at is None
    assert decoded.measurements.kinds == {}
