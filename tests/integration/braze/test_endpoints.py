"""Exports, lists, campaign triggers, cohorts and user management against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdpbridge.braze import (
    BrazeClient,
    BrazeUnavailableError,
    CohortChange,
    ExportInProgress,
    NewAlias,
    TrackCap,
    TrackRequestBuilder,
    TriggerSchedule,
    UserAlias,
)

from .conftest import ClientFactory, EmulatorAdmin

pytestmark = pytest.mark.integration


def create_users(client: BrazeClient, count: int, **extra: object) -> None:
    builder = TrackRequestBuilder(TrackCap())
    requests = []
    for n in range(count):
        body = {"external_id": f"u{n}", "email": f"u{n}@example.test", "phone": f"+1555000{n:04d}", **extra}
        if (done := builder.add("attributes", body, n)) is not None:
            requests.append(done)
    if (last := builder.flush()) is not None:
        requests.append(last)
    assert all(client.track(request).status == "accepted" for request in requests)


def test_export_ids_finds_users_by_every_identifier_kind(client: BrazeClient, admin: EmulatorAdmin) -> None:
    create_users(client, 5, tier="gold")
    assert (
        client.new_aliases(
            [NewAlias(alias_name="a-3", alias_label="crm", external_id="u3")]
        ).aliases_processed
        == 1
    )
    u4 = admin.user("u4")
    assert u4 is not None
    # When asked by external ids, an alias, a braze_id, an email and a phone in one call
    result = client.export_ids(
        external_ids=["u0", "missing"],
        user_aliases=[{"alias_name": "a-3", "alias_label": "crm"}],
        braze_ids=[u4["braze_id"]],
        emails=["u1@example.test"],
        phones=["+15550000002"],
        fields_to_export=["external_id", "custom_attributes"],
    )
    # Then every user is found; braze_id, email and phone took one request each (Braze's rule)
    assert sorted(user["external_id"] for user in result.users) == ["u0", "u1", "u2", "u3", "u4"]
    assert all(user["custom_attributes"] == {"tier": "gold"} for user in result.users)
    assert result.invalid_user_ids == ["missing"]
    assert result.requests == 4
    assert admin.statuses("users.export.ids") == {"201": 4}


def test_export_ids_chunked_splits_any_number_into_calls_of_50(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    create_users(client, 120)
    results = list(
        client.export_ids_chunked(
            external_ids=[f"u{n}" for n in range(120)], fields_to_export=["external_id"]
        )
    )
    assert [len(result.users) for result in results] == [50, 50, 20]
    assert admin.statuses("users.export.ids") == {"201": 3}


def test_a_segment_export_starts_and_a_second_one_is_refused_while_it_runs(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    create_users(client, 3)
    segment_id = admin.add_segment("everyone")
    started = client.export_segment(segment_id, ["external_id", "email"], output_format="zip")
    assert started.message == "success"
    assert started.url is not None or started.object_prefix is not None
    # The emulator takes a second to finish; a second export of the same segment meanwhile is a 429
    with pytest.raises(ExportInProgress) as raised:
        client.export_segment(segment_id, ["external_id"], output_format="zip")
    assert raised.value.segment_id == segment_id and "in progress" in raised.value.message
    # ... raised at once, not retried until the budget runs out
    assert admin.statuses("users.export.segment") == {"201": 1, "429": 1}


def test_list_segments_reads_every_page(client: BrazeClient, admin: EmulatorAdmin) -> None:
    names = {f"segment-{n:03d}" for n in range(230)}
    for name in sorted(names):
        admin.add_segment(name)
    listed = list(client.list_segments())
    assert {segment.name for segment in listed} == names
    assert len(listed) == 230
    assert admin.statuses("segments.list") == {"200": 3}


def test_campaigns_are_listed_and_detailed(client: BrazeClient, admin: EmulatorAdmin) -> None:
    for n in range(101):
        admin.add_campaign(f"campaign-{n}", f"Campaign {n}")
    listed = list(client.list_campaigns())
    assert len(listed) == 101 and listed[0].is_api_campaign is True
    assert admin.statuses("campaigns.list") == {"200": 2}
    details = client.campaign_details("campaign-7")
    assert details.name == "Campaign 7" and details.schedule_type == "api_triggered"
    assert details.archived is False


def test_trigger_send_dispatches_to_up_to_50_recipients(client: BrazeClient, admin: EmulatorAdmin) -> None:
    create_users(client, 50)
    admin.add_campaign("notify", "Notify send")
    recipients = [{"external_user_id": f"u{n}", "trigger_properties": {"slot": n}} for n in range(50)]
    result = client.trigger_send("notify", recipients=recipients, send_id="run-1")
    assert result.message == "success" and result.dispatch_id
    dispatches = admin.dispatches()
    assert len(dispatches) == 1 and dispatches[0]["dispatch_id"] == result.dispatch_id


def test_schedule_trigger_creates_a_scheduled_dispatch(client: BrazeClient, admin: EmulatorAdmin) -> None:
    create_users(client, 2)
    admin.add_campaign("notify", "Notify send")
    when = datetime.now(UTC) + timedelta(hours=3)
    result = client.schedule_trigger(
        "notify",
        schedule=TriggerSchedule(time=when, in_local_time=False, at_optimal_time=False),
        recipients=[{"external_user_id": "u0"}, {"external_user_id": "u1"}],
    )
    assert result.dispatch_id and result.schedule_id
    broadcast = client.schedule_trigger("notify", schedule={"time": when.isoformat()}, broadcast=True)
    assert broadcast.schedule_id and broadcast.schedule_id != result.schedule_id
    assert len(admin.dispatches()) == 2


def test_cohort_membership_goes_in_requests_of_at_most_1000_ids(
    client: BrazeClient, admin: EmulatorAdmin
) -> None:
    # Given 1,200 users and a partner
    create_users(client, 1200)
    admin.add_partner("segment", "partner-key", "data-import-key")
    client.cohort_upsert("segment", "partner-key", "data-import-key", "cohort-1", "High value")
    # When 1,200 are added and then 200 removed
    result = client.cohort_update_users(
        "segment",
        "partner-key",
        "data-import-key",
        "cohort-1",
        [
            CohortChange(user_ids=[f"u{n}" for n in range(1200)]),
            CohortChange(user_ids=[f"u{n}" for n in range(200)], should_remove=True),
        ],
    )
    # Then it took two requests and the cohort holds the 1,000 that stayed
    assert (result.requests, result.ids_sent) == (2, 1400)
    assert admin.statuses("cohorts.users") == {"201": 2}
    cohort = next(c for c in admin.cohorts() if c["cohort_id"] == "cohort-1")
    assert cohort["name"] == "High value"
    members = cohort.get("members", cohort.get("member_count"))
    assert (len(members) if isinstance(members, list) else members) == 1000


def test_a_locked_cohort_is_retried_then_reported_unavailable(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    client = make_client(
        retry={"max_attempts": 3, "max_elapsed_s": 10, "base_delay_s": 0.01, "max_delay_s": 0.05}
    )
    admin.add_partner("segment", "partner-key", "data-import-key")
    client.cohort_upsert("segment", "partner-key", "data-import-key", "cohort-2", "Locked one")
    admin.lock_cohort("segment", "cohort-2")
    with pytest.raises(BrazeUnavailableError) as raised:
        client.cohort_update_users(
            "segment", "partner-key", "data-import-key", "cohort-2", [{"user_ids": ["u1"]}]
        )
    assert raised.value.last_status == 423 and raised.value.attempts == 3


def test_delete_users_goes_50_a_request(client: BrazeClient, admin: EmulatorAdmin) -> None:
    create_users(client, 60)
    result = client.delete_users(
        external_ids=[f"u{n}" for n in range(55)], user_aliases=[UserAlias(alias_name="x", alias_label="y")]
    )
    # One kind of identifier per request (Braze refuses mixed kinds): 50 + 5 external ids, 1 alias;
    # "deleted" counts the deletions Braze queued.
    assert (result.deleted, result.requests) == (56, 3)
    assert admin.count() == 5


def test_new_aliases_attach_to_existing_users(client: BrazeClient, admin: EmulatorAdmin) -> None:
    create_users(client, 2)
    result = client.new_aliases(
        [
            NewAlias(alias_name="crm-0", alias_label="crm", external_id="u0"),
            {"alias_name": "anon-1", "alias_label": "web"},
        ]
    )
    assert (result.aliases_processed, result.requests) == (2, 1)
    u0 = admin.user("u0")
    assert u0 is not None and {"alias_name": "crm-0", "alias_label": "crm"} in u0["user_aliases"]
    assert admin.count() == 3
