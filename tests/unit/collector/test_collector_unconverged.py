"""A rate still climbing when its test ended is kept as evidence, counted apart and left out of
every mean, at ingest (the stored class and field) and offline (the engine `evaluate` uses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from collector.compliance import Sample, evaluate_compliance
from collector.series import fields
from contract.profiles import bundled_profiles
from contract.sampling import CLASS_CODES
from tests.strategies import sample_result

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROFILE = bundled_profiles()["4g"]


def test_unconverged_samples_are_counted_apart_not_averaged() -> None:
    ok = [
        Sample(timestamp=NOW - timedelta(minutes=i), download_mbps=50.0, device=f"ok-{i}")
        for i in range(1500)
    ]
    # A satellite-backhauled village's tests that ended while cubic still opened its windows.
    climbing = [
        Sample(
            timestamp=NOW - timedelta(minutes=i),
            download_mbps=12.0,
            status="unconverged",
            device=f"sat-{i}",
        )
        for i in range(300)
    ]
    verdict = evaluate_compliance([*ok, *climbing], PROFILE, now=NOW)
    assert (verdict.n, verdict.n_unconverged, verdict.n_probe_limited) == (1500, 300, 0)
    assert verdict.mean_download_mbps == pytest.approx(50.0)
    # It connected and moved data: an attempt, not an access failure.
    assert verdict.n_attempts == 1800
    assert verdict.access_failure_rate == 0.0


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_a_block_that_did_not_converge_is_stored_as_such(direction: str) -> None:
    base = sample_result()
    steady = base.measurements.download
    assert steady is not None
    blocks = {"download": steady, "upload": steady}
    blocks[direction] = msgspec.structs.replace(steady, converged=False)
    measurements = msgspec.structs.replace(base.measurements, **blocks)
    stored = fields(msgspec.structs.replace(base, measurements=measurements))
    assert stored["unconverged"] == 1.0
    assert stored["sample_class"] == CLASS_CODES["unconverged"]
    assert "counted_download_10kbps" not in stored
    plain = fields(base)
    assert (plain["unconverged"], plain["sample_class"]) == (0.0, CLASS_CODES["counted"])
