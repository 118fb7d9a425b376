"""S3 notification idempotency on moto's DynamoDB: one run per (bucket, key, etag)."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from cdpbridge.state import idempotency_setup
from cdpbridge.state.idempotency import S3ObjectIdempotency, s3_object, s3_object_idempotency
from cdpbridge.state.tables import IDEMPOTENCY_TABLE

# Outside Lambda there is no context to tell the remaining time; Powertools warns and carries on.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time")


class InvocationContext:
    """The part of a Lambda context the idempotency utility reads."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def idempotency(dynamodb_client, make_table) -> S3ObjectIdempotency:
    return s3_object_idempotency(make_table(IDEMPOTENCY_TABLE), boto3_client=dynamodb_client)


def test_repeated_notification_runs_once_and_new_etag_runs_again(idempotency: S3ObjectIdempotency):
    # Given a function wrapped with the S3 object idempotency
    runs: list[dict[str, str]] = []

    @idempotency.decorate
    def process(*, s3_object: dict[str, Any]) -> dict[str, Any]:
        runs.append(s3_object)
        return {"rows": 3, "etag": s3_object["etag"]}

    # When the same object version is notified twice (the second with extra fields and a quoted etag)
    first = process(s3_object=s3_object("drop", "inbound/lytics/a.csv", "abc"))
    again = process(s3_object={**s3_object("drop", "inbound/lytics/a.csv", '"abc"'), "size": 10})
    # Then the function ran once and the repeat got the stored result
    assert len(runs) == 1
    assert again == first == {"rows": 3, "etag": "abc"}

    # When the object is overwritten (new etag) / Then it runs again
    process(s3_object=s3_object("drop", "inbound/lytics/a.csv", "def"))
    assert [run["etag"] for run in runs] == ["abc", "def"]


def test_other_keys_are_independent(idempotency: S3ObjectIdempotency):
    # Given a wrapped function
    calls = []

    @idempotency.decorate
    def process(*, s3_object: dict[str, Any]) -> int:
        calls.append(s3_object["key"])
        return len(calls)

    # When two objects with the same etag in different keys or buckets arrive
    process(s3_object=s3_object("drop", "a.csv", "abc"))
    process(s3_object=s3_object("drop", "b.csv", "abc"))
    process(s3_object=s3_object("other", "a.csv", "abc"))
    # Then each ran
    assert calls == ["a.csv", "b.csv", "a.csv"]


def test_failed_run_is_retried(idempotency: S3ObjectIdempotency):
    # Given a function that fails the first time
    attempts = []

    @idempotency.decorate
    def process(*, s3_object: dict[str, Any]) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("Braze unavailable")
        return "ok"

    payload = s3_object("drop", "a.csv", "abc")
    # When it fails and the notification is redelivered
    with pytest.raises(RuntimeError):
        process(s3_object=payload)
    # Then the redelivery runs it again and succeeds
    assert process(s3_object=payload) == "ok"
    assert len(attempts) == 2


def test_record_uses_the_documented_table_layout(idempotency: S3ObjectIdempotency, dynamodb_client):
    # Given one processed notification inside an invocation with a minute left
    idempotency.config.register_lambda_context(cast(Any, InvocationContext()))

    @idempotency.decorate
    def process(*, s3_object: dict[str, Any]) -> str:
        return "done"

    started = time.time()
    process(s3_object=s3_object("drop", "a.csv", "abc"))
    # Then its record has the key "id", the TTL "expiration" a day ahead, and an in-progress
    # expiry tied to the invocation's remaining time
    (item,) = dynamodb_client.scan(TableName=idempotency.persistence_layer.table_name)["Items"]
    assert "id" in item
    assert item["status"] == {"S": "COMPLETED"}
    assert started + 24 * 3600 - 5 <= int(item["expiration"]["N"]) <= time.time() + 24 * 3600 + 5
    assert int(item["in_progress_expiration"]["N"]) <= (time.time() + 61) * 1000


def test_missing_identity_is_refused():
    with pytest.raises(ValueError, match="etag"):
        s3_object("drop", "a.csv", "")


def test_setup_tuple_keys_any_payload_keyword_on_bucket_key_etag(dynamodb_client, make_table):
    # Given the (persistence, config) pair used with @idempotent_function under another keyword
    persistence, config = idempotency_setup(make_table(IDEMPOTENCY_TABLE), boto3_client=dynamodb_client)
    runs = []

    def start_run(notification: dict[str, str]) -> str:
        runs.append(notification["etag"])
        return "started"

    start = idempotent_function(
        start_run, data_keyword_argument="notification", persistence_store=persistence, config=config
    )
    # When a notification is repeated with a different size field, then the object changes
    start(notification={"bucket": "drop", "key": "a.csv", "etag": "abc", "size": "1"})
    start(notification={"bucket": "drop", "key": "a.csv", "etag": "abc", "size": "2"})
    start(notification={"bucket": "drop", "key": "a.csv", "etag": "def", "size": "2"})
    # Then only the new version ran again
    assert runs == ["abc", "def"]
