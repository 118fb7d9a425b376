"""users.track against the emulator: acceptance, partial errors mapped to refs, caps in both modes."""

from __future__ import annotations

import pytest

from cdpbridge.braze import BrazeClient, TrackCap, TrackRequest, TrackRequestBuilder

from .conftest import ClientFactory, EmulatorAdmin

pytestmark = pytest.mark.integration


def attributes_request(count: int, prefix: str = "user", cap: TrackCap | None = None) -> TrackRequest:
    builder = TrackRequestBuilder(cap or TrackCap(limit=1000))
    for n in range(count):
        builder.add("attributes", {"external_id": f"{prefix}-{n}", "tier": n}, f"row-{n}")
    request = builder.flush()
    assert request is not None
    return request


def test_a_valid_request_is_accepted_and_lands_in_braze(client: BrazeClient, admin: EmulatorAdmin) -> None:
    # Given 10 users / When tracked / Then accepted at the first attempt and every profile exists
    outcome = client.track(attributes_request(10))
    assert outcome.status == "accepted"
    assert (outcome.http_status, outcome.message, outcome.attempts, outcome.queued) == (
        201,
        "success",
        1,
        False,
    )
    assert outcome.errors == []
    assert admin.count() == 10
    profile = admin.user("user-7")
    assert profile is not None and profile["attributes"]["tier"] == 7
    assert client.snapshot()["users.track"].requests == 1


