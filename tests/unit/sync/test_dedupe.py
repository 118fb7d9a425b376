"""Dedupe planning: which writes are dropped, which are kept, and what state they commit."""

from __future__ import annotations

from cdpbridge.records import RowPosition
from cdpbridge.state import NULL_DIGEST, value_digest
from cdpbridge.state.contracts import merge_user_state
from cdpbridge.state.digest import (
    LIST_ELEMENT_ABSENT,
    LIST_ELEMENT_PREFIX,
    LIST_ELEMENT_PRESENT,
    LIST_TRACKED,
)
from cdpbridge.sync.dedupe import braze_value, plan_user, resolve_lookup
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

POSITION = RowPosition("file.csv", 1, 0)


def update(**writes: AttributeWrite) -> UserUpdate:
    return UserUpdate(POSITION, "external_id:u1", {"external_id": "u1"}, attributes=dict(writes))


def test_unchanged_set_is_skipped_and_counted_as_saved() -> None:
    # Given Braze acknowledged "gold" for tier
    known = {"tier": value_digest("gold")}
    # When the same value arrives again with a changed one
    plan = plan_user(
        update(tier=AttributeWrite("gold"), city=AttributeWrite("Lyon")), known, full_refresh=False
    )
    # Then only the change is written and the skip is counted
    assert list(plan.writes) == ["city"]
    assert plan.unchanged == 1
    assert plan.unchanged_data_points == 1
    assert plan.digests == {"city": value_digest("Lyon")}


def test_full_refresh_sends_unchanged_values() -> None:
    known = {"tier": value_digest("gold")}
    plan = plan_user(update(tier=AttributeWrite("gold")), known, full_refresh=True)
    assert list(plan.writes) == ["tier"]
    assert plan.unchanged == 0


def test_unset_compares_against_null_state() -> None:
    # Given Braze already holds no value
    plan = plan_user(update(tier=AttributeWrite(None, WriteMode.UNSET)), {"tier": NULL_DIGEST}, False)
    assert plan.writes == {}
    # And when it holds one, the unset is sent and null is committed
    plan = plan_user(update(tier=AttributeWrite(None, WriteMode.UNSET)), {"tier": value_digest("x")}, False)
    assert plan.digests == {"tier": NULL_DIGEST}
    assert braze_value(plan.writes["tier"]) is None


def test_increments_are_never_deduped_and_untracked_lists_are_sent_whole() -> None:
    # The stored digests of tags and points are values, not what add/remove did per element
    known = {"tags": value_digest(["a"]), "points": value_digest(5)}
    writes = {
        "tags": AttributeWrite(["a"], WriteMode.ADD),
        "old_tags": AttributeWrite(["b", "c"], WriteMode.REMOVE),
        "points": AttributeWrite(5, WriteMode.INCREMENT),
    }
    plan = plan_user(update(**writes), known, full_refresh=False)
    assert set(plan.writes) == {"tags", "old_tags", "points"}
    # The increment forgets the value; the lists keep, once acknowledged, what each element became
    element = f"{LIST_ELEMENT_PREFIX}tags:{value_digest('a').hex()}"
    assert plan.digests["points"] is None
    assert plan.digests["tags"] == plan.digests["old_tags"] == LIST_TRACKED
    assert plan.digests[element] == LIST_ELEMENT_PRESENT
    assert plan.digests[f"{LIST_ELEMENT_PREFIX}old_tags:{value_digest('c').hex()}"] == LIST_ELEMENT_ABSENT
    # add/remove bill one data point per value
    assert plan.data_points == 1 + 2 + 1
    assert braze_value(writes["tags"]) == {"add": ["a"]}
    assert braze_value(writes["old_tags"]) == {"remove": ["b", "c"]}
    assert braze_value(writes["points"]) == {"inc": 5}


def test_set_if_empty_uses_known_state_and_defers_unknown_to_a_lookup() -> None:
    writes = {
        "known_empty": AttributeWrite("v1", WriteMode.SET_IF_EMPTY),
        "known_full": AttributeWrite("v2", WriteMode.SET_IF_EMPTY),
        "unknown": AttributeWrite("v3", WriteMode.SET_IF_EMPTY),
    }
    known = {"known_empty": NULL_DIGEST, "known_full": value_digest("held")}
    plan = plan_user(update(**writes), known, full_refresh=False)
    assert list(plan.writes) == ["known_empty"]
    assert plan.set_if_empty_skipped == 1
    assert list(plan.pending_lookups) == ["unknown"]


def test_lookup_result_decides_pending_set_if_empty() -> None:
    writes = {
        "empty_in_braze": AttributeWrite("v1", WriteMode.SET_IF_EMPTY),
        "held_in_braze": AttributeWrite("v2", WriteMode.SET_IF_EMPTY),
    }
    plan = plan_user(update(**writes), None, full_refresh=False)
    learnt = resolve_lookup(plan, {"empty_in_braze": None, "held_in_braze": "kept"})
    assert list(plan.writes) == ["empty_in_braze"]
    assert plan.writes["empty_in_braze"].mode is WriteMode.SET
    assert learnt == {"empty_in_braze": NULL_DIGEST, "held_in_braze": value_digest("kept")}
    assert plan.set_if_empty_skipped == 1


