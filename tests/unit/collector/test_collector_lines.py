"""Line protocol as the collector writes it: escaped, deterministic, every documented column."""

from __future__ import annotations

import msgspec
from hypothesis import given

from collector.series import FIELD_NAMES, LABEL_NAMES, fields, labels
from collector.store import make_line, result_line
from contract.result import MeasurementError, Result
from tests.strategies import results, sample_result


def test_tags_are_escaped_and_empty_or_missing_values_left_out() -> None:
    line = make_line(
        "qos",
        {"village": "Ấp A, B=C\nD\\", "empty": "", "probe": "p1"},
        {"x": 1, "nothing": None, "nan": float("nan"), "y": 2.5},
        1234,
    )
    assert line == r"qos,village=Ấp\ A\,\ B\=C\ D,probe=p1 x=1.0,y=2.5 1234"


@given(results())
def test_every_result_has_the_documented_labels_and_fields(result: Result) -> None:
    assert tuple(labels(result)) == LABEL_NAMES
    assert set(fields(result)) <= set(FIELD_NAMES)
    assert result_line(result) == result_line(result)  # the same result, the same line


def test_an_enrollment_location_labels_a_result_without_one() -> None:
    located = sample_result()
    assert located.location is not None
    bare = Result(**{f: getattr(located, f) for f in located.__struct_fields__ if f != "location"})
    line = result_line(bare, located.location)
    assert line == result_line(located)


def test_only_a_download_that_could_not_run_is_an_access_failure() -> None:
    base = sample_result()
    no_download = msgspec.structs.replace(
        base, measurements=msgspec.structs.replace(base.measurements, download=None)
    )

    def failed(stage: str) -> float:
        error = MeasurementError(stage=stage, code="connect-failed", message="refused")
        return fields(msgspec.structs.replace(no_download, errors=(error,)))["attempt_failed"]

    assert failed("download") == 1.0
    assert failed("latency-idle") == 0.0  # a light test is no attempt on the link
    assert failed("bind") == 0.0  # the probe's own interface was missing
    assert fields(base)["attempt_failed"] == 0.0
