"""Verdict series in a real VictoriaMetrics: results in, qos_compliance_* out, per area."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from collector.store import StoreWriter
from collector.verdicts import refresh_verdicts
from contract.profiles import bundled_profiles
from lab.services import VictoriaMetrics
from tests.strategies import sample_result

pytestmark = pytest.mark.integration


async def test_failing_passing_and_early_warning_villages(store: VictoriaMetrics) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    writer = StoreWriter(store.url)
    villages = {"Bản Thấp": (30.0, 1600), "Bản Cao": (60.0, 1600), "Bản Mới": (25.0, 200)}
    try:
        for index, (name, (rate, count)) in enumerate(villages.items()):
            results = [
                sample_result(
                    f"vn-79-probe-{index}",
                    village=name,
                    finished_at=now - timedelta(minutes=15 * (i + 1)),
                    download_mbps=rate + (1.0 if i % 2 else -1.0),
                )
                for i in range(count)
            ]
            for start in range(0, len(results), 500):
                await writer.write(results[start : start + 500])
        store.wait_for("last_over_time(qos_download_mbps[1h])", count=3, at=now.timestamp())
        async with aiohttp.ClientSession() as session:
            verdicts = await refresh_verdicts(session, writer, bundled_profiles(), now=now)
    finally:
        await writer.close()
    assert len(verdicts) == 3 + 1 + 1 + 1  # three villages, their commune, province, nation

    def village(name: str, series: str) -> float:
        found = store.wait_for(
            f'qos_compliance_{series}{{level="village", village="{name}", profile="4g"}}',
            at=now.timestamp(),
        )
        assert len(found) == 1, (name, series, found)
        return float(found[0]["value"][1])

    assert village("Bản Thấp", "status") == 0.0
    assert village("Bản Cao", "status") == 1.0
    assert village("Bản Mới", "status") == -1.0
    assert village("Bản Mới", "early_warning") == 1.0
    assert village("Bản Thấp", "n") == 1600.0
    assert village("Bản Cao", "mean_download_mbps") == pytest.approx(60.0)
    assert village("Bản Cao", "target_download_mbps") == 40.0
    commune = store.wait_for('qos_compliance_n{level="commune"}', at=now.timestamp())
    assert [float(s["value"][1]) for s in commune] == [3400.0]
    assert commune[0]["metric"]["technology"] == "4g"
    assert commune[0]["metric"]["operator"] == "Viettel"
