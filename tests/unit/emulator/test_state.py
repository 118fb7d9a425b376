"""Applying valid objects to profiles: creation rules, atomicity, data points and unchanged writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cdpbridge_local.emulator.state import BRAZE_ID_NOT_FOUND, USER_NOT_FOUND, UserStore
from cdpbridge_local.emulator.validation import (
    AttributeUpdate,
    EventRecord,
    Identifier,
    PurchaseRecord,
    TrackRules,
    validate_attributes,
    validate_event,
    validate_purchase,
)

RULES = TrackRules()
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def update(obj: dict[str, Any], rules: TrackRules = RULES) -> AttributeUpdate:
    result = validate_attributes(obj, rules)
    assert isinstance(result, AttributeUpdate), result
    return result


def test_unknown_external_id_creates_a_profile() -> None:
    store = UserStore()
    assert store.apply_attributes(update({"external_id": "u1", "color": "red"})) is None
    profile = store.by_external_id["u1"]
    assert profile.custom == {"color": "red"}
    assert len(profile.braze_id) == 24
    assert store.totals.users_created == 1


def test_update_existing_only_refuses_unknown_users_and_creates_nothing() -> None:
    store = UserStore()
    assert store.apply_attributes(update({"external_id": "u1", "_update_existing_only": True, "a": 1})) == (
        USER_NOT_FOUND
    )
    alias = {"user_alias": {"alias_name": "n", "alias_label": "l"}, "a": 1}
    assert store.apply_attributes(update(alias)) == USER_NOT_FOUND
    assert len(store) == 0 and store.totals.data_points == 0


def test_alias_with_update_existing_only_false_creates_an_alias_only_profile() -> None:
    store = UserStore()
    alias = {"user_alias": {"alias_name": "n", "alias_label": "l"}, "_update_existing_only": False, "a": 1}
    assert store.apply_attributes(update(alias)) is None
    profile = store.by_alias[("l", "n")]
    assert profile.external_id is None and profile.aliases == (("l", "n"),)


def test_braze_id_never_creates_but_updates_a_known_profile() -> None:
    store = UserStore()
    assert store.apply_attributes(update({"braze_id": "0" * 24, "a": 1})) == BRAZE_ID_NOT_FOUND
    store.apply_attributes(update({"external_id": "u1"}))
    braze_id = store.by_external_id["u1"].braze_id
    assert store.apply_attributes(update({"braze_id": braze_id, "a": 1})) is None
    assert store.by_external_id["u1"].custom == {"a": 1}


def test_rewriting_a_value_is_billed_and_counted_as_unchanged() -> None:
    # Given a profile holding three attributes
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "a": "x", "b": 1, "c": True}))
    # When the same values are sent again, with one of them changed
    store.apply_attributes(update({"external_id": "u1", "a": "x", "b": 1, "c": False}))
    # Then all six writes are billed and two of them changed nothing
    assert store.totals.data_points == 6
    assert store.totals.unchanged_writes == 2


def test_a_boolean_never_equals_a_number_for_unchanged_writes() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "flag": 1}))
    store.apply_attributes(update({"external_id": "u1", "flag": True}))
    assert store.totals.unchanged_writes == 0
    assert store.by_external_id["u1"].custom["flag"] is True


def test_null_unsets_and_unsetting_nothing_is_unchanged() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "a": 1, "b": 2}))
    store.apply_attributes(update({"external_id": "u1", "a": None, "never_set": None}))
    assert store.by_external_id["u1"].custom == {"b": 2}
    assert store.totals.unchanged_writes == 1
    assert store.totals.data_points == 4


def test_array_add_remove_keep_unique_values_and_drop_the_oldest_beyond_the_maximum() -> None:
    store = UserStore(array_max_length=3)
    store.apply_attributes(update({"external_id": "u1", "tags": ["a", "b"]}))
    store.apply_attributes(update({"external_id": "u1", "tags": {"add": ["b", "c", "d"], "remove": ["a"]}}))
    assert store.by_external_id["u1"].custom["tags"] == ["b", "c", "d"]
    store.apply_attributes(update({"external_id": "u1", "tags": {"add": ["e"]}}))
    assert store.by_external_id["u1"].custom["tags"] == ["c", "d", "e"]


def test_a_refused_object_changes_nothing() -> None:
    # Given a profile whose "name" is a string
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "name": "x", "visits": 1}))
    before = store.totals.data_points
    # When an object increments "name" and also sets other attributes
    refusal = store.apply_attributes(update({"external_id": "u1", "name": {"inc": 1}, "visits": 2}))
    # Then it is refused and none of its writes happened
    assert refusal is not None and "does not hold a number" in refusal.reason
    assert store.by_external_id["u1"].custom == {"name": "x", "visits": 1}
    assert store.totals.data_points == before


def test_add_to_a_non_array_is_refused() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "tags": "x"}))
    refusal = store.apply_attributes(update({"external_id": "u1", "tags": {"add": ["a"]}}))
    assert refusal is not None and "does not hold an array" in refusal.reason


def test_increment_starts_from_zero() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "visits": {"inc": 2}}))
    store.apply_attributes(update({"external_id": "u1", "visits": {"inc": 3}}))
    assert store.by_external_id["u1"].custom["visits"] == 5


def test_nested_objects_overwrite_unless_merged() -> None:
    store = UserStore()
    store.apply_attributes(
        update({"external_id": "u1", "song": {"title": "t", "meta": {"year": 1968, "a": 1}}})
    )
    store.apply_attributes(
        update({"external_id": "u1", "_merge_objects": True, "song": {"meta": {"year": 1969}}})
    )
    assert store.by_external_id["u1"].custom["song"] == {"title": "t", "meta": {"year": 1969, "a": 1}}
    store.apply_attributes(update({"external_id": "u1", "song": {"title": "new"}}))
    assert store.by_external_id["u1"].custom["song"] == {"title": "new"}


def test_email_is_indexed_and_follows_changes() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "email": "Ada@Example.com"}))
    assert store.find(Identifier("email", "ada@example.com")) is store.by_external_id["u1"]
    store.apply_attributes(update({"external_id": "u1", "email": "new@example.com"}))
    assert store.find(Identifier("email", "ada@example.com")) is None
    assert store.by_external_id["u1"].email == "new@example.com"


def test_email_identifier_updates_the_most_recently_updated_profile() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "email": "shared@example.com"}))
    store.apply_attributes(update({"external_id": "u2", "email": "shared@example.com"}))
    store.apply_attributes(update({"email": "shared@example.com", "hit": True}))
    assert store.by_external_id["u2"].custom == {"hit": True}
    assert store.by_external_id["u1"].custom == {}


def test_subscriptions_are_free_but_tracked() -> None:
    store = UserStore()
    groups = [{"subscription_group_id": "g1", "subscription_state": "subscribed"}]
    store.apply_attributes(
        update({"external_id": "u1", "email_subscribe": "opted_in", "subscription_groups": groups})
    )
    profile = store.by_external_id["u1"]
    assert profile.subscriptions == {"email_subscribe": "opted_in"}
    assert profile.subscription_groups == {"g1": "subscribed"}
    assert store.totals.data_points == 0


def test_events_and_purchases_are_kept_in_order_including_duplicates() -> None:
    store = UserStore()
    event = validate_event(
        {"external_id": "u1", "name": "e", "time": "2024-01-01", "properties": {"p": 1}}, RULES, NOW
    )
    assert isinstance(event, EventRecord)
    store.apply_event(event)
    store.apply_event(event)
    purchase = validate_purchase(
        {
            "external_id": "u1",
            "product_id": "p",
            "currency": "USD",
            "price": 2,
            "quantity": 3,
            "time": "2024-01-01",
        },
        RULES,
        NOW,
    )
    assert isinstance(purchase, PurchaseRecord)
    store.apply_purchase(purchase)
    profile = store.by_external_id["u1"]
    assert profile.events is not None and len(profile.events) == 2
    # A quantity of 3 is recorded as three purchases.
    assert (
        profile.purchases
        == [
            {
                "product_id": "p",
                "currency": "USD",
                "price": 2.0,
                "quantity": 1,
                "time": "2024-01-01T00:00:00.000Z",
                "properties": {},
            }
        ]
        * 3
    )
    assert store.totals.data_points == 2 + 2 + 1
    assert (store.totals.events, store.totals.purchases) == (2, 1)


def test_deleting_a_profile_removes_every_index() -> None:
    store = UserStore()
    store.apply_attributes(update({"external_id": "u1", "email": "a@example.com", "phone": "+15550100"}))
    profile = store.by_external_id["u1"]
    store.add_alias(profile, ("l", "n"))
    store.delete(profile)
    assert len(store) == 0
    assert not store.by_alias and not store.by_email and not store.by_phone and not store.by_external_id
