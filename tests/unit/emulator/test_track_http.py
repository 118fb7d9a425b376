"""POST /users/track over real HTTP: responses, partial errors, caps and the state they leave."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.emulator.conftest import EmulatorClient


def attributes(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"external_id": f"u{index}", "n": index, **extra} for index in range(count)]


def test_valid_request_is_applied_and_reports_what_was_processed(client: EmulatorClient) -> None:
    # Given one attributes object, one event and one purchase for a new user
    response = client.track(
        attributes=[{"external_id": "u1", "first_name": "Ada", "plan": "gold"}],
        events=[{"external_id": "u1", "name": "login", "time": "2024-01-01T00:00:00Z"}],
        purchases=[
            {"external_id": "u1", "product_id": "p1", "currency": "USD", "price": 9.5, "time": "2024-01-01"}
        ],
    )
    # Then Braze's success body comes back with 201
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "attributes_processed": 1,
        "events_processed": 1,
        "purchases_processed": 1,
    }
    # And the profile holds what was sent
    user = client.user("u1")
    assert user["attributes"] == {"first_name": "Ada", "plan": "gold"}
    assert [event["name"] for event in user["events"]] == ["login"]
    assert user["purchases"][0]["product_id"] == "p1"


def test_one_invalid_object_is_reported_by_index_and_the_rest_is_applied(client: EmulatorClient) -> None:
    # Given three objects of which the middle one has a bad date of birth
    response = client.track(
        attributes=[
            {"external_id": "u0", "a": 1},
            {"external_id": "u1", "dob": "01/02/1990"},
            {"external_id": "u2", "a": 2},
        ],
        events=[{"external_id": "u0", "name": "e", "time": "2024-01-01"}, {"external_id": "u0", "name": ""}],
    )
    # Then the request succeeds with one error per refused object, indexed in its own array
    assert response.status_code == 201
    body = response.json()
    assert body["attributes_processed"] == 2 and body["events_processed"] == 1
    assert body["errors"] == [
        {"type": "'dob' must be a date formatted YYYY-MM-DD", "input_array": "attributes", "index": 1},
        {"type": "'name' must be a string of 1-255 characters", "input_array": "events", "index": 1},
    ]
    # And nothing of the refused object exists
    assert client.admin_response("GET", "/users/u1").status_code == 404
    assert client.user("u2")["attributes"] == {"a": 2}


def test_a_request_with_nothing_valid_is_a_400_with_the_errors(client: EmulatorClient) -> None:
    response = client.track(attributes=[{"a": 1}, {"external_id": "u1", "$bad": 1}])
    assert response.status_code == 400
    body = response.json()
    assert (
        body["message"] == "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
    )
    assert [(error["input_array"], error["index"]) for error in body["errors"]] == [
        ("attributes", 0),
        ("attributes", 1),
    ]


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"attributes": {"external_id": "u1"}}', "'attributes' must be an array"),
        (b"{}", "Valid data must be provided"),
    ],
)
def test_malformed_requests_are_400(client: EmulatorClient, body: bytes, message_part: str) -> None:
    response = client.session.post(
        f"{client.url}/users/track",
        data=body,
        headers={"Authorization": "Bearer local-dev-key", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert message_part in response.json()["message"]


def test_per_array_cap_allows_75_of_each_and_refuses_76(client: EmulatorClient) -> None:
    client.configure(track_cap={"mode": "per_array", "limit": 75})
    events = [{"external_id": f"u{index}", "name": "e", "time": "2024-01-01"} for index in range(75)]
    assert client.track(attributes=attributes(75), events=events).status_code == 201
    response = client.track(attributes=attributes(76))
    assert response.status_code == 400
    assert response.json()["message"] == "Max Input Length Exceeded"
    assert response.json()["errors"][0]["input_array"] == "attributes"
    # And an over-cap request is not applied at all
    assert client.stats()["objects"]["attributes"] == 75


def test_total_cap_counts_the_three_arrays_together(client: EmulatorClient) -> None:
    client.configure(track_cap={"mode": "total", "limit": 75})
    events = [{"external_id": "u1", "name": "e", "time": "2024-01-01"}]
    assert client.track(attributes=attributes(74), events=events).status_code == 201
    response = client.track(attributes=attributes(75), events=events)
    assert response.status_code == 400
    assert response.json()["message"] == "Max Input Length Exceeded"


def test_attributes_are_processed_before_events_of_the_same_request(client: EmulatorClient) -> None:
    # Given an event for an alias that only the same request's attributes create
    alias = {"alias_name": "a1", "alias_label": "crm"}
    response = client.track(
        events=[{"user_alias": alias, "name": "visit", "time": "2024-01-01"}],
        attributes=[{"user_alias": alias, "_update_existing_only": False, "tier": "x"}],
    )
    # Then the event finds the user (aliases are update-only by default)
    assert response.status_code == 201 and "errors" not in response.json()
    user = client.admin("GET", "/users/by-alias", params={"label": "crm", "name": "a1"})
    assert user["attributes"] == {"tier": "x"} and len(user["events"]) == 1


def test_update_existing_only_for_an_unknown_user_is_an_object_error(client: EmulatorClient) -> None:
    response = client.track(
        attributes=[
            {"external_id": "ghost", "_update_existing_only": True, "a": 1},
            {"external_id": "u1", "a": 1},
        ]
    )
    assert response.status_code == 201
    assert response.json()["errors"] == [
        {
            "type": "user not found and '_update_existing_only' is true",
            "input_array": "attributes",
            "index": 0,
        }
    ]


def test_duplicate_events_are_kept_and_future_times_clamped(client: EmulatorClient) -> None:
    event = {"external_id": "u1", "name": "e", "time": "2999-01-01T00:00:00Z", "properties": {"k": "v"}}
    assert client.track(events=[event, event]).status_code == 201
    events = client.user("u1")["events"]
    assert len(events) == 2
    assert all(recorded["time"] < "2999" for recorded in events)


def test_data_points_and_unchanged_writes_are_accounted(client: EmulatorClient) -> None:
    # Given two attributes, an array add of two values, a nested object of three keys and free fields
    first = {
        "external_id": "u1",
        "external_ids_are_free": None,
        "plan": "gold",
        "tags": {"add": ["a", "b"]},
        "song": {"title": "t", "meta": {"year": 1}},
        "email_subscribe": "opted_in",
    }
    client.track(attributes=[first])
    # When the plan is sent again unchanged, with an event of two properties and a purchase
    client.track(
        attributes=[{"external_id": "u1", "plan": "gold"}],
        events=[{"external_id": "u1", "name": "e", "time": "2024-01-01", "properties": {"a": 1, "b": 2}}],
        purchases=[
            {"external_id": "u1", "product_id": "p", "currency": "EUR", "price": 1, "time": "2024-01-01"}
        ],
    )
    stats = client.stats()
    # Then: 1 (unset) + 1 (plan) + 2 (add) + 3 (nested) + 1 (plan again) + 3 (event) + 1 (purchase)
    assert stats["data_points"] == 12
    # And the repeated plan plus the unset of a never-set attribute changed nothing
    assert stats["unchanged_writes"] == 2
    assert stats["objects"] == {"attributes": 2, "events": 1, "purchases": 1}
    assert stats["requests"]["users.track"] == {"201": 2}


def test_array_maximum_is_configurable_up_to_500_and_longer_arrays_are_truncated(
    client: EmulatorClient,
) -> None:
    # Over the default maximum of 25: truncated, not refused; the newest (last) elements stay.
    response = client.track(attributes=[{"external_id": "u1", "tags": list(range(30))}])
    assert response.status_code == 201 and "errors" not in response.json()
    assert client.user("u1")["custom_attributes"]["tags"] == list(range(5, 30))
    client.configure(array_max_length=500)
    assert client.track(attributes=[{"external_id": "u1", "tags": list(range(500))}]).status_code == 201
    assert len(client.user("u1")["custom_attributes"]["tags"]) == 500
    assert client.admin_response("PUT", "/config", {"array_max_length": 501}).status_code == 400


EVENT = {"external_id": "u1", "name": "e", "time": "2024-01-01T00:00:00Z"}
PURCHASE = {"external_id": "u1", "product_id": "p", "currency": "USD", "price": 1.5, "time": "2024-01-01"}
VALID_BY_ARRAY = {"attributes": {"external_id": "u1", "a": 1}, "events": EVENT, "purchases": PURCHASE}

# One row per rule of the reference: the array, an object breaking the rule, part of the reason.
REFUSED_OBJECTS: list[tuple[str, Any, str]] = [
    ("attributes", {"plan": "x"}, "is required"),
    ("attributes", {"external_id": "u9", "braze_id": "b"}, "only one of"),
    ("attributes", {"user_alias": {"alias_name": "n"}}, "'user_alias' must be an object"),
    ("attributes", {"braze_id": "0" * 24, "a": 1}, "braze_id cannot create users"),
    ("attributes", {"external_id": "u9", "k" * 256: 1}, "must be 1-255 characters"),
    ("attributes", {"external_id": "u9", "$k": 1}, "must not start with '$'"),
    ("attributes", {"external_id": "u9", "k": "v" * 256}, "exceeds 255 characters"),
    ("attributes", {"external_id": "u9", "dob": "1990-13-01"}, "YYYY-MM-DD"),
    ("attributes", {"external_id": "u9", "language": "german"}, "ISO-639-1"),
    ("attributes", {"external_id": "u9", "gender": "X"}, "M, F, O, N, P"),
    ("attributes", {"external_id": "u9", "email": "a@b"}, "valid email"),
    ("attributes", {"external_id": "u9", "phone": "phone"}, "valid phone"),
    ("attributes", {"external_id": "u9", "email_subscribe": "maybe"}, "opted_in"),
    ("attributes", {"external_id": "u9", "push_subscribe": "yes"}, "opted_in"),
    ("attributes", {"external_id": "u9", "email_open_tracking_disabled": 1}, "boolean"),
    ("attributes", {"external_id": "u9", "email_click_tracking_disabled": "no"}, "boolean"),
    (
        "attributes",
        {"external_id": "u9", "subscription_groups": [{"subscription_group_id": "g"}]},
        "subscription_state",
    ),
    ("attributes", {"external_id": "u9", "tags": {"remove": "a"}}, "must be arrays"),
    ("attributes", {"external_id": "u9", "n": {"inc": "1"}}, "'inc' of 'n' must be an integer"),
    ("attributes", {"external_id": "u9", "o": {"$k": 1}}, "with a space, '.' or '$'"),
    ("attributes", {"external_id": "u9", "o": {"a b": 1}}, "with a space, '.' or '$'"),
    ("attributes", {"external_id": "u9", "o": {"a.b": 1}}, "with a space, '.' or '$'"),
    ("attributes", {"external_id": "u9", "o": {"k": "v" * 256}}, "a string over 255"),
    (
        "attributes",
        {"external_id": "u9", "o": {f"k{i}": "x" * 200 for i in range(600)}},
        "exceeds 102400 bytes",
    ),
    ("attributes", {"external_id": "u9", "_update_existing_only": True, "a": 1}, "user not found"),
    ("attributes", {"external_id": "u9", "_merge_objects": "yes"}, "'_merge_objects' must be a boolean"),
    ("events", {**EVENT, "name": ""}, "'name'"),
    ("events", {"external_id": "u1", "name": "e"}, "'time' is required"),
    ("events", {**EVENT, "time": "01/02/2024 10:00"}, "ISO 8601"),
    ("events", {**EVENT, "properties": {"$p": 1}}, "must not start with '$'"),
    ("events", {**EVENT, "properties": {"": 1}}, "must be 1-255 characters"),
    ("events", {**EVENT, "properties": {f"p{i}": "x" * 200 for i in range(600)}}, "exceed 102400 bytes"),
    ("events", {**EVENT, "properties": {"time": "2024-01-01"}}, "'time' is reserved"),
    ("events", {**EVENT, "properties": {"event_name": "x"}}, "'event_name' is reserved"),
    ("events", {**EVENT, "properties": {"p": "v" * 256}}, "exceeds 255 characters"),
    ("events", {**EVENT, "external_id": "u9", "_update_existing_only": True}, "user not found"),
    ("purchases", {**PURCHASE, "product_id": "p" * 256}, "'product_id'"),
    ("purchases", {**PURCHASE, "currency": "DOLLAR"}, "ISO 4217"),
    ("purchases", {key: value for key, value in PURCHASE.items() if key != "price"}, "'price' is required"),
    ("purchases", {**PURCHASE, "price": "1.5"}, "'price' must be a number"),
    ("purchases", {**PURCHASE, "quantity": 101}, "from 1 to 100"),
    ("purchases", {**PURCHASE, "quantity": 0}, "from 1 to 100"),
    ("purchases", {**PURCHASE, "time": None}, "ISO 8601"),
    ("purchases", {**PURCHASE, "properties": {"$p": 1}}, "must not start with '$'"),
    ("purchases", 42, "must be a JSON object"),
]


@pytest.mark.parametrize(("array", "refused", "reason_part"), REFUSED_OBJECTS)
def test_each_rule_refuses_the_object_by_index_and_keeps_the_others(
    client: EmulatorClient, array: str, refused: Any, reason_part: str
) -> None:
    # Given a valid object, an object breaking one rule, and another valid object in the same array
    valid = VALID_BY_ARRAY[array]
    response = client.post("/users/track", {array: [valid, refused, valid]})
    # Then the request succeeds and only the middle object is reported, with the rule's reason
    assert response.status_code == 201, response.text
    body = response.json()
    assert body[f"{array}_processed"] == 2
    [error] = body["errors"]
    assert (error["input_array"], error["index"]) == (array, 1)
    assert reason_part in error["type"]


ACCEPTED_OBJECTS: list[tuple[str, Any]] = [
    ("attributes", {"external_id": "u1", "k" * 255: "v" * 255}),
    ("attributes", {"external_id": "u1", "gone": None, "n": 1.5, "b": True}),
    ("attributes", {"email": "ada@example.com", "first_name": "Ada"}),
    ("attributes", {"phone": "+4915112345678", "first_name": "Ada"}),
    (
        "attributes",
        {"external_id": "u1", "dob": "1990-02-28", "country": "DE", "language": "de", "gender": "F"},
    ),
    ("attributes", {"external_id": "u1", "time_zone": "America/New_York", "email_subscribe": "subscribed"}),
    (
        "attributes",
        {"external_id": "u1", "tags": {"add": list(range(25)), "remove": ["x"]}, "n": {"inc": -2}},
    ),
    (
        "attributes",
        {"external_id": "u1", "o": {"when": {"$time": "2024-01-01T00:00:00Z"}, "deep": {"a": [1, 2]}}},
    ),
    ("attributes", {"external_id": "u1", "_merge_objects": True, "o": {"a": 1}}),
    ("attributes", {"external_id": "u1", "list_of_objects": [{"a": 1}, {"a": 2}]}),
    ("events", {**EVENT, "properties": {"p" * 255: {"nested": [1, 2]}}, "app_id": "app"}),
    ("events", {**EVENT, "time": "Mon, 01 Jan 2024 10:00:00 +0000"}),
    ("purchases", {**PURCHASE, "quantity": 100, "price": 0, "properties": {"size": "L"}}),
]


@pytest.mark.parametrize(("array", "accepted"), ACCEPTED_OBJECTS)
def test_valid_objects_are_accepted(client: EmulatorClient, array: str, accepted: Any) -> None:
    response = client.post("/users/track", {array: [accepted]})
    assert response.status_code == 201, response.text
    assert response.json()[f"{array}_processed"] == 1
    assert "errors" not in response.json()
