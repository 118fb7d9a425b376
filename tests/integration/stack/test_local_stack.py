"""The local stack runs a template's functions as Lambda would: routing, batches, retries, schedules.

Uses tests/fixtures/stack/template.yaml, whose recorder handlers write what they receive to
s3://<drop bucket>/received/<request id>.json, and one stack shared by the whole module.
"""

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from cdpbridge_local.stack import (
    LOCAL_API_KEY,
    DrainTimeoutError,
    FunctionError,
    InvocationRecord,
    LocalStack,
    UnroutableEventError,
)

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "stack" / "template.yaml"
STACK = "runner-test"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(FIXTURE, stack_name=STACK, with_emulator=False) as running:
        yield running


def recorded(stack: LocalStack, record: InvocationRecord) -> dict[str, Any]:
    """What the handler wrote about this invocation."""
    body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=f"received/{record.request_id}.json")[
        "Body"
    ]
    document: dict[str, Any] = json.loads(body.read())
    return document


def send(stack: LocalStack, queue_id: str, body: dict[str, Any]) -> str:
    response = stack.sqs_client.send_message(
        QueueUrl=stack.physical_id(queue_id), MessageBody=json.dumps(body)
    )
    message_id: str = response["MessageId"]
    return message_id


def s3_keys(record: InvocationRecord) -> list[str]:
    return [
        unquote_plus(s3_record["s3"]["object"]["key"])
        for sqs_message in record.event["Records"]
        for s3_record in json.loads(sqs_message["body"])["Records"]
    ]


