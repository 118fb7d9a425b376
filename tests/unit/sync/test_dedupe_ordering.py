"""Writes that carry the source's time (as_of): an older one never replaces a newer one."""

from __future__ import annotations

from cdpbridge.records import RowPosition
from cdpbridge.state import value_digest
from cdpbridge.state.packing import pack_digests, unpack_digests
from cdpbridge.sync.dedupe import applied_at_key, decode_applied_at, encode_applied_at, plan_user
from cdpbridge.updates import AttributeWrite, UserUpdate

POSITION = RowPosition("calls.jsonl", 1, 0)


def update(**writes: AttributeWrite) -> UserUpdate:
    return UserUpdate(POSITION, "external_id:u1", {"external_id": "u1"}, attributes=dict(writes))


def test_an_older_write_than_the_applied_one_is_superseded() -> None:
    # Given "Boots" was applied at t=2000
    known = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(2000)}
    # When a call from t=1000 says "Scarf"
    plan = plan_user(update(item=AttributeWrite("Scarf", as_of=1000)), known, full_refresh=False)
    # Then nothing is written, and the drop is counted
    assert plan.writes == {}
    assert plan.superseded == 1
    assert plan.digests == {}


def test_a_newer_write_is_sent_and_commits_its_time_with_the_digest() -> None:
    known = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(2000)}
    plan = plan_user(update(item=AttributeWrite("Hat", as_of=3000)), known, full_refresh=False)
    assert list(plan.writes) == ["item"]
    assert plan.digests == {"item": value_digest("Hat"), applied_at_key("item"): encode_applied_at(3000)}


def test_full_refresh_still_keeps_the_newer_value() -> None:
    known = {applied_at_key("item"): encode_applied_at(2000)}
    plan = plan_user(update(item=AttributeWrite("Scarf", as_of=1000)), known, full_refresh=True)
    assert plan.writes == {}


def test_an_unchanged_newer_value_records_its_time_for_later_rows() -> None:
    # Given Braze holds "Boots" from t=2000 and a newer call repeats it
    known = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(2000)}
    plan = plan_user(update(item=AttributeWrite("Boots", as_of=4000)), known, full_refresh=False)
    # Then nothing is sent but the newer time is what later rows of the run are planned against
    assert plan.writes == {}
    assert plan.unchanged == 1
    assert plan.digests == {applied_at_key("item"): encode_applied_at(4000)}


def test_a_tie_keeps_the_later_record() -> None:
    known = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(2000)}
    plan = plan_user(update(item=AttributeWrite("Hat", as_of=2000)), known, full_refresh=False)
    assert list(plan.writes) == ["item"]


def test_writes_without_a_time_follow_source_order_as_before() -> None:
    known = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(2000)}
    plan = plan_user(update(item=AttributeWrite("Hat")), known, full_refresh=False)
    assert list(plan.writes) == ["item"]
    assert applied_at_key("item") not in plan.digests


def test_applied_times_fit_the_stores_packing_and_survive_it() -> None:
    state = {"item": value_digest("Boots"), applied_at_key("item"): encode_applied_at(1_764_579_600_000)}
    unpacked = unpack_digests(pack_digests(state))
    assert decode_applied_at(unpacked[applied_at_key("item")]) == 1_764_579_600_000
    assert decode_applied_at(encode_applied_at(-5)) == -5
