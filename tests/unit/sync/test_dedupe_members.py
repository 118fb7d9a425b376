"""MEMBERS writes: only the members Braze has not acknowledged are sent, one state entry each."""

from __future__ import annotations

from cdpbridge.records import RowPosition
from cdpbridge.sync.counters import attribute_data_points
from cdpbridge.sync.dedupe import (
    MEMBER_ABSENT,
    MEMBER_PRESENT,
    OVER_ARRAY_MAXIMUM,
    member_state_prefix,
    plan_user,
)
from cdpbridge.updates import AttributeWrite, MemberChange, UserUpdate, WriteMode

POSITION = RowPosition("snapshot.csv", 3, 0)
PREFIX = member_state_prefix("segments", "feed")


def update(change: MemberChange) -> UserUpdate:
    write = AttributeWrite(change, WriteMode.MEMBERS, "audiences")
    return UserUpdate(POSITION, "external_id:u1", {"external_id": "u1"}, attributes={"segments": write})


def held(**members: bytes) -> dict[str, bytes]:
    return {PREFIX + name: digest for name, digest in members.items()}


def test_a_complete_change_adds_the_new_members_and_removes_those_left() -> None:
    # Given Braze acknowledged a and b for the feed, and a member of another feed
    state = {
        **held(a=MEMBER_PRESENT, b=MEMBER_PRESENT),
        member_state_prefix("segments", "other") + "x": MEMBER_PRESENT,
    }
    # When the user's complete membership is now a and c
    plan = plan_user(update(MemberChange("feed", add=("a", "c"), complete=True)), state, full_refresh=False)
    # Then c is added and b removed, nothing of the other feed, one data point each
    assert plan.values == {"segments": {"add": ["c"], "remove": ["b"]}}
    assert plan.digests == {PREFIX + "c": MEMBER_PRESENT, PREFIX + "b": MEMBER_ABSENT}
    assert plan.data_points == 2
    assert attribute_data_points("segments", plan.writes["segments"]) == 2


def test_an_unchanged_membership_sends_nothing() -> None:
    state = held(a=MEMBER_PRESENT, gone=MEMBER_ABSENT)
    plan = plan_user(update(MemberChange("feed", add=("a",), complete=True)), state, full_refresh=False)
    assert (plan.writes, plan.digests, plan.unchanged, plan.data_points) == ({}, {}, 1, 0)


def test_a_delta_remove_is_skipped_only_when_its_removal_was_acknowledged() -> None:
    state = held(gone=MEMBER_ABSENT)
    plan = plan_user(update(MemberChange("feed", remove=("gone", "unknown"))), state, full_refresh=False)
    assert plan.values == {"segments": {"remove": ["unknown"]}}


def test_full_refresh_sends_every_add_and_remove() -> None:
    state = held(a=MEMBER_PRESENT, gone=MEMBER_ABSENT)
    plan = plan_user(update(MemberChange("feed", add=("a",), remove=("gone",))), state, full_refresh=True)
    assert plan.values == {"segments": {"add": ["a"], "remove": ["gone"]}}


def test_record_only_commits_state_and_sends_nothing() -> None:
    change = MemberChange("feed", add=("a", "b"), record_only=True)
    plan = plan_user(update(change), None, full_refresh=False)
    assert plan.writes == {}
    assert plan.recorded == {PREFIX + "a": MEMBER_PRESENT, PREFIX + "b": MEMBER_PRESENT}


def test_adds_beyond_the_limit_are_left_out_and_reported() -> None:
    # Given the user holds a and b, and the array maximum is 3
    state = held(a=MEMBER_PRESENT, b=MEMBER_PRESENT)
    change = MemberChange("feed", add=("a", "b", "c", "d", "e"), complete=True, limit=3)
    plan = plan_user(update(change), state, full_refresh=False)
    # Then only c is added and the issue names what was not kept
    assert plan.values == {"segments": {"add": ["c"]}}
    (issue,) = plan.issues
    assert (issue.reason, issue.column, issue.position) == (OVER_ARRAY_MAXIMUM, "audiences", POSITION)
    assert issue.detail.endswith("not kept: d, e")


def test_the_state_of_some_writes_includes_their_member_entries() -> None:
    change = update(MemberChange("feed", add=("a",)))
    change.attributes["visits"] = AttributeWrite(1, WriteMode.INCREMENT)
    plan = plan_user(change, None, full_refresh=False)
    members_only = {"segments": plan.writes["segments"]}
    assert plan.digests_of(members_only) == {PREFIX + "a": MEMBER_PRESENT}
    assert plan.digests_of(plan.writes) == {PREFIX + "a": MEMBER_PRESENT, "visits": None}
