"""Segment Engage through the template's wiring: the same traffic as a file from Segment's S3
destination and through the signed webhook ends as the same profiles, events and cohort in Braze."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cdpbridge_local.segment_traffic import ALIAS_LABEL, ENGAGE_CONFIG_YAML, EngageTraffic
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
WEBHOOK_SECRET = "e2e-shared-secret"
PARTNER = {"partner": "segment", "partner_api_key": "partner-key-e2e", "data_import_key": "import-key-e2e"}
COHORT_SECRET = orjson.dumps(
    {"partner_api_key": PARTNER["partner_api_key"], "data_import_key": PARTNER["data_import_key"]}
).decode()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        stack_name="segment-e2e",
        secret_values={"SegmentWebhookSecret": WEBHOOK_SECRET, "SegmentCohortSecret": COHORT_SECRET},
        failed_message_visibility_s=0,
    ) as running:
        running.put_object("config/segment.yaml", ENGAGE_CONFIG_YAML)
        emulator(running, "POST", "/partners", PARTNER)
        yield running


def emulator(stack: LocalStack, method: str, path: str, body: Any = None, **params: str) -> Any:
    assert stack.emulator is not None
    url = f"{stack.emulator.url}/_emulator{path}"
    response = requests.request(method, url, json=body, params=params, timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def profile(stack: LocalStack, who: str) -> dict[str, Any] | None:
    if who.startswith("alias:"):
        return emulator(stack, "GET", "/users/by-alias", label=ALIAS_LABEL, name=who.removeprefix("alias:"))
    return emulator(stack, "GET", f"/users/{who}")


def braze_view(stack: LocalStack, traffic: EngageTraffic) -> tuple[dict[str, Any], dict[str, Any]]:
    attributes: dict[str, Any] = {}
    events: dict[str, Any] = {}
    for who in traffic.expected_attributes():
        held = profile(stack, who)
        assert held is not None, f"{who} is not in Braze"
        attributes[who] = held["custom_attributes"]
        events[who] = sorted(event["name"] for event in held["events"])
    return attributes, events


def cohort_members(stack: LocalStack, cohort_id: str) -> set[str] | None:
    for cohort in emulator(stack, "GET", "/cohorts")["cohorts"]:
        if cohort["cohort_id"] == cohort_id:
            return {
                member["external_id"] or f"alias:{member['user_aliases'][0]['alias_name']}"
                for member in cohort["members"]
            }
    return None


def post(url: str, body: bytes, signature: str | None) -> requests.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-signature"] = signature
    return requests.post(url, data=body, headers=headers, timeout=30)


def signed(body: bytes) -> str:
    return hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()


def test_a_segment_log_file_ends_as_the_expected_profiles_events_and_cohort(stack: LocalStack) -> None:
    # Given Engage traffic as Segment's S3 destination writes it
    traffic = EngageTraffic("file-")
    stack.put_object("inbound/segment/segment-logs/src_1/1796083200000/1796115900-a1.gz", traffic.jsonl_gz())

    # When the queues drain
    stack.drain(timeout_s=120)

    # Then Braze holds the latest value of each trait and each event once, and the cohort the audience
    attributes, events = braze_view(stack, traffic)
    assert attributes == traffic.expected_attributes()
    assert events == traffic.expected_events()
    assert cohort_members(stack, traffic.cohort_id) == traffic.expected_cohort_members()


def test_the_same_traffic_through_the_webhook_ends_the_same(stack: LocalStack) -> None:
    # Given the same traffic, sent the way the Webhooks destination sends it: some calls batched,
    # most alone, newer before older, a call and a whole request delivered twice
    traffic = EngageTraffic("hook-")
    calls = traffic.calls()
    url = stack.function_urls["SegmentWebhookFunction"]
    requests_sent = [orjson.dumps(calls[:3]), *(orjson.dumps(call) for call in calls[3:])]
    requests_sent.append(requests_sent[0])

    # When each is posted with its signature and the queues drain
    for body in requests_sent:
        response = post(url, body, signed(body))
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "queued"
    stack.drain(timeout_s=120)

    # Then Braze ends as it did from the file
    attributes, events = braze_view(stack, traffic)
    assert attributes == traffic.expected_attributes()
    assert events == traffic.expected_events()
    assert cohort_members(stack, traffic.cohort_id) == traffic.expected_cohort_members()


@pytest.mark.parametrize("signature", [None, "", "0" * 40, "wrong"])
def test_a_missing_or_wrong_signature_is_401_and_changes_nothing(
    stack: LocalStack, signature: str | None
) -> None:
    # Given a call for a user Braze does not know
    traffic = EngageTraffic(f"refused-{signature}-")
    body = orjson.dumps(traffic.calls()[0])
    before = emulator(stack, "GET", "/stats")["requests"]

    # When it is posted without the right signature
    response = post(stack.function_urls["SegmentWebhookFunction"], body, signature)
    stack.drain(timeout_s=30)

    # Then it is refused and nothing reached Braze
    assert response.status_code == 401
    assert response.json() == {"message": "missing or wrong X-Signature"}
    assert profile(stack, traffic.user(1)) is None
    assert emulator(stack, "GET", "/stats")["requests"] == before


def test_a_body_over_the_configured_size_is_413(stack: LocalStack) -> None:
    body = orjson.dumps([EngageTraffic("big-").calls()[0]] * 3000)
    response = post(stack.function_urls["SegmentWebhookFunction"], body, signed(body))
    assert response.status_code == 413
