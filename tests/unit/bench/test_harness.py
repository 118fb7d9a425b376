"""The benchmark harness: rate-limit text, emulator stats deltas, data files and their diff."""

from __future__ import annotations

import csv
from pathlib import Path

import harness
import pytest
from harness import EmulatorStats, TrackLimit, changed_values, count_data_rows
from rate_limit_bound import bound_seconds

from cdpbridge_local.demo_data import CUSTOMER_COLUMNS, customer_rows


def test_a_rate_limit_is_read_as_requests_per_seconds() -> None:
    # Given the text a user types
    limit = TrackLimit.parse("300/3")
    # Then it is 300 requests per 3 s, i.e. 100 requests a second
    assert limit == TrackLimit(300, 3.0)
    assert limit.per_second == 100.0
    assert limit.as_config() == {"limit": 300, "window_s": 3.0}
    assert str(limit) == "300/3s"
    assert TrackLimit.parse("150/3s") == TrackLimit(150, 3.0)


@pytest.mark.parametrize("text", ["300", "a/3", "0/3", "300/0", "300/-1"])
def test_a_malformed_rate_limit_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="300/3") as error:
        TrackLimit.parse(text)
    assert repr(text) in str(error.value)


def test_the_bound_is_rows_over_75_objects_times_the_request_rate() -> None:
    # 150,000 rows at 100 requests/s of 75 objects cannot take less than 20 s
    assert bound_seconds(150_000, TrackLimit(300, 3.0)) == pytest.approx(20.0)


def test_emulator_stats_are_read_from_the_admin_view_and_subtracted() -> None:
    # Given two snapshots of GET /_emulator/stats
    before = EmulatorStats.from_view(
        {
            "requests": {"users.track": {"201": 10, "429": 2}, "users.export.ids": {"201": 5}},
            "data_points": 1000,
            "unchanged_writes": 3,
            "objects": {"attributes": 750, "events": 0, "purchases": 0},
            "object_errors": {"attributes": 1},
            "users": 700,
        }
    )
    after = EmulatorStats.from_view(
        {
            "requests": {"users.track": {"201": 25, "429": 3, "400": 1}},
            "data_points": 1900,
            "unchanged_writes": 3,
            "objects": {"attributes": 1875},
            "object_errors": {"attributes": 4},
            "users": 1500,
        }
    )
    # When the first is taken from the second
    delta = after.since(before)
    # Then only users.track counts, and each figure is what happened in between
    assert before.track_requests == 12
    assert before.track_accepted == 10
    assert delta.track_requests == 17
    assert delta.track_accepted == 15
    assert delta.track_rate_limited == 1
    assert delta.data_points == 900
    assert delta.unchanged_writes == 0
    assert delta.attribute_objects == 1125
    assert delta.object_errors == 3
    assert delta.users == 1500


def test_changed_values_counts_differing_cells(tmp_path: Path) -> None:
    # Given a file and a copy with three cells changed in two rows
    before = tmp_path / "before.csv"
    after = tmp_path / "after.csv"
    before.write_text("id,a,b\n1,x,y\n2,x,y\n3,x,y\n")
    after.write_text("id,a,b\n1,x,y\n2,X,Y\n3,x,Z\n")
    # Then the diff counts cells, not rows
    assert changed_values(before, after) == 3
    assert count_data_rows(before) == 3


def test_changed_values_agrees_with_the_generator_on_a_demo_delta(tmp_path: Path) -> None:
    # Given the demo generator's day-one and day-two files
    rows = 300
    day1 = tmp_path / "day1.csv"
    day2 = tmp_path / "day2.csv"
    for path, generation in ((day1, 0), (day2, 1)):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CUSTOMER_COLUMNS)
            writer.writerows(customer_rows(rows, generation, 0.1))
    # Then the file diff counts exactly the values the generator changed
    expected = sum(
        a != b
        for old, new in zip(customer_rows(rows), customer_rows(rows, 1, 0.1), strict=True)
        for a, b in zip(old, new, strict=True)
    )
    assert expected > rows
    assert changed_values(day1, day2) == expected


def test_a_data_file_is_written_once_and_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an empty data directory
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path)
    # When the same file is asked for twice
    first = harness.customers_file(50)
    stamp = first.stat().st_mtime_ns
    second = harness.customers_file(50)
    # Then the second call reuses the first file, which holds the demo rows
    assert second == first
    assert second.stat().st_mtime_ns == stamp
    assert count_data_rows(first) == 50
    assert not list(tmp_path.glob("*.partial"))
    with first.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1:] == list(customer_rows(50))


def test_a_delta_file_has_a_name_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path)
    full = harness.customers_file(40)
    delta = harness.customers_file(40, generation=1, change_share=0.1)
    assert full != delta
    assert delta.name == "customers-40-gen1-change0.1.csv"
    assert changed_values(full, delta) > 0


def test_a_sized_file_reaches_the_size_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an empty data directory
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path)
    # When a 1 MiB file is asked for
    path, rows = harness.customers_file_of_size(1)
    # Then it holds at least 1 MiB of whole demo rows, counted
    assert path.stat().st_size >= harness.MB
    assert rows == count_data_rows(path)
    assert rows % 10_000 == 0
