"""functions/currents/app.py over moto server: the events/ sample's file routed to S3, the Lytics sink
and DynamoDB, once, however often the notification comes."""

from __future__ import annotations

import gzip
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cdpbridge.currents import CURRENTS_STATE_TABLE
from cdpbridge.currents.function import default_clients
from cdpbridge.engagement import ENGAGEMENT_PROFILE_TABLE, DynamoDbEngagementStore
from cdpbridge.state.tables import IDEMPOTENCY_TABLE, create_table
from cdpbridge_local.currents_data import avro_bytes, synthetic_events

from ..lambda_context import LambdaContextStub
from .conftest import CURRENTS_FIXTURES, LYTICS_TOKEN, ROOT

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "events" / "currents_s3_sqs.json"
CONFIG = """
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""


def load_handler() -> ModuleType:
    """functions/currents/app.py, imported under a name of its own (every handler is app.py)."""
    spec = importlib.util.spec_from_file_location("currents_app", ROOT / "functions" / "currents" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_event() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def notification_of(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(event["Records"][0]["body"])["Records"][0]


@pytest.fixture
def deployed(aws: str, lytics, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The sample's bucket with the config, the two tables, the Lytics secret and the environment."""
    suffix = uuid.uuid4().hex[:8]
    bucket = notification_of(sample_event())["s3"]["bucket"]["name"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.put_object(Bucket=bucket, Key="config/currents.yaml", Body=CONFIG.encode())
    dynamodb = boto3.client("dynamodb")
    create_table(dynamodb, CURRENTS_STATE_TABLE, f"currents-{suffix}")
    create_table(dynamodb, ENGAGEMENT_PROFILE_TABLE, f"engagement-{suffix}")
    create_table(dynamodb, IDEMPOTENCY_TABLE, f"idempotency-{suffix}")
    boto3.client("secretsmanager").create_secret(Name=f"lytics-{suffix}", SecretString=LYTICS_TOKEN)
    environment = {
        "DROP_BUCKET": bucket,
        "CURRENTS_STATE_TABLE": f"currents-{suffix}",
        "ENGAGEMENT_PROFILE_TABLE": f"engagement-{suffix}",
        "LYTICS_TOKEN_SECRET": f"lytics-{suffix}",
        "LYTICS_URL": lytics.url,
        "IDEMPOTENCY_TABLE": f"idempotency-{suffix}",
        "AWS_LAMBDA_FUNCTION_NAME": "CurrentsFunction",
        "POWERTOOLS_SERVICE_NAME": "braze-cdp-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "BrazeCdpBridgeTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # The function keeps its clients per container; each test is a fresh container.
    default_clients.cache_clear()
    yield environment
    default_clients.cache_clear()


def invoke(handler: ModuleType, event: dict[str, Any]) -> Any:
    return handler.lambda_handler(event, LambdaContextStub("CurrentsFunction", time.time() + 300))


def outputs(bucket: str) -> dict[str, list[dict[str, Any]]]:
    s3 = boto3.client("s3")
    found: dict[str, list[dict[str, Any]]] = {}
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="outbound/").get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found[item["Key"]] = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return found


def test_the_sample_notification_routes_its_file_once(deployed, lytics):
    # Given the file the sample announces, landed at its (decoded) key
    event = sample_event()
    key = unquote_plus(notification_of(event)["s3"]["object"]["key"])
    bucket = deployed["DROP_BUCKET"]
    fixture = CURRENTS_FIXTURES / "users.messages.email.Open.avro"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=fixture.read_bytes())
    handler = load_handler()

    # When the function gets the sample
    response = invoke(handler, event)

    # Then the event is in outbound/ and at the Lytics sink, once
    assert response == {"batchItemFailures": []}
    name = key.rsplit("/", 1)[1].removesuffix(".avro")
    expected_key = f"outbound/amperity/currents/users.messages.email.Open/2026-12-07/{name}.jsonl.gz"
    written = outputs(bucket)
    assert list(written) == [expected_key]
    (line,) = written[expected_key]
    assert line["event_type"] == "users.messages.email.Open"
    assert line["id"] == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    (posted,) = lytics.sink.events("braze_engagement")
    assert posted["id"] == line["id"] and posted["event_type"] == "users.messages.email.Open"

    # When the same notification comes again (SQS delivers at least once)
    assert invoke(handler, event) == {"batchItemFailures": []}
    # Then nothing new was written or posted
    assert outputs(bucket) == written
    assert len(lytics.sink.events()) == 1


