"""Segments and campaigns lists, campaign details, and API-triggered sends over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.emulator.conftest import EmulatorClient


def add_campaign(client: EmulatorClient, campaign_id: str = "camp-1") -> str:
    campaign: dict[str, Any] = client.admin(
        "POST", "/campaigns", {"campaign_id": campaign_id, "name": "Notify"}
    )
    return str(campaign["id"])


def test_segments_list_pages_of_100(client: EmulatorClient) -> None:
    for index in range(150):
        client.admin(
            "POST", "/segments", {"segment_id": f"s{index:03d}", "name": f"Segment {index}", "tags": ["t"]}
        )
    first = client.get("/segments/list").json()
    second = client.get("/segments/list", {"page": 1}).json()
    assert first["message"] == "success"
    assert len(first["segments"]) == 100 and len(second["segments"]) == 50
    assert first["segments"][0] == {
        "id": "s000",
        "name": "Segment 0",
        "analytics_tracking_enabled": False,
        "tags": ["t"],
    }
    assert client.get("/segments/list", {"page": 2}).json()["segments"] == []
    assert client.get("/segments/list", {"sort_direction": "desc"}).json()["segments"][0]["id"] == "s149"
    assert client.get("/segments/list", {"page": "x"}).status_code == 400


def test_campaigns_list_and_details(client: EmulatorClient) -> None:
    add_campaign(client)
    listing = client.get("/campaigns/list").json()
    assert [(campaign["id"], campaign["name"]) for campaign in listing["campaigns"]] == [("camp-1", "Notify")]
    details = client.get("/campaigns/details", {"campaign_id": "camp-1"})
    assert details.status_code == 200 and details.json()["name"] == "Notify"
    unknown = client.get("/campaigns/details", {"campaign_id": "nope"})
    assert unknown.status_code == 400 and "Invalid campaign_id" in unknown.json()["message"]
    assert client.get("/campaigns/details").status_code == 400


def test_trigger_send_records_a_dispatch_and_skips_unknown_users(client: EmulatorClient) -> None:
    # Given a campaign and one known user
    add_campaign(client)
    client.track(attributes=[{"external_id": "u1", "a": 1}])
    # When a send names the known user and an unknown one
    response = client.post(
        "/campaigns/trigger/send",
        {
            "campaign_id": "camp-1",
            "send_id": "s1",
            "trigger_properties": {"slot": "09:00"},
            "recipients": [
                {"external_user_id": "u1", "trigger_properties": {"p": 1}},
                {"external_user_id": "ghost"},
            ],
        },
    )
    # Then one dispatch is recorded with the unknown user skipped
    assert response.status_code == 201
    dispatch_id = response.json()["dispatch_id"]
    [dispatch] = client.admin("GET", "/dispatches")["dispatches"]
    assert dispatch["dispatch_id"] == dispatch_id and dispatch["kind"] == "send"
    assert [
        (recipient["external_user_id"], recipient["trigger_properties"])
        for recipient in dispatch["recipients"]
    ] == [("u1", {"p": 1})]
    assert dispatch["skipped"] == [
        {"external_user_id": "ghost", "reason": "user not found (send_to_existing_only)"}
    ]
    assert dispatch["trigger_properties"] == {"slot": "09:00"} and dispatch["send_id"] == "s1"


def test_send_to_new_users_needs_attributes_and_creates_them(client: EmulatorClient) -> None:
    add_campaign(client)
    response = client.post(
        "/campaigns/trigger/send",
        {
            "campaign_id": "camp-1",
            "recipients": [
                {"external_user_id": "new", "send_to_existing_only": False, "attributes": {"first_name": "N"}}
            ],
        },
    )
    assert response.status_code == 201
    assert client.user("new")["attributes"] == {"first_name": "N"}


def test_broadcast_without_recipients(client: EmulatorClient) -> None:
    add_campaign(client)
    assert (
        client.post("/campaigns/trigger/send", {"campaign_id": "camp-1", "broadcast": True}).status_code
        == 201
    )
    assert client.admin("GET", "/dispatches")["dispatches"][0]["broadcast"] is True


def recipients(count: int) -> list[dict[str, Any]]:
    return [{"external_user_id": f"u{index}"} for index in range(count)]


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        ({"campaign_id": "nope", "broadcast": True}, "Invalid campaign_id"),
        ({"broadcast": True}, "'campaign_id' is required"),
        ({"campaign_id": "camp-1"}, "'broadcast' must be true"),
        ({"campaign_id": "camp-1", "broadcast": True, "recipients": recipients(1)}, "cannot be true"),
        ({"campaign_id": "camp-1", "recipients": recipients(51)}, "the limit is 50"),
        (
            {"campaign_id": "camp-1", "recipients": [{"external_user_id": "u1", "email": "a@b.co"}]},
            "exactly one",
        ),
        ({"campaign_id": "camp-1", "recipients": [{"trigger_properties": {}}]}, "exactly one"),
        ({"campaign_id": "camp-1", "recipients": [{"email": "nope"}]}, "not a valid email"),
        (
            {
                "campaign_id": "camp-1",
                "recipients": [{"external_user_id": "u1", "send_to_existing_only": False}],
            },
            "'attributes' are required",
        ),
        (
            {"campaign_id": "camp-1", "recipients": [{"external_user_id": "u1", "attributes": {"dob": "x"}}]},
            "recipients[0].attributes: 'dob'",
        ),
        ({"campaign_id": "camp-1", "broadcast": "yes"}, "'broadcast' must be a boolean"),
        ({"campaign_id": "camp-1", "broadcast": True, "send_id": "x" * 65}, "'send_id'"),
        ({"campaign_id": "camp-1", "broadcast": True, "schedule": {"time": "2030-01-01"}}, "unknown fields"),
    ],
)
def test_trigger_send_refuses_bad_requests(
    client: EmulatorClient, body: dict[str, Any], message_part: str
) -> None:
    add_campaign(client)
    response = client.post("/campaigns/trigger/send", body)
    assert response.status_code == 400
    assert message_part in response.json()["message"]
    assert client.admin("GET", "/dispatches")["dispatches"] == []


def test_audience_without_recipients_needs_no_broadcast(client: EmulatorClient) -> None:
    add_campaign(client)
    body = {
        "campaign_id": "camp-1",
        "audience": {"custom_attribute": {"custom_attribute_name": "a", "comparison": "exists"}},
    }
    assert client.post("/campaigns/trigger/send", body).status_code == 201


def test_schedule_create_records_the_schedule(client: EmulatorClient) -> None:
    add_campaign(client)
    client.track(attributes=[{"external_id": "u1"}])
    response = client.post(
        "/campaigns/trigger/schedule/create",
        {
            "campaign_id": "camp-1",
            "recipients": [{"external_user_id": "u1"}],
            "schedule": {"time": "2030-01-01T09:00:00", "in_local_time": True},
        },
    )
    assert response.status_code == 201
    body = response.json()
    [dispatch] = client.admin("GET", "/dispatches")["dispatches"]
    assert dispatch["kind"] == "schedule" and dispatch["schedule_id"] == body["schedule_id"]
    # A local time keeps no zone: each recipient gets it in their own time zone (UTC without one).
    assert dispatch["recipients"][0]["deliver_at"] == "2030-01-01T09:00:00.000Z"
    assert dispatch["schedule"] == {
        "time": "2030-01-01T09:00:00",
        "in_local_time": True,
        "at_optimal_time": False,
    }


@pytest.mark.parametrize(
    ("schedule", "message_part"),
    [
        (None, "'schedule' is required"),
        ({"in_local_time": True}, "'schedule.time' is required"),
        ({"time": "tomorrow"}, "'schedule.time' is required"),
        ({"time": "2030-01-01", "at_optimal_time": "yes"}, "must be booleans"),
        ({"time": "2030-01-01", "when": 1}, "unknown fields"),
    ],
)
def test_schedule_create_refuses_bad_schedules(
    client: EmulatorClient, schedule: Any, message_part: str
) -> None:
    add_campaign(client)
    body: dict[str, Any] = {"campaign_id": "camp-1", "broadcast": True}
    if schedule is not None:
        body["schedule"] = schedule
    response = client.post("/campaigns/trigger/schedule/create", body)
    assert response.status_code == 400
    assert message_part in response.json()["message"]
