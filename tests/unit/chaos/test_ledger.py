"""The chaos run's accounting: expected state, the lost-answer window and retry files."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from cdpbridge_local.chaos.ledger import (
    ExpectedState,
    TrackObjects,
    compare,
    event_key,
    purchase_key,
    retry_file_objects,
    unanswered_objects,
)


def _expected() -> ExpectedState:
    state = ExpectedState(set_like={"interests"})
    state.attributes["u1"] = {"first_name": "Anna", "interests": ["a", "b"]}
    state.increments[("u1", "points")] = 5
    state.events[event_key("u1", "visit", {"v": 1})] = 1
    state.purchases[purchase_key("u1", "sku", {"o": 1})] = 1
    return state


def _profile(points: int, events: int = 1, interests: list[str] | None = None) -> dict:
    return {
        "standard_attributes": {"first_name": "Anna"},
        "custom_attributes": {"points": points, "interests": interests or ["b", "a"]},
        "events": [{"name": "visit", "properties": {"v": 1}}] * events,
        "purchases": [{"product_id": "sku", "properties": {"o": 1}, "quantity": 1}],
    }


def test_a_profile_as_expected_has_no_mismatch_and_arrays_added_to_compare_as_sets() -> None:
    assert compare(_expected(), {"u1": _profile(5)}, TrackObjects(), TrackObjects()) == []


def test_a_duplicate_event_is_a_mismatch_unless_its_request_lost_its_answer() -> None:
    profiles = {"u1": _profile(8, events=2)}
    mismatches = compare(_expected(), profiles, TrackObjects(), TrackObjects())
    assert sorted(m.what.split(" ")[0] for m in mismatches) == ["attribute", "event"]
    # Given the request that carried the event and the increment applied but unanswered
    body = {
        "attributes": [{"external_id": "u1", "points": {"inc": 3}}],
        "events": [{"external_id": "u1", "name": "visit", "properties": {"v": 1}}],
    }
    window = unanswered_objects([{"endpoint": "users.track", "cause": "apply_then_drop", "body": body}])
    # Then the second copy is accounted for exactly
    assert window.total() == 2
    assert compare(_expected(), profiles, window, TrackObjects()) == []


def test_objects_held_in_a_retry_file_are_not_expected_in_braze() -> None:
    line = orjson.dumps(
        {"kind": "purchases", "body": {"external_id": "u1", "product_id": "sku", "properties": {"o": 1}}}
    )
    held = retry_file_objects([line, b""])
    assert held.purchases == Counter({purchase_key("u1", "sku", {"o": 1}): 1})
    profile = _profile(5) | {"purchases": []}
    assert compare(_expected(), {"u1": profile}, TrackObjects(), held) == []


def test_missing_and_unexpected_users_are_mismatches() -> None:
    mismatches = compare(_expected(), {"u2": {"events": []}}, TrackObjects(), TrackObjects())
    assert {(m.external_id, m.what) for m in mismatches} >= {("u1", "user"), ("u2", "user")}
    assert any(m.what.startswith("event") for m in mismatches)


def test_two_scenarios_may_not_write_the_same_users() -> None:
    state = _expected()
    with pytest.raises(ValueError, match="u1"):
        state.merge(_expected())