def test_the_templates_resources_exist_in_moto_as_declared(stack: LocalStack):
    # Then the bucket has the template's name and its prefix/suffix notifications
    assert stack.drop_bucket == f"{STACK}-drop"
    notifications = stack.s3_client.get_bucket_notification_configuration(Bucket=stack.drop_bucket)
    rules = [entry["Filter"]["Key"]["FilterRules"] for entry in notifications["QueueConfigurations"]]
    assert [{"Name": "prefix", "Value": "inbound/a/"}] in rules
    assert [{"Name": "prefix", "Value": "inbound/b/"}, {"Name": "suffix", "Value": ".csv"}] in rules
    # And queues carry their visibility timeout and redrive policy
    attributes = stack.sqs_client.get_queue_attributes(
        QueueUrl=stack.physical_id("RecorderQueue"), AttributeNames=["All"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "1"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": stack.resource("RecorderDeadLetterQueue").attributes["Arn"],
        "maxReceiveCount": 2,
    }
    assert stack.resource("PlainQueue").attributes["QueueName"] == f"{STACK}-plain"
    # And the table has its keys and TTL, the created secret the local API key
    table = stack.physical_id("StateTable")
    description = stack.dynamodb_client.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    ttl = stack.dynamodb_client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    secret = stack.secrets_client.get_secret_value(SecretId=stack.physical_id("ApiKeySecret"))
    assert secret["SecretString"] == LOCAL_API_KEY
    # And outputs resolve against the created resources
    assert stack.outputs() == {"Bucket": f"{STACK}-drop", "ScheduledName": f"{STACK}-ScheduledFunction"}


def test_a_file_landing_under_a_prefix_reaches_the_function_of_that_prefix(stack: LocalStack):
    # Given a file whose name needs URL-encoding
    key = f"inbound/a/{uuid.uuid4().hex} customers (1).csv"

    # When it lands and the queues are drained
    stack.put_object(key, "external_id\nu-1\n")
    records = stack.drain(timeout_s=30)

    # Then the recorder function received the S3 notification for exactly that key
    assert [record.function_id for record in records] == ["RecorderFunction"]
    record = records[0]
    assert record.ok
    assert record.trigger == "sqs"
    assert record.source == stack.resource("RecorderQueue").attributes["Arn"]
    assert s3_keys(record) == [key]
    assert record.event["Records"][0]["eventSource"] == "aws:sqs"
    # And the handler ran with the template's environment, its layer, and Lambda's context
    seen = recorded(stack, record)
    assert seen["role"] == "recorder"
    assert seen["shared"] == "from-function"  # the function's value wins over Globals
    assert seen["greeting"] == "hello"  # from Globals, resolved from a parameter default
    assert seen["layer"] == "recorder-support-layer"
    assert seen["function_name"] == f"{STACK}-RecorderFunction"
    assert seen["memory_limit_in_mb"] == "256"
    assert 0 < seen["remaining_ms"] <= 5000
    assert seen["aws_request_id"] == record.request_id


def test_a_suffix_filter_keeps_other_files_away(stack: LocalStack):
    # Given two files under the plain prefix, one without the .csv suffix
    name = uuid.uuid4().hex
    stack.put_object(f"inbound/b/{name}.txt", "ignored")
    stack.put_object(f"inbound/b/{name}.csv", "taken")

    # When drained
    records = stack.drain(timeout_s=30)

    # Then only the .csv reached the plain function
    assert [(record.function_id, s3_keys(record)) for record in records] == [
        ("PlainFunction", [f"inbound/b/{name}.csv"])
    ]


def test_a_reported_item_failure_is_retried_alone_until_it_moves_to_the_dead_letter_queue(stack: LocalStack):
    # Given a batch of three messages, one of which the function reports as failed
    good = [send(stack, "RecorderQueue", {"n": 1}), send(stack, "RecorderQueue", {"n": 2})]
    bad = send(stack, "RecorderQueue", {"fail": True})

    # When drained
    records = stack.drain(timeout_s=30)

    # Then the first invocation got all three and only the failed one came back, up to maxReceiveCount
    assert set(records[0].message_ids) == {*good, bad}
    assert records[0].failed_message_ids == (bad,)
    assert [record.message_ids for record in records[1:]] == [(bad,)]
    deliveries = [message_id for record in records for message_id in record.message_ids]
    assert deliveries.count(bad) == 2
    assert all(deliveries.count(message_id) == 1 for message_id in good)
    # And it now waits in the dead-letter queue
    assert [message["MessageId"] for message in stack.peek_messages("RecorderDeadLetterQueue")] == [bad]
    assert [message["MessageId"] for message in stack.take_messages("RecorderDeadLetterQueue")] == [bad]


@pytest.mark.parametrize(
    ("steering", "expected_log"),
    [({"raise": True}, None), ({"bad_identifier": True}, "[local stack] invalid itemIdentifier")],
)
def test_an_error_or_an_invalid_failure_report_retries_the_whole_batch(
    stack: LocalStack, steering, expected_log
):
    # Given a good message and one that makes the handler raise or report an unknown identifier
    good = send(stack, "RecorderQueue", {"n": 1})
    bad = send(stack, "RecorderQueue", steering)

    # When drained
    records = stack.drain(timeout_s=30)

    # Then both messages failed together, twice, and both went to the dead-letter queue
    assert len(records) == 2
    assert all(set(record.failed_message_ids) == {good, bad} for record in records)
    if expected_log is None:
        assert records[0].error is not None
        assert records[0].error["errorType"] == "RuntimeError"
    else:
        assert records[0].error is None
        assert expected_log in records[0].logs
    dead = {message["MessageId"] for message in stack.take_messages("RecorderDeadLetterQueue")}
    assert dead == {good, bad}


def test_messages_a_function_sends_to_its_own_queue_are_delivered_in_the_same_drain(stack: LocalStack):
    # Given a message asking for two follow-ups (like a continuation of a long run)
    send(stack, "RecorderQueue", {"continue": 2})

    # When drained
    records = stack.drain(timeout_s=30)

    # Then the original and both continuations ran
    bodies = [json.loads(record.event["Records"][0]["body"]) for record in records]
    assert bodies == [{"continue": 2}, {"continue": 1}, {"continue": 0}]
    assert all(record.ok for record in records)


def test_a_drain_that_cannot_empty_the_queues_times_out_with_what_is_pending(stack: LocalStack):
    # Given a message that always fails on a queue without a dead-letter queue
    send(stack, "PlainQueue", {"raise": True})
    try:
        # When / Then the drain gives up after its time and says what is left
        with pytest.raises(DrainTimeoutError) as raised:
            stack.drain(timeout_s=2.5)
        assert f"{STACK}-plain" in raised.value.pending
        assert raised.value.records
        assert all(record.error is not None for record in raised.value.records)
    finally:
        stack.take_messages("PlainQueue", wait_s=5)


def test_firing_a_schedule_delivers_the_scheduled_event(stack: LocalStack):
    # When each schedule of the scheduled function fires
    every_minute = stack.fire_schedule("ScheduledFunction", "EveryMinute")
    nightly = stack.fire_schedule("ScheduledFunction", "Nightly")

    # Then the EventBridge rule delivered its scheduled-event notification
    assert len(every_minute) == 1
    assert every_minute[0].response == {"ran": "Scheduled Event"}
    event = every_minute[0].event
    assert event["source"] == "aws.events"
    assert event["resources"] == [
        f"arn:aws:events:us-east-1:123456789012:rule/{STACK}-ScheduledFunctionEveryMinute"
    ]
    # And the Scheduler schedule delivered its Input with the scheduled time filled in
    assert nightly[0].response == {"ran": "nightly"}
    assert nightly[0].event["job"] == "nightly"
    assert nightly[0].event["at"].endswith("Z")


def test_firing_needs_the_schedules_name_when_a_function_has_several(stack: LocalStack):
    with pytest.raises(Exception, match="EveryMinute, Nightly"):
        stack.fire_schedule("ScheduledFunction")


def test_a_direct_invocation_returns_the_response_or_raises_the_functions_error(stack: LocalStack):
    # When a working function is invoked
    response = stack.invoke("PlainFunction", {"Records": [{"messageId": "m-1", "body": "{}"}]})

    # Then its response comes back
    assert response == {"batchItemFailures": []}
    # And a function whose module does not import fails the way Lambda reports it
    with pytest.raises(FunctionError) as raised:
        stack.invoke("BrokenImportFunction", {})
    assert raised.value.record.error is not None
    assert raised.value.record.error["errorType"] == "Runtime.ImportModuleError"


def test_events_are_routed_to_the_function_a_deployed_stack_would_hand_them_to(stack: LocalStack):
    # Given an SQS event carrying an S3 notification for a .csv under inbound/b/
    s3_body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": stack.drop_bucket}, "object": {"key": "inbound/b/some+file.csv"}},
            }
        ]
    }
    sqs_event = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "body": json.dumps(s3_body),
                "eventSourceARN": "arn:aws:sqs:x:1:elsewhere",
            }
        ]
    }
    scheduled = {
        "detail-type": "Scheduled Event",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{STACK}-ScheduledFunctionEveryMinute"],
    }

    # When routed, Then each goes where the template's triggers send it
    assert [(route.function_id, route.queue_id) for route in stack.route_event(sqs_event)] == [
        ("PlainFunction", "PlainQueue")
    ]
    assert [(route.function_id, route.queue_id) for route in stack.route_event(scheduled)] == [
        ("ScheduledFunction", None)
    ]
    # And delivering the SQS event sends it through the queue to the function
    records = stack.deliver_event(sqs_event, timeout_s=30)
    assert [record.function_id for record in records] == ["PlainFunction"]
    assert records[0].event["Records"][0]["body"] == json.dumps(s3_body)
    # And an event no trigger matches is refused
    with pytest.raises(UnroutableEventError):
        stack.route_event(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"object": {"key": "elsewhere/file.csv"}},
                    }
                ]
            }
        )


def test_in_the_background_files_are_delivered_without_a_drain(stack: LocalStack):
    # Given the background dispatcher (as `cdpbridge local up` runs it)
    before = len(stack.invocations)
    stack.start_background(dispatch=True, clock=False)
    try:
        # When a file lands
        key = f"inbound/a/{uuid.uuid4().hex}.csv"
        stack.put_object(key, "x")
        # Then an invocation for it follows (waiting at most 20 s for it)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            record.trigger == "sqs" and s3_keys(record) == [key] for record in stack.invocations[before:]
        ):
            time.sleep(0.05)
    finally:
        stack.stop_background()
    assert any(record.trigger == "sqs" and s3_keys(record) == [key] for record in stack.invocations[before:])
