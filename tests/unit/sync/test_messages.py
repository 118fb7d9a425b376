"""The import queue's messages: parsed once into typed models, written back the way they were read."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from cdpbridge.sync.messages import (
    IMPORT_MESSAGE,
    ContinueMessage,
    ImportQueueRecord,
    ObjectVersion,
    PartMessage,
    PartRange,
    S3Location,
    S3Notification,
    S3TestEvent,
)

NOTIFICATION = {
    "Records": [
        {
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "drop"},
                "object": {"key": "inbound/generic/daily+customers%281%29.csv", "size": 42, "eTag": "abc"},
            },
        },
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "drop"}, "object": {"key": "x"}}},
    ]
}


def part(**changes: object) -> PartMessage:
    fields: dict[str, object] = {
        "integration": "generic",
        "location": S3Location(bucket="drop", key="inbound/generic/big.csv"),
        "version": "etag1",
        "run_id": "20240101T000000Z-0123456789ab",
        "started_at": datetime(2024, 1, 1, tzinfo=UTC),
        "mapping_key": "config/generic.yaml",
    }
    return PartMessage.model_validate(fields | changes)


def test_a_notification_keeps_bucket_and_key_apart_and_decodes_the_key() -> None:
    message = IMPORT_MESSAGE.validate_json(orjson.dumps(NOTIFICATION))
    assert isinstance(message, S3Notification)
    created, removed = message.records
    assert created.is_object_created and not removed.is_object_created
    assert created.location == S3Location(bucket="drop", key="inbound/generic/daily customers(1).csv")
    version = ObjectVersion.of(created)
    assert (version.bucket, version.key, version.etag, version.size) == (
        "drop",
        "inbound/generic/daily customers(1).csv",
        "abc",
        42,
    )


def test_an_object_version_drops_the_quotes_head_object_puts_around_the_etag() -> None:
    assert ObjectVersion(bucket="b", key="k", etag='"abc"').etag == "abc"


def test_the_s3_test_event_is_its_own_kind() -> None:
    message = IMPORT_MESSAGE.validate_json(
        b'{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "drop"}'
    )
    assert isinstance(message, S3TestEvent)


def test_part_and_continuation_messages_round_trip_by_their_type() -> None:
    first = part(
        part_id="0", parts=3, byte_range=PartRange(start=0, end=100), then_parts=(part(part_id="1", parts=3),)
    )
    parsed = IMPORT_MESSAGE.validate_json(first.model_dump_json())
    assert type(parsed) is PartMessage
    assert parsed == first
    continuation = ContinueMessage.model_validate(first.model_dump() | {"type": "cdpbridge.continue"})
    assert type(IMPORT_MESSAGE.validate_json(continuation.model_dump_json())) is ContinueMessage


def test_a_message_leaves_out_what_it_does_not_hold_and_keeps_an_empty_hold() -> None:
    plain = orjson.loads(part().model_dump_json())
    assert "held_from" not in plain and "then_parts" not in plain
    assert plain["location"] == {"bucket": "drop", "key": "inbound/generic/big.csv"}
    released = orjson.loads(part(held_from=()).model_dump_json())
    assert released["held_from"] == []


def test_an_unknown_message_is_refused() -> None:
    with pytest.raises(ValidationError):
        IMPORT_MESSAGE.validate_json(b'{"type": "cdpbridge.other"}')
    with pytest.raises(ValidationError):
        IMPORT_MESSAGE.validate_json(
            part().model_dump_json().replace('"generic"', '"generic", "extra": 1', 1)
        )


def test_an_sqs_record_body_is_parsed_into_its_message() -> None:
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": part().model_dump_json(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1704067200000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1704067200001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:generic",
        "awsRegion": "us-east-1",
    }
    assert ImportQueueRecord.model_validate(record).body == part()
