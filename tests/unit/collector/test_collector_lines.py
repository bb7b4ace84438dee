"""Line protocol as the collector writes it: escaped, deterministic, every documented column."""

from __future__ import annotations

from hypothesis import given

from collector.store import FIELD_NAMES, LABEL_NAMES, fields, labels, make_line, result_line
from contract.result import Result
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