def test_partial_errors_are_mapped_back_to_the_refs_of_the_failed_objects(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    # Given a request mixing valid objects with one bad attribute, one bad event and one bad purchase
    builder = TrackRequestBuilder(TrackCap())
    builder.add("attributes", {"external_id": "a", "tier": 1}, "row-1")
    builder.add("attributes", {"external_id": "b", "dob": "yesterday"}, "row-2")
    builder.add("attributes", {"external_id": "c", "tier": 3}, "row-3")
    builder.add("events", {"external_id": "a", "name": "opened", "time": "2024-05-01T10:00:00Z"}, "row-1/e")
    builder.add("events", {"external_id": "a", "name": "", "time": "2024-05-01T10:00:00Z"}, "row-4/e")
    builder.add(
        "purchases",
        {
            "external_id": "c",
            "product_id": "p1",
            "currency": "USD",
            "price": 5,
            "time": "2024-05-01T10:00:00Z",
        },
        "row-3/p",
    )
    builder.add(
        "purchases",
        {"external_id": "c", "product_id": "p2", "currency": "USD", "price": 5, "quantity": 500},
        "row-5/p",
    )
    request = builder.flush()
    assert request is not None
    # When tracked
    outcome = client.track(request)
    # Then the request is partial and exactly the three bad objects are named, by their refs
    assert outcome.status == "partial" and outcome.http_status == 201
    assert sorted((error.kind, error.index, str(error.ref)) for error in outcome.errors) == [
        ("attributes", 1, "row-2"),
        ("events", 1, "row-4/e"),
        ("purchases", 1, "row-5/p"),
    ]
    assert all(error.error_type for error in outcome.errors)
    # ... and everything else was processed
    assert admin.user("a") is not None and admin.user("c") is not None
    assert admin.user("b") is None
    profile_a = admin.user("a")
    assert profile_a is not None and len(profile_a["events"]) == 1


def test_a_request_with_nothing_valid_is_a_permanent_failure_naming_every_object(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    builder = TrackRequestBuilder(TrackCap())
    builder.add("attributes", {"external_id": "x", "dob": "never"}, "row-1")
    builder.add("attributes", {"external_id": "y", "gender": "robot"}, "row-2")
    request = builder.flush()
    assert request is not None
    outcome = client.track(request)
    assert outcome.status == "permanent_failure" and outcome.http_status == 400
    assert [error.ref for error in outcome.errors] == ["row-1", "row-2"]
    assert outcome.attempts == 1  # a 400 is never retried
    assert admin.statuses("users.track") == {"400": 1}


def test_over_the_cap_the_client_halves_its_cap_and_resends_in_two(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    # Given a workspace on a stricter contract (50 combined) than the client's default 75
    admin.configure(track_cap={"mode": "total", "limit": 50})
    # When 75 attributes go in one request
    outcome = client.track(attributes_request(75))
    # Then Braze's 400 "Max Input Length Exceeded" lowers the cap to 38 for the rest of the run and
    # the request goes again as two halves: every object is processed, none fails
    assert outcome.status == "accepted" and outcome.errors == [] and outcome.requests == 3
    assert (client.track_cap.limit, client.track_cap.lowered_to) == (38, 38)
    assert client.snapshot()["users.track"].cap_lowered == 1
    assert admin.count() == 75
    requests = admin.stats()["requests"]["users.track"]
    assert (requests.get("400"), requests.get("201")) == (1, 2)
    # And a later request over the lowered cap is split before it is sent, without another 400
    assert client.track(attributes_request(75)).requests == 2
    assert admin.stats()["requests"]["users.track"].get("400") == 1


def test_legacy_per_array_cap_takes_75_of_each_array(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(track_cap={"mode": "per_array", "limit": 75})
    client = make_client(track_cap={"mode": "per_array", "limit": 75})
    builder = TrackRequestBuilder(TrackCap(mode="per_array", limit=75))
    for n in range(75):
        builder.add("attributes", {"external_id": f"u{n}", "n": n}, n)
        builder.add("events", {"external_id": f"u{n}", "name": "seen", "time": "2024-05-01T10:00:00Z"}, n)
    request = builder.flush()
    assert request is not None and request.object_count() == 150
    outcome = client.track(request)
    assert outcome.status == "accepted" and outcome.requests == 1
    assert client.track_cap.lowered_to is None


def test_over_the_total_cap_braze_refuses_what_the_per_array_builder_makes(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given a workspace on the newer 75-objects-in-total contract
    admin.configure(track_cap={"mode": "total", "limit": 75})
    client = make_client(track_cap={"mode": "total", "limit": 75})
    mixed: list[tuple[str, dict[str, object]]] = []
    for n in range(60):
        mixed.append(("attributes", {"external_id": f"u{n}", "n": n}))
        mixed.append(("events", {"external_id": f"u{n}", "name": "seen", "time": "2024-05-01T10:00:00Z"}))
    # When the per_array builder packs 120 objects into one request / Then Braze refuses it
    per_array = TrackRequestBuilder(TrackCap(mode="per_array", limit=75))
    for index, (kind, obj) in enumerate(mixed):
        per_array.add(kind, obj, index)  # type: ignore[arg-type]
    too_big = per_array.flush()
    assert too_big is not None and too_big.object_count() == 120
    legacy = make_client(track_cap={"mode": "per_array", "limit": 75})
    resent = legacy.track(too_big)
    # The client halves its cap (60 per array -> 30) and the two halves of 60 objects are accepted
    assert resent.status == "accepted" and resent.requests == 3
    assert legacy.track_cap.lowered_to == 30
    # When the builder follows the settings' total cap / Then every request is full and accepted
    total = TrackRequestBuilder(client.settings.track_cap)
    requests = [done for index, (kind, obj) in enumerate(mixed) if (done := total.add(kind, obj, index))]  # type: ignore[arg-type]
    last = total.flush()
    assert last is not None
    assert [request.object_count() for request in [*requests, last]] == [75, 45]
    assert all(client.track(request).status == "accepted" for request in [*requests, last])
    assert admin.count() == 60


def test_the_builder_keeps_requests_full_against_the_emulator(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    # Given 1,000 users through the classic-cap builder
    builder = TrackRequestBuilder(client.settings.track_cap)
    outcomes = []
    for n in range(1000):
        done = builder.add("attributes", {"external_id": f"bulk-{n}", "n": n}, n)
        if done is not None:
            assert done.fill_ratio(client.settings.track_cap) == 1.0
            outcomes.append(client.track(done))
    last = builder.flush()
    assert last is not None
    outcomes.append(client.track(last))
    # Then 14 requests (13 full + 1) carried them, all accepted
    assert len(outcomes) == 14
    assert all(outcome.status == "accepted" for outcome in outcomes)
    assert admin.count() == 1000
    assert admin.statuses("users.track") == {"201": 14}


def test_a_202_queued_answer_counts_as_accepted(client: BrazeClient, admin: EmulatorAdmin) -> None:
    # Given Braze in maintenance: requests are applied and answered 202 {"message": "queued"}
    admin.configure(faults={"queued_202": 1.0})
    # When tracked / Then the outcome is accepted (not retried) and says it was queued
    outcome = client.track(attributes_request(3))
    assert outcome.status == "accepted"
    assert (outcome.http_status, outcome.message, outcome.queued) == (202, "queued", True)
    assert outcome.attempts == 1
    assert admin.statuses("users.track") == {"202": 1}
    assert admin.count() == 3