def test_lookup_of_unknown_user_writes_every_pending_value() -> None:
    plan = plan_user(update(a=AttributeWrite("v", WriteMode.SET_IF_EMPTY)), None, full_refresh=False)
    resolve_lookup(plan, None)
    assert list(plan.writes) == ["a"]


def test_free_attributes_cost_nothing() -> None:
    plan = plan_user(update(email_subscribe=AttributeWrite("opted_in")), None, full_refresh=False)
    assert plan.data_points == 0


def test_remembered_digests_keep_equal_values_of_different_types_apart() -> None:
    # Given values Python finds equal but Braze receives differently, planned twice so the second
    # plan reads remembered digests
    values = {"a": 1, "b": True, "c": 1.0, "d": "1", "e": 0.0, "f": -0.0, "g": 0, "h": False}
    for _ in range(2):
        plan = plan_user(
            update(**{name: AttributeWrite(value) for name, value in values.items()}), None, False
        )
        # Then each digest is the digest of its own encoding
        assert plan.digests == {name: value_digest(value) for name, value in values.items()}
    assert len(set(plan.digests.values())) == len(values)


def _acknowledged(state: dict[str, bytes], *writes: AttributeWrite, name: str = "tags") -> dict[str, bytes]:
    """The state after Braze acknowledged ``writes`` of ``name`` one after the other."""
    for write in writes:
        plan = plan_user(update(**{name: write}), state, full_refresh=False)
        state = merge_user_state(state, plan.digests)
    return state


def test_a_list_added_again_costs_only_its_new_elements() -> None:
    state = _acknowledged({}, AttributeWrite(["a", "b"], WriteMode.ADD))
    plan = plan_user(update(tags=AttributeWrite(["a", "b", "c"], WriteMode.ADD)), state, False)
    assert braze_value(plan.writes["tags"]) == {"add": ["c"]}
    assert plan.data_points == 1
    assert plan.unchanged_data_points == 2
    # And the whole list again, once acknowledged, costs nothing
    state = merge_user_state(state, plan.digests)
    plan = plan_user(update(tags=AttributeWrite(["a", "b", "c"], WriteMode.ADD)), state, False)
    assert plan.writes == {} and plan.unchanged == 1 and plan.unchanged_data_points == 3


def test_a_removed_element_is_removed_again_only_after_it_was_added_back() -> None:
    state = _acknowledged(
        {}, AttributeWrite(["a", "b"], WriteMode.ADD), AttributeWrite(["a", "x"], WriteMode.REMOVE)
    )
    plan = plan_user(update(tags=AttributeWrite(["a", "x"], WriteMode.REMOVE)), state, False)
    assert plan.writes == {}
    plan = plan_user(update(tags=AttributeWrite(["a", "b"], WriteMode.ADD)), state, False)
    assert braze_value(plan.writes["tags"]) == {"add": ["a"]}
    state = merge_user_state(state, plan.digests)
    plan = plan_user(update(tags=AttributeWrite(["a"], WriteMode.REMOVE)), state, False)
    assert braze_value(plan.writes["tags"]) == {"remove": ["a"]}


def test_a_whole_value_written_in_between_voids_what_elements_were_known() -> None:
    state = _acknowledged({}, AttributeWrite(["a", "b"], WriteMode.ADD))
    state = _acknowledged(state, AttributeWrite(["z"], WriteMode.SET))
    plan = plan_user(update(tags=AttributeWrite(["a", "b"], WriteMode.ADD)), state, False)
    assert braze_value(plan.writes["tags"]) == {"add": ["a", "b"]}
    # The stale element entries are forgotten along with the new ones being kept
    assert plan.digests["tags"] == LIST_TRACKED


def test_a_full_refresh_sends_the_whole_list() -> None:
    state = _acknowledged({}, AttributeWrite(["a", "b"], WriteMode.ADD))
    plan = plan_user(update(tags=AttributeWrite(["a", "b"], WriteMode.ADD)), state, full_refresh=True)
    assert braze_value(plan.writes["tags"]) == {"add": ["a", "b"]}


def test_a_list_past_the_tracked_maximum_is_sent_whole_and_its_elements_forgotten() -> None:
    state = _acknowledged({}, AttributeWrite(["a", "b"], WriteMode.ADD))
    plan = plan_user(
        update(tags=AttributeWrite(["a", "b", "c"], WriteMode.ADD)), state, False, list_elements_tracked=2
    )
    assert braze_value(plan.writes["tags"]) == {"add": ["a", "b", "c"]}
    state = merge_user_state(state, plan.digests)
    assert not [name for name in state if name.startswith(LIST_ELEMENT_PREFIX)]
    assert "tags" not in state


def test_set_if_empty_after_list_writes_asks_braze() -> None:
    state = _acknowledged({}, AttributeWrite(["a"], WriteMode.REMOVE))
    plan = plan_user(update(tags=AttributeWrite(["q"], WriteMode.SET_IF_EMPTY)), state, False)
    assert list(plan.pending_lookups) == ["tags"]
