"""Run counters: data point estimates, fill ratio, round trip through dicts and merging of parts."""

from __future__ import annotations

from cdpbridge.sync.counters import RunCounters, attribute_data_points, event_data_points, nested_key_count
from cdpbridge.updates import AttributeWrite, WriteMode


def test_nested_objects_bill_every_key_at_every_depth() -> None:
    value = {"a": 1, "b": {"c": 2, "d": {"e": 3}}, "when": {"$time": "2026-01-01"}, "_merge_objects": True}
    assert nested_key_count(value) == 6
    assert attribute_data_points("profile", AttributeWrite(value)) == 6


def test_array_set_costs_one_and_add_costs_one_per_value() -> None:
    assert attribute_data_points("tags", AttributeWrite(["a", "b", "c"])) == 1
    assert attribute_data_points("tags", AttributeWrite(["a", "b", "c"], WriteMode.ADD)) == 3


def test_events_bill_one_plus_one_per_property() -> None:
    assert event_data_points({"name": "x", "properties": {"a": 1, "b": 2}}) == 3
    assert event_data_points({"name": "x"}) == 1


def test_fill_ratio_and_round_trip_and_merge() -> None:
    # Given two parts of a run
    first = RunCounters(rows_read=10, requests=2, request_fill_units=150, request_slots=150)
    first.reject("missing identifier", 2)
    second = RunCounters.from_dict(
        RunCounters(rows_read=5, requests=1, request_fill_units=30, request_slots=75).to_dict()
    )
    second.reject("missing identifier")
    second.reject("braze: invalid email")
    # When they are merged
    first.merge(second)
    # Then every counter adds up and the fill ratio is recomputed
    assert first.rows_read == 15
    assert first.requests == 3
    assert first.fill_ratio == round(180 / 225, 4)
    assert dict(first.rejects_by_reason) == {"missing identifier": 3, "braze: invalid email": 1}
    assert first.to_dict()["fill_ratio"] == first.fill_ratio


def test_merged_parts_report_the_lowest_cap_any_part_was_lowered_to() -> None:
    first, second, third = (
        RunCounters(),
        RunCounters(track_cap_lowered_to=38),
        RunCounters(track_cap_lowered_to=19),
    )
    first.merge(second)
    assert first.track_cap_lowered_to == 38
    first.merge(third)
    first.merge(RunCounters())
    assert first.track_cap_lowered_to == 19
    assert RunCounters.from_dict(first.to_dict()).track_cap_lowered_to == 19


def test_skips_are_counted_by_reason_merged_and_kept_through_a_checkpoint() -> None:
    first, second = RunCounters(), RunCounters()
    first.skipped_by_reason["page call not mapped"] += 2
    second.skipped_by_reason["page call not mapped"] += 1
    second.attributes_superseded = 3
    first.merge(second)
    restored = RunCounters.from_dict(first.to_dict())
    assert restored.skipped_by_reason == {"page call not mapped": 3}
    assert restored.attributes_superseded == 3
