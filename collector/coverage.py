"""Which communes have a probe: one series per commune of the gazetteer, with its probe count.

A commune without a probe has no results, so nothing in the store would say it exists; only the
collector knows both the commune list (contract/places) and the enrollments (its registry). The
regulator's coverage view reads `qos_coverage_probes_enrolled{province, commune, commune_name}`:
0 is a commune no probe measures. Written with the fleet state, on each full round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from collector.registry import ProbeRecord
from collector.store import make_line
from contract.places import provinces

MEASUREMENT = "qos_coverage"


def enrolled_places(records: Iterable[ProbeRecord]) -> list[tuple[str, str]]:
    """(province, commune) of every probe with a pinned enrollment that is not revoked."""
    return [
        (record.pin.location.province_code, record.pin.location.commune_code)
        for record in records
        if record.pin is not None and record.standing != "revoked"
    ]


def coverage_lines(places: Iterable[tuple[str, str]], at_ms: int) -> list[str]:
    """One line per commune of today's 34 provinces: how many probes are enrolled in it.

    A probe enrolled under a code the gazetteer lacks (an old code) counts nowhere here: its
    results still carry its own labels."""
    counted = Counter(places)
    return [
        make_line(
            MEASUREMENT,
            {"province": province_code, "commune": commune_code, "commune_name": name},
            {"probes_enrolled": float(counted[province_code, commune_code])},
            at_ms,
        )
        for province_code, province in provinces().items()
        for commune_code, name in province.communes.items()
    ]
