"""The relay and the cohort sync over real HTTP: batches of queued calls into the emulator."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.integrations.segment.cohorts import CohortCredentials, collect, sync_cohorts
from cdpbridge.integrations.segment.options import segment_options
from cdpbridge.integrations.segment.relay import QueuedMessage, RelayServices, relay_batch
from cdpbridge.mapping import load_mapping
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore, iter_rejects
from cdpbridge.sync.engine import EngineOptions
from cdpbridge_local.segment_traffic import ENGAGE_CONFIG_YAML, EngageTraffic

from ..emulator_admin import API_KEY, Braze

pytestmark = pytest.mark.integration

CONFIG = load_mapping(ENGAGE_CONFIG_YAML)
PARTNER = {"partner": "segment", "partner_api_key": "pk", "data_import_key": "dik"}


def services(workdir: Path, braze_url: str) -> RelayServices:
    settings = BrazeSettings(
        rest_endpoint=braze_url, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)
    )
    state = workdir / "state.sqlite3"
    return RelayServices(
        client=BrazeClient(settings, API_KEY),
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        artifacts=LocalArtifactStore(workdir / "reports"),
        options=EngineOptions(workspace="w", track_cap=settings.track_cap),
        reports_prefix="",
    )


def messages(calls: list[dict[str, object]], per_message: int, start: int = 0) -> list[QueuedMessage]:
    return [
        QueuedMessage(f"sqs-{start + index}", orjson.dumps(calls[index : index + per_message]).decode())
        for index in range(0, len(calls), per_message)
    ]


def test_batches_apply_each_call_once_and_the_latest_value_whatever_the_batch(
    braze: Braze, tmp_path: Path
) -> None:
    traffic = EngageTraffic("relay-")
    relay = services(tmp_path, braze.url)
    calls = traffic.calls()
    # Given the traffic split over three batches, the last one delivering the first again
    first, second = calls[:6], calls[6:]
    outcomes = [
        relay_batch(messages(first, 2), CONFIG, relay, batch_id="b1"),
        relay_batch(messages(second, 3, start=10), CONFIG, relay, batch_id="b2"),
        relay_batch(messages(first, 6, start=20), CONFIG, relay, batch_id="b3"),
    ]
    # Then nothing is to be delivered again, and Braze holds what the traffic means
    assert [outcome.failed_message_ids for outcome in outcomes] == [[], [], []]
    for who, expected in traffic.expected_attributes().items():
        if who.startswith("alias:"):
            continue
        held = braze.user(who)
        assert held is not None
        assert held["custom_attributes"] == expected
        assert sorted(event["name"] for event in held["events"]) == traffic.expected_events()[who]
    # The repeated batch's event was recognised by its messageId (its second copy within the batch too)
    assert outcomes[2].counters.events_already_sent == 1
    assert outcomes[2].counters.skipped_by_reason == {"duplicate messageId": 1}
    assert outcomes[2].counters.events_sent == 0


def test_an_anonymous_call_without_alias_is_a_reject_in_the_batch_report(
    braze: Braze, tmp_path: Path
) -> None:
    relay = services(tmp_path, braze.url)
    call = {"type": "identify", "anonymousId": "a", "timestamp": "2026-12-01T09:00:00Z", "traits": {"x": 1}}
    outcome = relay_batch(
        [QueuedMessage("sqs-1", orjson.dumps([call]).decode()), QueuedMessage("sqs-2", "not json")],
        load_mapping("version: 1\nintegration: segment\nsource: {format: jsonl}\n"),
        relay,
        batch_id="b",
    )
    assert outcome.failed_message_ids == []
    assert outcome.rejects_location is not None
    rejects = list(iter_rejects(Path(outcome.rejects_location).read_bytes()))
    assert [(row["column"], row["reason"]) for row in rejects] == [
        ("userId", "no userId (anonymous call)"),
        ("", "the queue message is not JSON"),
    ]


def test_calls_braze_cannot_take_are_delivered_again(braze: Braze, tmp_path: Path) -> None:
    relay = services(tmp_path, braze.url)
    # Given Braze failing every request (the client gives up after its retries)
    braze.configure(faults={"status_500": 1.0})
    try:
        outcome = relay_batch(messages(EngageTraffic("down-").calls()[:4], 2), CONFIG, relay, batch_id="b")
    finally:
        braze.configure(faults={"status_500": 0.0})
    assert outcome.failed_message_ids == ["sqs-0", "sqs-2"]


def test_cohort_membership_follows_the_latest_change(braze: Braze, tmp_path: Path) -> None:
    traffic = EngageTraffic("cohort-")
    relay = services(tmp_path, braze.url)
    braze.session.post(f"{braze.url}/_emulator/partners", json=PARTNER, timeout=10).raise_for_status()
    relay_batch(messages(traffic.calls(), 50), CONFIG, relay, batch_id="b")
    options = segment_options(CONFIG)
    assert relay.client is not None
    result = sync_cohorts(
        collect(traffic.calls(), options), relay.client, CohortCredentials("pk", "dik"), options
    )
    assert (result.cohorts, result.requests) == (1, 2)
    cohorts = braze.session.get(f"{braze.url}/_emulator/cohorts", timeout=10).json()["cohorts"]
    (cohort,) = [item for item in cohorts if item["cohort_id"] == traffic.cohort_id]
    assert cohort["name"] == "dormant_shopper"
    members = {m["external_id"] or "alias:" + m["user_aliases"][0]["alias_name"] for m in cohort["members"]}
    assert members == traffic.expected_cohort_members()


def test_a_call_braze_took_without_answering_does_not_hide_the_next_value(
    braze: Braze, tmp_path: Path
) -> None:
    relay = services(tmp_path, braze.url)

    def identify(message: str, time: str, plan: str) -> QueuedMessage:
        call = {
            "type": "identify",
            "messageId": message,
            "userId": "lost-answer",
            "timestamp": f"2026-12-01T{time}:00.000Z",
            "traits": {"plan": plan},
        }
        return QueuedMessage(f"sqs-{message}", orjson.dumps([call]).decode())

    enterprise = identify("m1", "00:24", "enterprise")
    team = identify("m2", "00:34", "team")
    latest = identify("m3", "02:20", "enterprise")
    assert relay_batch([enterprise], CONFIG, relay, batch_id="b1").failed_message_ids == []
    # Given Braze applies team, then drops every connection before answering (the retries too)
    braze.configure(faults={"apply_then_drop": 1.0})
    try:
        assert relay_batch([team], CONFIG, relay, batch_id="b2").failed_message_ids == ["sqs-m2"]
    finally:
        braze.configure(faults={"apply_then_drop": 0.0})
    assert plan_held(braze) == "team"
    # When the newer enterprise comes, then team delivered again
    newer = relay_batch([latest], CONFIG, relay, batch_id="b3")
    again = relay_batch([team], CONFIG, relay, batch_id="b4")
    # Then enterprise was sent (not skipped against what the state held before team), team dropped
    # as older, and Braze ends with the newest call's value
    assert (newer.failed_message_ids, again.failed_message_ids) == ([], [])
    assert newer.counters.attributes_sent == 1
    assert again.counters.attributes_superseded == 1
    assert plan_held(braze) == "enterprise"


def plan_held(braze: Braze) -> object:
    held = braze.user("lost-answer")
    assert held is not None
    return held["custom_attributes"].get("plan")