def test_engagement_reaches_the_dynamodb_profiles_and_machine_opens_do_not(deployed, samples):
    # Given a file of 40 e-mail opens, a quarter of them machine opens, under a Currents key
    event = sample_event()
    key = unquote_plus(notification_of(event)["s3"]["object"]["key"])
    opens = next(sample for sample in samples if sample.event_type == "users.messages.email.Open")
    events = list(synthetic_events(opens.record, 40, users=5))
    boto3.client("s3").put_object(
        Bucket=deployed["DROP_BUCKET"], Key=key, Body=avro_bytes(opens.schema, events)
    )

    assert invoke(load_handler(), event) == {"batchItemFailures": []}

    store = DynamoDbEngagementStore(deployed["ENGAGEMENT_PROFILE_TABLE"], client=boto3.client("dynamodb"))
    profiles = store.profiles([f"user-{n:07d}" for n in range(5)])
    human = [e for e in events if e["machine_open"] != "true"]
    assert sum(profile.by_kind.get("email_open", 0) for profile in profiles.values()) == len(human) == 30


def test_s3_test_events_and_keys_outside_the_layout_route_nothing(deployed):
    handler = load_handler()
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": deployed["DROP_BUCKET"]}
    event = sample_event()
    event["Records"][0]["body"] = json.dumps(test_event)
    assert invoke(handler, event) == {"batchItemFailures": []}

    stray = sample_event()
    body = json.loads(stray["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = "currents/misplaced.avro"
    stray["Records"][0]["body"] = json.dumps(body)
    boto3.client("s3").put_object(
        Bucket=deployed["DROP_BUCKET"],
        Key="currents/misplaced.avro",
        Body=(CURRENTS_FIXTURES / "users.behaviors.Purchase.avro").read_bytes(),
    )
    # A file that can never be routed is reported and dropped, not retried for ever
    assert invoke(handler, stray) == {"batchItemFailures": []}
    assert outputs(deployed["DROP_BUCKET"]) == {}


def test_a_delivery_while_the_same_file_is_being_routed_is_retried_not_routed_twice(
    deployed, lytics, samples
):
    # Given a file of 2,000 events whose first read is slow
    event = sample_event()
    key = unquote_plus(notification_of(event)["s3"]["object"]["key"])
    bucket = deployed["DROP_BUCKET"]
    # (the sample's key names e-mail opens, so the file holds opens)
    opens = next(sample for sample in samples if sample.event_type == "users.messages.email.Open")
    events = list(synthetic_events(opens.record, 2000))
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=avro_bytes(opens.schema, events))
    first_handler, second_handler = load_handler(), load_handler()
    s3 = default_clients().s3
    started = threading.Event()
    release = threading.Event()

    def slow_first_read(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key and "Range" in params and not started.is_set():
            started.set()
            release.wait(30)

    s3.meta.events.register("before-parameter-build.s3.GetObject", slow_first_read)
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(first=invoke(first_handler, event)))
    first.start()
    try:
        assert started.wait(30)
        # When the same notification is handled while the first is still routing the file
        with pytest.raises(BatchProcessingError) as second:
            invoke(second_handler, event)
    finally:
        release.set()
        first.join(60)
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", slow_first_read)

    # Then the second fails its message (SQS delivers it again later), having routed nothing
    assert "IdempotencyAlreadyInProgressError" in str(second.value)
    assert results["first"] == {"batchItemFailures": []}
    (lines,) = outputs(bucket).values()
    assert sorted(line["id"] for line in lines) == sorted(e["id"] for e in events)
    assert len(lytics.sink.events()) == 2000
    # And its redelivery finds the file routed
    assert invoke(second_handler, event) == {"batchItemFailures": []}
    assert len(lytics.sink.events()) == 2000
