"""From Currents files landing under currents/, through the template's routing (S3 notification ->
CurrentsQueue -> CurrentsFunction), to outbound/, the engagement profile table and the Lytics sink:
each event once, however often a file comes.

The stack is the template's own with EnableCurrents on (it is off by default) and LyticsUrl at a
Lytics sink on loopback; the function reads the Lytics token from the secret the stack created.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cdpbridge.currents import currents_key
from cdpbridge.engagement.store import DynamoDbEngagementStore
from cdpbridge_local.currents_data import Sample, avro_bytes, load_sample, synthetic_events
from cdpbridge_local.sinks import LyticsSinkServer
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FIXTURES = ROOT / ".." / "shared" / "fixtures" / "currents"
TOKEN = "e2e-lytics-token"
HOUR = datetime(2026, 12, 7, 8, tzinfo=UTC)
CONFIG = b"""
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""


@pytest.fixture(scope="module")
def lytics() -> Iterator[LyticsSinkServer]:
    with LyticsSinkServer(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def stack(lytics: LyticsSinkServer) -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        parameters={"EnableCurrents": "true", "LyticsUrl": lytics.url},
        # The value of the token secret the template creates (LyticsTokenSecret left empty).
        secret_values={"LyticsTokenSecretResource": TOKEN},
        failed_message_visibility_s=0,
    ) as running:
        running.put_object("config/currents.yaml", CONFIG)
        yield running


@pytest.fixture(scope="module")
def click() -> Sample:
    return load_sample(FIXTURES / "users.messages.email.Click.avro")


def outbound_lines(stack: LocalStack) -> list[dict]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="outbound/amperity/currents/")
    lines: list[dict] = []
    for item in listing.get("Contents", []):
        body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
        lines += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return lines


def engagement_items(stack: LocalStack) -> int:
    table = stack.physical_id("EngagementProfileTable")
    pages = stack.dynamodb_client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(page["Count"] for page in pages)


def test_the_template_wires_the_function_to_its_prefix_tables_and_secret(stack: LocalStack):
    environment = stack.functions["CurrentsFunction"].environment
    assert environment["CURRENTS_PREFIX"] == "currents/"
    assert environment["CURRENTS_STATE_TABLE"] == stack.physical_id("CurrentsStateTable")
    assert environment["ENGAGEMENT_PROFILE_TABLE"] == stack.physical_id("EngagementProfileTable")
    assert environment["LYTICS_TOKEN_SECRET"] == stack.physical_id("LyticsTokenSecretResource")
    secret = stack.secrets_client.get_secret_value(SecretId=environment["LYTICS_TOKEN_SECRET"])
    assert secret["SecretString"] == TOKEN


def test_a_dropped_currents_file_reaches_outbound_the_profiles_and_lytics_once(
    stack: LocalStack, lytics: LyticsSinkServer, click: Sample
):
    # Given Braze's own e-mail click file, and 300 clicks of 1,000 possible users in a file Braze
    # would write, at the keys Braze gives them under currents/
    real = FIXTURES / "users.messages.email.Click.avro"
    events = list(synthetic_events(click.record, 300))
    data = avro_bytes(click.schema, events)
    sample_key = currents_key(prefix="currents", event_type=click.event_type, hour=HOUR, name="sample.avro")
    key = currents_key(prefix="currents", event_type=click.event_type, hour=HOUR, name="a.avro")
    expected_ids = sorted([click.record["id"], *(event["id"] for event in events)])

    # When they land and the queues drain
    stack.put_object(sample_key, real.read_bytes())
    stack.put_object(key, data)
    records = stack.drain(timeout_s=180)

    # Then the Currents function ran on each file through its queue, without error
    ran = [record for record in records if record.function_id == "CurrentsFunction"]
    assert len(ran) == 2
    assert all(record.error is None for record in ran), [record.error for record in ran]
    # And every event is in outbound/ once, with its event type
    lines = outbound_lines(stack)
    assert sorted(line["id"] for line in lines) == expected_ids
    assert {line["event_type"] for line in lines} == {"users.messages.email.Click"}
    # And at the Lytics sink once, posted with the token from the stack's secret
    assert sorted(event["id"] for event in lytics.sink.events("braze_engagement")) == expected_ids
    assert lytics.sink.refused == 0
    # And each clicking user has an engagement profile counting their clicks
    users = {event["external_user_id"] for event in events}
    assert engagement_items(stack) == len(users | {click.record["external_user_id"]} - {None, ""})
    store = DynamoDbEngagementStore(stack.physical_id("EngagementProfileTable"), client=stack.dynamodb_client)
    profiles = store.profiles(sorted(users))
    assert sum(profile.by_kind.get("email_click", 0) for profile in profiles.values()) == 300

    # When the same events come again in another file, and the first file is delivered again
    again = currents_key(prefix="currents", event_type=click.event_type, hour=HOUR, name="b.avro")
    stack.put_object(again, data)
    stack.put_object(key, data)
    stack.drain(timeout_s=180)
    # Then nothing new is written, posted or counted
    assert len(outbound_lines(stack)) == len(expected_ids)
    assert len(lytics.sink.events()) == len(expected_ids)
    again_profiles = store.profiles(sorted(users))
    assert sum(profile.by_kind.get("email_click", 0) for profile in again_profiles.values()) == 300


def test_files_outside_the_prefix_or_suffix_never_reach_the_function(stack: LocalStack, click: Sample):
    # Given a Currents-shaped key outside the Currents prefix, and a non-Avro file inside it
    outside = currents_key(prefix="elsewhere", event_type=click.event_type, hour=HOUR, name="c.avro")
    stack.put_object(outside, avro_bytes(click.schema, [click.record]))
    stack.put_object("currents/README.txt", b"not a Currents file")
    # When the queues drain
    records = stack.drain(timeout_s=60)
    # Then the bucket's notification filter sent neither to the Currents queue
    assert [record for record in records if record.function_id == "CurrentsFunction"] == []
