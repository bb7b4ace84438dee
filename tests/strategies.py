"""Hypothesis strategies for valid wire results (shared by the unit tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from uuid6 import uuid7

from contract.result import (
    SCHEMA,
    Clock,
    KindBlock,
    Latency,
    LatencyStats,
    Link,
    Location,
    MeasurementError,
    Measurements,
    Plan,
    Provenance,
    Result,
    Target,
    Throughput,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

mbps = st.floats(min_value=0, max_value=100_000, allow_nan=False)
millis = st.floats(min_value=0, max_value=600_000, allow_nan=False)
# Any character a name may hold: printable ones (contract.result.check_names), space included.
name_characters = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), include_characters=" "
)
text = st.text(name_characters, min_size=1, max_size=40).filter(lambda s: s.strip() != "")


@st.composite
def throughput(draw: st.DrawFn) -> Throughput:
    """A direction whose rate is its bytes over its duration, as the contract says."""
    duration_s = draw(st.floats(min_value=0.1, max_value=3600, allow_nan=False))
    rate = draw(mbps)
    return Throughput(
        mbps=rate,
        bytes=round(rate * 1e6 / 8 * duration_s),
        duration_s=duration_s,
        flows=draw(st.integers(min_value=1, max_value=16)),
        warmup_s=draw(st.floats(min_value=0, max_value=10, allow_nan=False)),
    )


latency_stats = st.builds(
    LatencyStats,
    median_ms=millis,
    p95_ms=millis,
    jitter_ms=millis,
    loss=st.floats(min_value=0, max_value=1, allow_nan=False),
    count=st.integers(min_value=0, max_value=1000),
    method=st.sampled_from(["icmp", "tcp-connect", "http-echo"]),
)
location = st.builds(
    Location,
    province_code=st.sampled_from(["01", "79", "96"]),
    commune_code=st.from_regex(r"\A\d{5}\Z"),
    village=text,
    lat=st.floats(min_value=8, max_value=24, allow_nan=False),
    lon=st.floats(min_value=102, max_value=110, allow_nan=False),
)
link = st.builds(
    Link,
    interface=st.sampled_from(["eth0", "wwan0", "enp1s0"]),
    access=st.sampled_from(["fixed", "mobile"]),
    technology=st.sampled_from(["ftth", "4g", "5g", "unknown"]),
    operator=text,
    plan=st.none() | st.builds(Plan, download_mbps=mbps, upload_mbps=mbps),
)


# Blocks of kinds added as plugins: a declared quantity (access delay) or one nobody declared.
kind_blocks = st.dictionaries(
    st.sampled_from(["access_delay", "site_kind"]),
    st.builds(
        KindBlock,
        values=st.dictionaries(
            st.sampled_from(["access_delay", "made_up"]),
            st.floats(min_value=0, max_value=1e9, allow_nan=False),
            max_size=2,
        ),
        bytes_used=st.none() | st.integers(min_value=0, max_value=10**6),
    ),
    max_size=2,
)


@st.composite
def results(draw: st.DrawFn) -> Result:
    started = draw(
        st.datetimes(
            min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
            max_value=datetime(2026, 11, 24, 11),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id=draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,20}\Z")),
        seq=draw(st.integers(min_value=0, max_value=2**53)),
        started_at=started,
        finished_at=started + draw(st.timedeltas(timedelta(0), timedelta(minutes=5))),
        clock=Clock(synced=draw(st.none() | st.booleans())),
        location=draw(st.none() | location),
        link=draw(link),
        target=Target(id="t1", address="198.18.0.1", ip_version=draw(st.sampled_from([4, 6]))),
        measurements=Measurements(
            download=draw(st.none() | throughput()),
            upload=draw(st.none() | throughput()),
            latency=draw(st.none() | st.builds(Latency, idle=latency_stats, loaded=latency_stats)),
            kinds=draw(kind_blocks),
        ),
        provenance=Provenance(
            agent_version="0.1.0",
            runner=draw(st.sampled_from(["http", "iperf3"])),
            bytes_used=draw(st.integers(min_value=0, max_value=10**12)),
            probe_limited=draw(st.booleans()),
        ),
        errors=tuple(
            draw(
                st.lists(
                    st.builds(MeasurementError, stage=text, code=text, message=st.text()),
                    max_size=2,
                )
            )
        ),
    )


def sample_result(
    probe_id: str = "vn-79-test-probe",
    *,
    finished_at: datetime | None = None,
    village: str = "Ấp Thạnh Hòa",
    download_mbps: float = 43.0,
) -> Result:
    """One plain valid result measured just now (or at `finished_at`), for integration tests."""
    finished = finished_at or datetime.now(UTC)
    return Result(
        schema=SCHEMA,
        id=uuid7(),
        probe_id=probe_id,
        seq=1,
        started_at=finished - timedelta(seconds=10),
        finished_at=finished,
        clock=Clock(synced=True),
        location=Location(
            province_code="79", commune_code="26734", village=village, lat=10.77, lon=106.70
        ),
        link=Link(interface="wwan0", access="mobile", technology="4g", operator="Viettel"),
        target=Target(id="hcm1", address="198.18.0.1", ip_version=4),
        measurements=Measurements(
            download=Throughput(
                mbps=download_mbps, bytes=round(download_mbps * 1e6), duration_s=8.0
            )
        ),
        provenance=Provenance(agent_version="0.1.0", runner="http", bytes_used=60_000_000),
    )
