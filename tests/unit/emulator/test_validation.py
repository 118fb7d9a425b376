"""The rules of users.track objects, checked without HTTP or state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cdpbridge_local.emulator.codes import COUNTRY_CODES, CURRENCY_CODES, LANGUAGE_CODES
from cdpbridge_local.emulator.validation import (
    AttributeUpdate,
    EventRecord,
    Identifier,
    PurchaseRecord,
    Refusal,
    TrackRules,
    count_nested_keys,
    parse_time,
    validate_attributes,
    validate_event,
    validate_purchase,
)

RULES = TrackRules()
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def accepted(obj: dict[str, Any], rules: TrackRules = RULES) -> AttributeUpdate:
    result = validate_attributes(obj, rules)
    assert isinstance(result, AttributeUpdate), result
    return result


def refused(obj: Any, rules: TrackRules = RULES) -> str:
    result = validate_attributes(obj, rules)
    assert isinstance(result, Refusal), result
    return result.reason


# -- code lists ---------------------------------------------------------------------------------


def test_code_lists_have_the_sizes_of_the_standards() -> None:
    # Given the three ISO code lists
    # Then they hold every officially assigned code
    assert len(COUNTRY_CODES) == 249
    assert {"US", "DE", "GB", "SS", "XK"} - COUNTRY_CODES == {"XK"}  # XK is user-assigned, not ISO
    assert {"en", "de", "zh"} <= LANGUAGE_CODES
    assert {"USD", "EUR", "JPY"} <= CURRENCY_CODES and "XXX" not in CURRENCY_CODES


# -- identifiers --------------------------------------------------------------------------------


def test_external_id_identifies_and_may_create() -> None:
    update = accepted({"external_id": "u1", "color": "red"})
    assert update.identifier == Identifier("external_id", "u1")
    assert update.update_existing_only is False
    assert update.custom == {"color": "red"}


def test_user_alias_defaults_to_update_only() -> None:
    update = accepted({"user_alias": {"alias_name": "n", "alias_label": "l"}, "color": "red"})
    assert update.identifier == Identifier("user_alias", ("l", "n"))
    assert update.update_existing_only is True


@pytest.mark.parametrize(
    ("obj", "reason_part"),
    [
        ({"color": "red"}, "is required"),
        ({"external_id": "u1", "braze_id": "b1"}, "only one of"),
        ({"braze_id": "b1", "user_alias": {"alias_name": "n", "alias_label": "l"}}, "only one of"),
        ({"external_id": ""}, "'external_id' must be a non-empty string"),
        ({"external_id": 123}, "'external_id' must be a non-empty string"),
        ({"user_alias": {"alias_name": "n"}}, "'user_alias' must be an object"),
        ({"email": "not-an-address"}, "'email' is not a valid email address"),
        ({"phone": "call me"}, "'phone' is not a valid phone number"),
        ({"external_id": "u1", "_update_existing_only": "yes"}, "'_update_existing_only' must be a boolean"),
        ("a string", "must be a JSON object"),
    ],
)
def test_identifier_rules_refuse(obj: Any, reason_part: str) -> None:
    assert reason_part in refused(obj)


def test_email_identifies_when_no_primary_identifier_and_costs_nothing() -> None:
    # Given an object identified by e-mail that also sets a phone number
    update = accepted({"email": "Ada@Example.com", "phone": "+4930123456"})
    # Then the address (lower-cased) is the identifier and only the phone is a billed write
    assert update.identifier == Identifier("email", "ada@example.com")
    assert update.standard == {"phone": "+4930123456"}
    assert update.data_points == 1


def test_email_next_to_external_id_is_a_billed_profile_field() -> None:
    update = accepted({"external_id": "u1", "email": "ada@example.com"})
    assert update.identifier.kind == "external_id"
    assert update.standard == {"email": "ada@example.com"}
    assert update.data_points == 1


# -- custom attributes --------------------------------------------------------------------------


def test_scalar_custom_attributes_cost_one_data_point_each_including_unsets() -> None:
    update = accepted({"external_id": "u1", "s": "x" * 255, "i": 3, "f": 1.5, "b": False, "gone": None})
    assert update.custom == {"s": "x" * 255, "i": 3, "f": 1.5, "b": False, "gone": None}
    assert update.data_points == 5


@pytest.mark.parametrize(
    ("obj", "reason_part"),
    [
        ({"external_id": "u1", "s": "x" * 256}, "value of 's' exceeds 255 characters"),
        ({"external_id": "u1", "n" * 256: 1}, "must be 1-255 characters"),
        ({"external_id": "u1", "$price": 1}, "must not start with '$'"),
        ({"external_id": "u1", "": 1}, "must be 1-255 characters"),
        ({"external_id": "u1", "odd": {1, 2}}, "unsupported type"),
    ],
)
def test_custom_attribute_rules_refuse(obj: dict[str, Any], reason_part: str) -> None:
    assert reason_part in refused(obj)


def test_whole_array_costs_one_data_point_and_keeps_unique_values() -> None:
    update = accepted({"external_id": "u1", "tags": ["a", "b", "a", 1, True]})
    assert update.custom == {"tags": ["a", "b", 1, True]}
    assert update.data_points == 1


def test_array_longer_than_the_maximum_is_truncated_to_its_newest_elements() -> None:
    assert accepted({"external_id": "u1", "tags": list(range(26))}).custom == {"tags": list(range(1, 26))}
    wide = TrackRules(array_max_length=500)
    assert accepted({"external_id": "u1", "tags": list(range(500))}, wide).custom == {
        "tags": list(range(500))
    }


def test_array_elements_must_be_short_scalars() -> None:
    assert "exceeds 255 characters" in refused({"external_id": "u1", "tags": ["x" * 256]})
    assert "must be strings, numbers or booleans" in refused({"external_id": "u1", "tags": ["a", None]})


def test_add_and_remove_cost_one_data_point_per_value() -> None:
    update = accepted({"external_id": "u1", "tags": {"add": ["a", "b"], "remove": ["c"]}})
    assert update.custom == {}
    assert [(op.name, op.add, op.remove) for op in update.array_operations] == [("tags", ["a", "b"], ["c"])]
    assert update.data_points == 3


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        ({"add": "a"}, "must be arrays"),
        ({"add": ["a"], "other": 1}, "may only hold 'add' and 'remove'"),
    ],
)
def test_array_operation_rules_refuse(value: dict[str, Any], reason_part: str) -> None:
    assert reason_part in refused({"external_id": "u1", "tags": value})


def test_increment_takes_integers_only() -> None:
    update = accepted({"external_id": "u1", "visits": {"inc": 2}})
    assert update.increments == {"visits": 2} and update.custom == {} and update.data_points == 1
    assert "must be an integer" in refused({"external_id": "u1", "visits": {"inc": 1.5}})
    assert "must be an integer" in refused({"external_id": "u1", "visits": {"inc": True}})


def test_nested_object_costs_every_key_at_every_level() -> None:
    nested = {"title": "x", "year": 1968, "artist": {"name": "y", "born": {"$time": "1940-10-09"}}}
    update = accepted({"external_id": "u1", "song": nested})
    assert update.custom == {"song": nested}
    # title, year, artist, artist.name, artist.born
    assert count_nested_keys(nested) == 5
    assert update.data_points == 5
    assert update.merged_objects == []


def test_merge_objects_marks_nested_objects_for_merging() -> None:
    update = accepted({"external_id": "u1", "_merge_objects": True, "song": {"year": 1969}, "n": 1})
    assert update.merged_objects == ["song"]
    assert update.custom == {"song": {"year": 1969}, "n": 1}
    assert "'_merge_objects' must be a boolean" in refused({"external_id": "u1", "_merge_objects": 1})


@pytest.mark.parametrize(
    ("nested", "reason_part"),
    [
        ({"$bad": 1}, "with a space, '.' or '$'"),
        ({"a b": 1}, "with a space, '.' or '$'"),
        ({"a.b": 1}, "with a space, '.' or '$'"),
        ({"name": "x" * 256}, "a string over 255"),
        ({"list": [[1, 2]]}, "array inside an array"),
    ],
)
def test_nested_object_rules_refuse(nested: dict[str, Any], reason_part: str) -> None:
    assert reason_part in refused({"external_id": "u1", "song": nested})


def test_nested_object_size_and_depth_are_limited() -> None:
    small = TrackRules(nested_object_max_bytes=100)
    assert "exceeds 100 bytes" in refused({"external_id": "u1", "blob": {"text": "x" * 200}}, small)
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(51):
        deep = {"level": deep}
    assert "deeper than 50 levels" in refused({"external_id": "u1", "deep": deep})


# -- standard fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("first_name", "Ada", "Ada"),
        ("dob", "1990-02-28", "1990-02-28"),
        ("dob", None, None),
        ("country", "de", "DE"),
        ("language", "EN", "en"),
        ("gender", "P", "P"),
        ("gender", None, None),
        ("time_zone", "Europe/Berlin", "Europe/Berlin"),
        ("email", "ada@example.com", "ada@example.com"),
        ("phone", "+1 (555) 010-9999", "+1 (555) 010-9999"),
        ("email_open_tracking_disabled", True, True),
        ("current_location", {"latitude": 52.5, "longitude": 13.4}, {"latitude": 52.5, "longitude": 13.4}),
    ],
)
def test_billable_standard_fields_are_normalised_and_cost_one_data_point(
    field: str, value: Any, stored: Any
) -> None:
    update = accepted({"external_id": "u1", field: value})
    assert update.standard == {field: stored}
    assert update.custom == {}
    assert update.data_points == 1


@pytest.mark.parametrize(
    ("field", "value", "reason_part"),
    [
        ("dob", "1990-02-30", "YYYY-MM-DD"),
        ("dob", "1990/02/01", "YYYY-MM-DD"),
        ("language", "eng", "ISO-639-1"),
        ("gender", "male", "M, F, O, N, P or null"),
        ("gender", ["M"], "M, F, O, N, P or null"),
        ("email", "ada@", "not a valid email address"),
        ("phone", "12", "not a valid phone number"),
        ("first_name", "x" * 256, "at most 255 characters"),
        ("email_subscribe", "yes", "opted_in, subscribed, unsubscribed"),
        ("push_subscribe", None, "opted_in, subscribed, unsubscribed"),
        ("email_click_tracking_disabled", "true", "must be a boolean"),
        ("current_location", {"latitude": 95, "longitude": 0}, "latitude"),
        (
            "subscription_groups",
            [{"subscription_group_id": "g", "subscription_state": "maybe"}],
            "subscribed",
        ),
        ("subscription_groups", {"subscription_group_id": "g"}, "must be an array"),
    ],
)
def test_standard_field_rules_refuse(field: str, value: Any, reason_part: str) -> None:
    reason = refused({"external_id": "u1", field: value})
    assert reason_part in reason
    assert field in reason


def test_subscription_fields_are_free() -> None:
    groups = [{"subscription_group_id": "g1", "subscription_state": "subscribed"}]
    update = accepted(
        {
            "external_id": "u1",
            "email_subscribe": "opted_in",
            "push_subscribe": "unsubscribed",
            "subscription_groups": groups,
        }
    )
    assert update.subscriptions == {
        "email_subscribe": "opted_in",
        "push_subscribe": "unsubscribed",
        "subscription_groups": groups,
    }
    assert update.data_points == 0


# -- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 03:04:05 +0000", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_dates_in_iso_8601_or_rfc_2822_and_without_zone_mean_utc(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "2024-13-01", 1704164645])
def test_other_dates_are_not_dates(text: Any) -> None:
    assert parse_time(text) is None


# -- events -------------------------------------------------------------------------------------


def test_event_costs_one_data_point_plus_one_per_property() -> None:
    event = validate_event(
        {
            "external_id": "u1",
            "name": "played",
            "time": "2024-05-01T00:00:00Z",
            "properties": {"a": 1, "b": "x"},
        },
        RULES,
        NOW,
    )
    assert isinstance(event, EventRecord)
    assert event.time == "2024-05-01T00:00:00.000Z"
    assert event.data_points == 3


def test_event_in_the_future_is_recorded_now() -> None:
    event = validate_event({"external_id": "u1", "name": "e", "time": "2099-01-01T00:00:00Z"}, RULES, NOW)
    assert isinstance(event, EventRecord)
    assert event.time == "2024-06-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("changes", "reason_part"),
    [
        ({"name": None}, "'name' must be a string"),
        ({"name": ""}, "'name' must be a string"),
        ({"name": "n" * 256}, "'name' must be a string"),
        ({"time": None}, "'time' must be an ISO 8601 date"),
        ({"time": "whenever"}, "'time' must be an ISO 8601 date"),
        ({"properties": ["a"]}, "'properties' must be an object"),
        ({"properties": {"$x": 1}}, "must not start with '$'"),
        ({"properties": {"": 1}}, "must be 1-255 characters"),
        ({"properties": {"p" * 256: 1}}, "must be 1-255 characters"),
        ({"app_id": 5}, "'app_id' must be a string"),
    ],
)
def test_event_rules_refuse(changes: dict[str, Any], reason_part: str) -> None:
    obj = {"external_id": "u1", "name": "e", "time": "2024-01-01T00:00:00Z", **changes}
    result = validate_event(obj, RULES, NOW)
    assert isinstance(result, Refusal)
    assert reason_part in result.reason


def test_event_without_time_is_refused() -> None:
    result = validate_event({"external_id": "u1", "name": "e"}, RULES, NOW)
    assert result == Refusal("'time' is required")


def test_event_properties_size_limit_is_configurable() -> None:
    properties = {f"p{index}": "x" * 200 for index in range(300)}
    obj = {"external_id": "u1", "name": "e", "time": "2024-01-01", "properties": properties}
    assert isinstance(validate_event(obj, RULES, NOW), EventRecord)
    result = validate_event(obj, TrackRules(event_properties_max_bytes=50 * 1024), NOW)
    assert isinstance(result, Refusal) and "exceed 51200 bytes" in result.reason


# -- purchases ----------------------------------------------------------------------------------


def test_purchase_is_normalised_and_costs_one_data_point_plus_properties() -> None:
    purchase = validate_purchase(
        {
            "external_id": "u1",
            "product_id": "sku-1",
            "currency": "EUR",
            "price": 10,
            "time": "2024-01-01",
            "properties": {"color": "red"},
        },
        RULES,
        NOW,
    )
    assert isinstance(purchase, PurchaseRecord)
    assert (purchase.price, purchase.quantity, purchase.data_points) == (10.0, 1, 2)


@pytest.mark.parametrize(
    ("changes", "reason_part"),
    [
        ({"product_id": None}, "'product_id' must be a string"),
        ({"product_id": "p" * 256}, "'product_id' must be a string"),
        ({"currency": "usd"}, "ISO 4217"),
        ({"currency": "ABC"}, "ISO 4217"),
        ({"price": "9.99"}, "'price' must be a number"),
        ({"price": True}, "'price' must be a number"),
        ({"quantity": 0}, "'quantity' must be an integer from 1 to 100"),
        ({"quantity": 101}, "'quantity' must be an integer from 1 to 100"),
        ({"quantity": 2.0}, "'quantity' must be an integer from 1 to 100"),
        ({"time": "later"}, "'time' must be an ISO 8601 date"),
        ({"properties": {"$p": 1}}, "must not start with '$'"),
    ],
)
def test_purchase_rules_refuse(changes: dict[str, Any], reason_part: str) -> None:
    obj = {
        "external_id": "u1",
        "product_id": "p",
        "currency": "USD",
        "price": 1.5,
        "time": "2024-01-01",
        **changes,
    }
    result = validate_purchase(obj, RULES, NOW)
    assert isinstance(result, Refusal)
    assert reason_part in result.reason


def test_purchase_without_price_is_refused_and_quantity_100_is_accepted() -> None:
    base = {"external_id": "u1", "product_id": "p", "currency": "USD", "time": "2024-01-01"}
    assert validate_purchase(base, RULES, NOW) == Refusal("'price' is required")
    purchase = validate_purchase({**base, "price": 0, "quantity": 100}, RULES, NOW)
    assert isinstance(purchase, PurchaseRecord) and purchase.quantity == 100


def test_array_of_objects_operations_are_checked() -> None:
    operation = {"$add": [{"id": 1}], "$remove": [{"$identifier_key": "id", "$identifier_value": 2}]}
    update = accepted({"external_id": "u1", "pets": operation})
    [parsed] = update.object_array_operations
    assert (parsed.add, parsed.remove, parsed.update) == ([{"id": 1}], [("id", 2)], [])
    assert "must be arrays" in refused({"external_id": "u1", "pets": {"$add": {"id": 1}}})
    assert "'$identifier_value'" in refused(
        {"external_id": "u1", "pets": {"$remove": [{"$identifier_key": "id"}]}}
    )
    assert "'$new_object'" in refused(
        {"external_id": "u1", "pets": {"$update": [{"$identifier_key": "id", "$identifier_value": 1}]}}
    )
    assert "may only hold" in refused({"external_id": "u1", "pets": {"$add": [], "$pop": []}})
