"""What plan_user tells the engine besides the writes: whether increments or merges are among them,
and the data points of plain sets computed on its fast path."""

from __future__ import annotations

from cdpbridge.records import RowPosition
from cdpbridge.state import value_digest
from cdpbridge.sync.counters import attribute_data_points
from cdpbridge.sync.dedupe import plan_user
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

POSITION = RowPosition("file.csv", 1, 0)


def update(**writes: AttributeWrite) -> UserUpdate:
    return UserUpdate(POSITION, "external_id:u1", {"external_id": "u1"}, attributes=dict(writes))


def test_plain_sets_raise_no_flag() -> None:
    plan = plan_user(update(tier=AttributeWrite("gold"), city=AttributeWrite("Lyon")), None, False)
    assert not plan.has_increment
    assert not plan.has_merge


def test_an_increment_and_a_merge_are_flagged_even_next_to_unchanged_sets() -> None:
    # Given a user whose tier Braze already holds
    known = {"tier": value_digest("gold")}
    writes = {
        "tier": AttributeWrite("gold"),
        "visits": AttributeWrite(2, WriteMode.INCREMENT),
        "prefs": AttributeWrite({"a": 1}, WriteMode.MERGE),
    }
    # When it is planned
    plan = plan_user(update(**writes), known, full_refresh=False)
    # Then both flags are up and the unchanged set is skipped
    assert plan.has_increment
    assert plan.has_merge
    assert set(plan.writes) == {"visits", "prefs"}


def test_data_points_of_sets_match_the_billing_rules() -> None:
    # Given sets of a free attribute, a scalar, a nested object and a $time object
    writes = {
        "email_subscribe": AttributeWrite("opted_in"),
        "tier": AttributeWrite("gold"),
        "address": AttributeWrite({"city": "Lyon", "geo": {"lat": 1, "lon": 2}}),
        "signup": AttributeWrite({"$time": "2026-01-01T00:00:00Z"}),
        "empty": AttributeWrite({}),
    }
    # When they are planned, first with no state and then with all of it acknowledged
    fresh = plan_user(update(**writes), None, full_refresh=False)
    known = {name: value_digest(write.value) for name, write in writes.items()}
    unchanged = plan_user(update(**writes), known, full_refresh=False)
    # Then both paths count what attribute_data_points counts
    expected = sum(attribute_data_points(name, write) for name, write in writes.items())
    assert fresh.data_points == expected == 0 + 1 + 4 + 1 + 1
    assert unchanged.unchanged_data_points == expected
    assert unchanged.writes == {}
