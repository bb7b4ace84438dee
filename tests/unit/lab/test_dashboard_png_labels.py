"""Village names on the PNG map do not cover one another."""

from __future__ import annotations

from lab.dashboard_png import label_offsets


def test_close_villages_get_their_names_on_separate_lines() -> None:
    offsets = label_offsets(
        [(100.0, 200.0), (104.0, 201.0), (400.0, 200.0)],
        ["Bản Nà Hin", "Bản Mường", "Na Sang"],
        point_px=1.0,
    )
    assert offsets[0] == (7.0, -3.0)
    assert offsets[1][1] <= -12.0  # moved down a line: the first name is in its way
    assert offsets[2] == (7.0, -3.0)  # far away: where it would be anyway


def test_names_already_apart_stay_where_they_are() -> None:
    assert label_offsets([(0.0, 0.0), (0.0, 100.0)], ["a", "b"], point_px=2.0) == [(7.0, -3.0)] * 2
