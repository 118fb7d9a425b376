"""The import function's runtime over moto server and the emulator: S3 notification to report,
idempotency on bucket/key/etag, checkpoint continuation near the deadline, and byte-range fan-out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import orjson
import pytest

from cdpbridge.state.tables import FIELD_STATE_TABLE, IDEMPOTENCY_TABLE, RUN_STATE_TABLE, create_table
from cdpbridge.sync import import_runtime, runtime
from cdpbridge.sync.messages import IMPORT_MESSAGE
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, customer_rows, write_customers_csv
from tests.moto_server import moto_server

from ..lambda_context import LambdaContextStub
from .conftest import Braze

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@dataclass
class Stack:
    s3: Any
    sqs: Any
    queue_url: str
    bucket: str

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        return notification(self.bucket, key, head["ETag"].strip('"'), head["ContentLength"])

    def receive_all(self) -> list[str]:
        bodies: list[str] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def json(self, key: str) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return result

    def keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))


def notification(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": quote_plus(key), "size": size, "eTag": etag},
                },
            }
        ]
    }


@pytest.fixture
def stack(moto_url: str, braze: Braze, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    suffix = str(time.monotonic_ns())
    bucket = f"drop-{suffix}"
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INTEGRATION": "generic",
        "DROP_BUCKET": bucket,
        "FIELD_STATE_TABLE": f"field-{suffix}",
        "RUN_STATE_TABLE": f"run-{suffix}",
        "IDEMPOTENCY_TABLE": f"idem-{suffix}",
        "BRAZE_REST_ENDPOINT": braze.url,
        "BRAZE_API_KEY_SECRET": "braze-rest-key",
        "BRAZE_WORKSPACE": "local-workspace",
        "FANOUT_THRESHOLD_BYTES": str(1024 * 1024),
        "FANOUT_PART_BYTES": str(1024 * 1024),
        "DEADLINE_MARGIN_MS": "5000",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")
    secrets = boto3.client("secretsmanager")
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"generic-{suffix}")["QueueUrl"]
    monkeypatch.setenv("CONTINUATION_QUEUE_URL", queue_url)
    create_table(dynamodb, FIELD_STATE_TABLE, f"field-{suffix}")
    create_table(dynamodb, RUN_STATE_TABLE, f"run-{suffix}")
    create_table(dynamodb, IDEMPOTENCY_TABLE, f"idem-{suffix}")
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name="braze-rest-key", SecretString='{"api_key": "local-dev-key"}')
    s3.put_object(Bucket=bucket, Key="config/generic.yaml", Body=CUSTOMER_MAPPING_YAML.encode())
    import_runtime._runtime.cache_clear()
    import_runtime._idempotent_start.cache_clear()
    yield Stack(s3, sqs, queue_url, bucket)
    import_runtime._runtime.cache_clear()
    import_runtime._idempotent_start.cache_clear()


def handle(body: dict[str, Any] | str, seconds_left: float = 600.0) -> None:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    context = LambdaContextStub("GenericImportFunction", deadline=time.time() + seconds_left)
    # The handler's BatchProcessor parses each record's body once, into the message it carries.
    message = IMPORT_MESSAGE.validate_json(text)
    runtime.handle_import_message(message, integration="generic", lambda_context=context)  # type: ignore[arg-type]


def test_a_notification_runs_the_file_and_writes_its_report(
    stack: Stack, braze: Braze, tmp_path: Path
) -> None:
    # Given a file landed under a key S3 sends URL-encoded
    path = write_customers_csv(tmp_path / "c.csv", 300)
    event = stack.put("inbound/generic/daily customers.csv", path.read_bytes())
    # When the function gets the notification
    handle(event)
    # Then Braze holds every user and the report is in the bucket
    assert braze.user_count() == 300
    reports = [key for key in stack.keys("reports/generic/") if key.endswith(".json")]
    assert len(reports) == 1
    report = stack.json(reports[0])
    assert report["rows_read"] == 300
    assert report["status"] == "completed"
    assert report["source"] == f"s3://{stack.bucket}/inbound/generic/daily customers.csv"


def test_a_repeated_notification_for_the_same_etag_does_nothing(
    stack: Stack, braze: Braze, tmp_path: Path
) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 100)
    event = stack.put("inbound/generic/c.csv", path.read_bytes())
    handle(event)
    requests_after_first = braze.stats()["requests"]
    # When S3 delivers the same notification again
    handle(event)
    # Then nothing more reaches Braze and no second report appears
    assert braze.stats()["requests"] == requests_after_first
    assert len([k for k in stack.keys("reports/generic/") if k.endswith(".json")]) == 1


def test_a_run_near_the_deadline_checkpoints_and_continues_in_a_new_invocation(
    stack: Stack, braze: Braze, tmp_path: Path
) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 4000)
    braze.configure(latency_ms=20)
    event = stack.put("inbound/generic/big.csv", path.read_bytes())
    # When the first invocation has only a little time left before its margin
    handle(event, seconds_left=5.3)
    continuations = stack.receive_all()
    # Then it stopped at a checkpoint and asked to be continued
    assert len(continuations) == 1
    assert orjson.loads(continuations[0])["type"] == "cdpbridge.continue"
    assert braze.user_count() < 4000
    # And the continuation finishes the file into one report
    while continuations:
        for body in continuations:
            handle(body)
        continuations = stack.receive_all()
    assert braze.user_count() == 4000
    reports = [k for k in stack.keys("reports/generic/") if k.endswith(".json")]
    assert len(reports) == 1
    report = stack.json(reports[0])
    assert report["rows_read"] == 4000
    assert report["attributes_sent"] == 4000 * 19


def test_a_big_file_fans_out_over_byte_ranges_with_one_merged_report(
    stack: Stack, braze: Braze, tmp_path: Path
) -> None:
    # Given a file over the fan-out threshold (1 MiB here)
    rows = 16_000
    path = write_customers_csv(tmp_path / "c.csv", rows)
    assert path.stat().st_size > 2 * 1024 * 1024
    event = stack.put("inbound/generic/huge.csv", path.read_bytes())
    # When the notification is handled, parts are queued instead of processed
    handle(event)
    parts = stack.receive_all()
    assert len(parts) >= 2
    assert {orjson.loads(p)["type"] for p in parts} == {"cdpbridge.part"}
    for body in reversed(parts):  # any order
        handle(body)
    # Then every row reached Braze once and exactly one merged report exists
    assert stack.receive_all() == []
    assert braze.user_count() == rows
    reports = [k for k in stack.keys("reports/generic/") if k.endswith(".json")]
    assert len(reports) == 1
    report = stack.json(reports[0])
    assert report["rows_read"] == rows
    assert report["parts"] == len(parts)
    last = list(customer_rows(rows))[-1]
    held = braze.user(last[0])
    assert held is not None and held["attributes"]["loyalty_tier"] == last[10]
