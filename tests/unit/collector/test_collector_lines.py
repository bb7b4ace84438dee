"""Line protocol as the collector writes it: escaped, deterministic, every documented column."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given

from collector.series import FIELD_NAMES, LABEL_NAMES, fields, labels
from collector.store import StoreRun, make_line, process_run, result_line
from contract.errors import ServiceError
from contract.result import MeasurementError, Result
from tests.strategies import results, sample_result


def test_tags_are_escaped_and_empty_or_missing_values_left_out() -> None:
    line = make_line(
        "qos",
        {"village": "Ấp A, B=C\\,D\\", "empty": "", "probe": "p1"},
        {"x": 1, "nothing": None, "nan": float("nan"), "y": 2.5},
        1234,
    )
    # A backslash is escaped first, so the one before the comma cannot unescape it.
    assert line == r"qos,village=Ấp\ A\,\ B\=C\\\,D\\,probe=p1 x=1.0,y=2.5 1234"


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


def test_a_store_run_is_its_start_second_settled_once_the_process_has_run_past_it() -> None:
    young = "vm_app_start_timestamp 1796514729\nvm_app_uptime_seconds 0\n"
    assert process_run(young, "http://vm/metrics") == StoreRun("1796514729", settled=False)
    settled = "vm_app_uptime_seconds 1\ngo_goroutines 12\nvm_app_start_timestamp 1796514729\n"
    assert process_run(settled, "http://vm/metrics") == StoreRun("1796514729", settled=True)
    with pytest.raises(ServiceError) as caught:
        process_run("process_start_time_seconds 17\n", "http://influx/metrics")
    assert "http://influx/metrics" in caught.value.message
