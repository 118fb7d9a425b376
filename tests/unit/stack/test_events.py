"""Events and outcomes shaped as Lambda shapes them."""

import json
from datetime import UTC, datetime

from cdpbridge_local.stack.events import (
    async_failure_record,
    is_s3_test_event,
    schedule_event,
    sqs_batch_outcome,
    sqs_record,
)
from cdpbridge_local.stack.functions import ScheduleTrigger

IDS = ("m1", "m2", "m3")


def test_without_report_batch_item_failures_success_deletes_all_and_an_error_keeps_all():
    assert sqs_batch_outcome(IDS, None, errored=False, report_batch_item_failures=False).succeeded == IDS
    failed = sqs_batch_outcome(IDS, {"batchItemFailures": [{"itemIdentifier": "m1"}]}, True, False)
    assert failed.failed == IDS
    assert failed.succeeded == ()


def test_listed_items_fail_and_the_rest_succeed():
    outcome = sqs_batch_outcome(IDS, {"batchItemFailures": [{"itemIdentifier": "m2"}]}, False, True)
    assert outcome.succeeded == ("m1", "m3")
    assert outcome.failed == ("m2",)
    assert outcome.reason is None


def test_empty_or_null_responses_are_complete_success():
    for response in (None, {}, "", {"batchItemFailures": []}, {"batchItemFailures": None}):
        assert sqs_batch_outcome(IDS, response, False, True).succeeded == IDS


def test_an_unknown_or_empty_identifier_fails_the_whole_batch():
    for identifier in ("nope", "", None):
        outcome = sqs_batch_outcome(IDS, {"batchItemFailures": [{"itemIdentifier": identifier}]}, False, True)
        assert outcome.failed == IDS
        assert outcome.reason is not None
        assert "whole batch" in outcome.reason


def test_sqs_record_has_lambdas_fields_and_base64_binary_attributes():
    # Given a ReceiveMessage result with system and message attributes
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "s", "Policy": "x"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "a"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }

    # When it becomes an event record
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    # Then it looks like Lambda's record
    assert record["messageId"] == "id-1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert record["attributes"] == {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "s"}
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "a",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["raw"]["binaryValue"] == "AAE="


def trigger(kind: str, event_input: str | None) -> ScheduleTrigger:
    return ScheduleTrigger(
        function_id="Fn",
        event_name="Tick",
        kind=kind,
        expression="rate(1 minute)",
        name="stack-FnTick",
        arn="arn:aws:events:us-east-1:123456789012:rule/stack-FnTick",
        input=event_input,
    )


def test_a_schedule_without_input_delivers_the_scheduled_event_notification():
    event = schedule_event(
        trigger("Schedule", None), "123456789012", "us-east-1", datetime(2024, 5, 6, tzinfo=UTC)
    )
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2024-05-06T00:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/stack-FnTick"]
    assert event["detail"] == {}


def test_a_scheduler_input_gets_its_context_attributes_filled_in():
    event_input = '{"job": "x", "at": "<aws.scheduler.scheduled-time>"}'
    event = schedule_event(
        trigger("ScheduleV2", event_input), "1", "us-east-1", datetime(2024, 5, 6, 3, tzinfo=UTC)
    )
    assert event == {"job": "x", "at": "2024-05-06T03:00:00Z"}


def test_async_failure_record_carries_request_and_error():
    record = async_failure_record(
        function_arn="arn:aws:lambda:us-east-1:1:function:f",
        request_id="r",
        request_payload={"a": 1},
        error={"errorType": "ValueError", "errorMessage": "bad"},
        attempts=3,
    )
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"a": 1}
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_s3_test_events_are_recognised():
    assert is_s3_test_event(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    assert not is_s3_test_event(json.dumps({"Records": []}))
    assert not is_s3_test_event("not json")
