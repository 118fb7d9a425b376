"""The events Lambda hands to functions (SQS batches, schedules, async failure records), built as AWS does."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdpbridge_local.stack.functions import ScheduleTrigger

# The message attributes Lambda copies into an SQS record's "attributes".
_SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event from a ReceiveMessage result."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {name: attributes[name] for name in _SQS_RECORD_ATTRIBUTES if name in attributes},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [
            base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])
        ],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    succeeded: tuple[str, ...]
    failed: tuple[str, ...]
    # Why the whole batch counts as failed although the function returned, if it does.
    reason: str | None = None


def sqs_batch_outcome(
    message_ids: Sequence[str], response: Any, errored: bool, report_batch_item_failures: bool
) -> BatchOutcome:
    """Which messages Lambda deletes after an invocation, following its partial-batch rules."""
    all_ids = tuple(message_ids)
    if errored:
        return BatchOutcome(succeeded=(), failed=all_ids)
    if not report_batch_item_failures:
        return BatchOutcome(succeeded=all_ids, failed=())
    # Lambda treats an empty or null response, or an empty list, as complete success.
    if response is None or response in ({}, ""):
        return BatchOutcome(succeeded=all_ids, failed=())
    if not isinstance(response, dict):
        return BatchOutcome(succeeded=all_ids, failed=())
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return BatchOutcome(succeeded=all_ids, failed=())
    if not isinstance(failures, list):
        return BatchOutcome((), all_ids, "batchItemFailures is not a list: the whole batch is retried")
    failed: list[str] = []
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        # An empty, null or unknown identifier makes Lambda retry the whole batch.
        if not isinstance(identifier, str) or identifier not in all_ids:
            reason = f"invalid itemIdentifier {identifier!r}: the whole batch is retried"
            return BatchOutcome(succeeded=(), failed=all_ids, reason=reason)
        failed.append(identifier)
    failed_set = set(failed)
    return BatchOutcome(
        succeeded=tuple(i for i in all_ids if i not in failed_set),
        failed=tuple(i for i in all_ids if i in failed_set),
    )


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_event(trigger: ScheduleTrigger, account_id: str, region: str, fired_at: datetime) -> Any:
    """The payload a schedule delivers: its Input if it has one, else the scheduled-event notification."""
    if trigger.input is not None:
        text = trigger.input
        if trigger.kind == "ScheduleV2":
            # EventBridge Scheduler fills in its context attributes.
            text = (
                text.replace("<aws.scheduler.schedule-arn>", trigger.arn)
                .replace("<aws.scheduler.scheduled-time>", _iso_z(fired_at))
                .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
                .replace("<aws.scheduler.attempt-number>", "1")
            )
        return json.loads(text)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if trigger.kind == "ScheduleV2" else "aws.events",
        "account": account_id,
        "time": _iso_z(fired_at),
        "region": region,
        "resources": [trigger.arn],
        "detail": {},
    }


def async_failure_record(
    *,
    function_arn: str,
    request_id: str,
    request_payload: Any,
    error: dict[str, Any] | None,
    attempts: int,
) -> dict[str, Any]:
    """What Lambda sends to an OnFailure destination when an asynchronous invocation gives up."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error,
    }


def is_s3_test_event(body: str) -> bool:
    """S3 sends one of these to a queue when a notification configuration is stored."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("Event") == "s3:TestEvent"
