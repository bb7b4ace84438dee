"""No tag can be dropped or re-labelled: any Unicode name comes back from a real VictoriaMetrics
exactly as the probe sent it, or the collector refuses it (with its reason) before any receipt:
names that are not printable text (contract.result.check_names).

Hypothesis draws village, operator and target names (backslashes before commas, spaces and equals
signs, a trailing backslash, quotes, control characters, emoji, Vietnamese); each goes through the
collector's own checks (`collector.ingest.check`) and line rendering (`result_line`) into one real
VictoriaMetrics, and is read back from /api/v1/export.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.ingest import IngestPolicy, ResultRejectedError, check
from collector.series import labels as series_labels
from collector.store import result_line
from contract.names import operator_label
from contract.result import encode_result, result_topic
from lab.services import VictoriaMetrics, victoria_metrics
from tests.strategies import sample_result

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

# Names as the contract allows them (1 to 200 characters); surrogates cannot travel in JSON.
names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200)
NASTY = (
    "a\\,b",
    "a\\ b",
    "a\\=b",
    "trailing\\",
    "\\",
    "\\\\,\\\\ ",
    'say "xin chào"',
    "x=y,z=w",
    " leading and trailing ",
    "tab\there\x00nul\x1b[31m",
    "Bản Nà Hin 🇻🇳 😀",
    "Thị trấn Đắk Hà, Kon Tum",
    "#not a comment",
    "line\nbreak",
    "carriage\rreturn",
    "\u2028\u0085",
)
NOW = datetime.now(UTC).replace(microsecond=0)
_probe_numbers = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    with victoria_metrics(tmp_path_factory.mktemp("names") / "victoria-metrics") as service:
        yield service


def _write(store: VictoriaMetrics, line: str) -> None:
    request = urllib.request.Request(f"{store.url}/write", data=line.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _labels_of(store: VictoriaMetrics, probe_id: str) -> list[dict[str, str]]:
    store.flush()
    return [series["metric"] for series in store.export(f'qos_seq{{probe="{probe_id}"}}')]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(village=NASTY[0], operator=NASTY[1], target=NASTY[2])
@example(village=NASTY[3], operator=NASTY[4], target=NASTY[5])
@example(village=NASTY[6], operator=NASTY[7], target=NASTY[8])
@example(village=NASTY[9], operator=NASTY[10], target=NASTY[11])
@example(village=NASTY[12], operator=NASTY[15], target="t")
@example(village=NASTY[13], operator="Viettel", target="t")
@example(village="Ấp 1", operator=NASTY[14], target="t")
@given(village=names, operator=names, target=names)
def test_names_come_back_unchanged_or_are_refused_with_a_reason(
    store: VictoriaMetrics, village: str, operator: str, target: str
) -> None:
    probe_id = f"vn-79-names-{next(_probe_numbers)}"
    base = sample_result(probe_id, finished_at=NOW - timedelta(minutes=1))
    assert base.location is not None
    result = msgspec.structs.replace(
        base,
        location=msgspec.structs.replace(base.location, village=village),
        link=msgspec.structs.replace(base.link, operator=operator),
        target=msgspec.structs.replace(base.target, id=target),
    )
    policy = IngestPolicy(signatures="optional", enrollment="optional")
    try:
        candidate = check(
            result_topic(probe_id),
            encode_result(result),
            now=datetime.now(UTC),
            policy=policy,
            enrollment_of=lambda _: None,
        )
    except ResultRejectedError as refusal:
        # Refused before any receipt, for good, and saying why: only names the contract refuses
        # (not printable text: a line break is also what no line protocol can carry).
        assert refusal.permanent, refusal
        assert refusal.result_id == result.id
        assert not all(name.isprintable() for name in (village, operator, target)), refusal
        return
    _write(store, result_line(candidate.result, candidate.location))
    stored = _labels_of(store, probe_id)
    assert len(stored) == 1, json.dumps(stored, ensure_ascii=False)
    labels = stored[0]
    # An operator is labelled by its canonical name when it spells a known one (contract.names).
    expected = (village, operator_label(operator), target)
    assert (labels["village"], labels["operator"], labels["target"]) == expected
    assert labels["province"] == base.location.province_code
    # No label dropped, none added: every non-empty label of the result, and nothing else.
    assert set(labels) == {
        "__name__",
        *(k for k, v in series_labels(candidate.result).items() if v),
    }
