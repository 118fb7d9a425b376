"""Braze segment -> BlueConic CSV against the emulator, whose segment exports land in a moto S3 bucket:
exact members and fields, waiting out another export of the segment, names, and waiting across
invocations through the run-state table and the function's own queue."""

from __future__ import annotations

import csv
import importlib.util
import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import orjson
import pytest

from cdpbridge.braze import BrazeClient
from cdpbridge.exports import runtime as export_runtime
from cdpbridge.exports.segment import (
    ExportJobStore,
    ExportWaitPolicy,
    SegmentExporter,
    SegmentRef,
    SegmentResolutionError,
    resolve_segment,
)
from cdpbridge.integrations.blueconic.export import BLUECONIC_EXPORT, BlueConicExportConfig
from cdpbridge.state import DynamoDbCheckpointStore, SqliteCheckpointStore
from cdpbridge.state.tables import RUN_STATE_TABLE, create_table

from ..emulator_admin import API_KEY, Braze
from ..job_runner import braze_settings
from ..lambda_context import LambdaContextStub

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
VIP = {"attribute": "loyalty_tier", "op": "in", "value": ["gold", "platinum"]}
CONFIG = {
    "segment": {"name": "VIP customers"},
    "identifiers": [
        {"braze": "external_id", "column": "crm_customer_id"},
        {"braze": "user_aliases.blueconic", "column": "blueconic_profile_id"},
    ],
    "fields": [
        {"braze": "first_name", "column": "firstname"},
        {"braze": "email", "column": "email"},
        {"braze": "dob", "column": "dob"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
        {"braze": "custom_attributes.interests", "column": "interests"},
        {"braze": "custom_attributes.vip", "column": "vip"},
        {"braze": "custom_attributes.points", "column": "points"},
        {"braze": "custom_attributes.prefs", "column": "prefs"},
    ],
}
HEADER = [
    "crm_customer_id",
    "blueconic_profile_id",
    "firstname",
    "email",
    "dob",
    "loyalty_tier",
    "interests",
    "vip",
    "points",
    "prefs",
]
# What the VIP segment's members become (the e-mail-only member has no identifier: left out).
EXPECTED_ROWS = [
    ["U1", "", "Ana", "ana@example.com", "1990-05-17", "gold", "yoga|running", "true", "120",
     '{"channel":"email","freq":2}'],
    ["U2", "", "Ben", "", "", "platinum", "", "false", "0", ""],
    ["", "bc-555", "Eve", "", "", "gold", "", "", "", ""],
    ["U6", "bc-666", "Gus", "", "", "platinum", "", "", "", ""],
    ["U8", "", 'Fay, "the" Great', "", "", "gold", "a|b", "", "", ""],
]  # fmt: skip


def seed_profiles(braze: Braze) -> None:
    braze.seed(
        {
            "external_id": "U1",
            "first_name": "Ana",
            "email": "ana@example.com",
            "dob": "1990-05-17",
            "loyalty_tier": "gold",
            "interests": ["yoga", "running"],
            "vip": True,
            "points": 120,
            "prefs": {"channel": "email", "freq": 2},
        },
        {"external_id": "U2", "first_name": "Ben", "loyalty_tier": "platinum", "vip": False, "points": 0},
        {"external_id": "U3", "first_name": "Cleo", "loyalty_tier": "silver"},
        {"external_id": "U4", "first_name": "Dan"},
        {
            "user_alias": {"alias_name": "bc-555", "alias_label": "blueconic"},
            "_update_existing_only": False,
            "first_name": "Eve",
            "loyalty_tier": "gold",
        },
        {"external_id": "U6", "first_name": "Gus", "loyalty_tier": "platinum"},
        {"email": "nobody@example.com", "first_name": "Nil", "loyalty_tier": "gold"},
        {"external_id": "U8", "first_name": 'Fay, "the" Great', "loyalty_tier": "gold", "interests": ["a|b"]},
    )
    response = braze.session.post(
        f"{braze.url}/users/alias/new",
        json={"user_aliases": [{"alias_name": "bc-666", "alias_label": "blueconic", "external_id": "U6"}]},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    response.raise_for_status()


@dataclass
class Bucket:
    s3: Any
    name: str

    def text(self, location: str) -> str:
        key = location.removeprefix(f"s3://{self.name}/")
        body: bytes = self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body.decode("utf-8")

    def keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def bucket(aws: str, braze: Braze) -> Bucket:
    """A drop bucket in moto that the emulator's segment exports are written to."""
    s3 = boto3.client("s3")
    name = f"drop-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    braze.configure(
        export_s3={"endpoint_url": aws, "bucket": name, "path": "", "region": "us-east-1"},
        export_delay_s=0.3,
    )
    return Bucket(s3, name)


FAST = ExportWaitPolicy(initial_s=0.05, max_s=0.25, quiet_s=0.3, max_wait_s=60)


def make_exporter(braze: Braze, bucket: Bucket, tmp_path: Path, **options: Any) -> SegmentExporter:
    return SegmentExporter(
        integration=BLUECONIC_EXPORT,
        client=BrazeClient(braze_settings(braze.url), API_KEY),
        s3=bucket.s3,
        bucket=bucket.name,
        jobs=ExportJobStore(SqliteCheckpointStore(tmp_path / "state.sqlite3")),
        policy=options.pop("policy", FAST),
        **options,
    )


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def test_the_csv_holds_exactly_the_segments_members_with_the_mapped_fields(
    braze: Braze, bucket: Bucket, tmp_path: Path
) -> None:
    # Given profiles in Braze and a segment of the gold and platinum ones
    seed_profiles(braze)
    segment_id = braze.add_segment("VIP customers", VIP)
    exporter = make_exporter(braze, bucket, tmp_path)

    # When the segment is exported by name and converted
    job = exporter.begin(BlueConicExportConfig.model_validate(CONFIG))
    step = exporter.advance(job, lambda: 600.0)

    # Then the CSV has the identifier columns first, then the fields, one row per member
    assert step.finished and step.report is not None
    report = step.report
    assert report["status"] == "completed"
    (location,) = report["files"]
    day = job.started.strftime("%Y-%m-%d")
    assert location == f"s3://{bucket.name}/outbound/blueconic/{segment_id}/{day}/{job.run_id}.csv"
    header, rows = csv_rows(bucket.text(location))
    assert header == HEADER
    assert sorted(rows) == sorted(EXPECTED_ROWS)
    assert bucket.text(location).endswith("\r\n")
    # And the report says what was exported, from where, and how long it waited
    assert report["segment"] == {"id": segment_id, "name": "VIP customers"}
    assert (report["users"], report["rows_written"], report["users_skipped"]) == (6, 5, 1)
    assert report["export_prefix"] == f"segment-export/{segment_id}/{day}/{report['object_prefix']}/"
    assert report["export_files"] and report["export_bytes"] > 0
    assert report["waits"]["polls"] >= 2 and report["waits"]["in_progress_waits"] == 0
    stored = orjson.loads(bucket.text(report["report_file"]))
    assert report["report_file"] == f"s3://{bucket.name}/reports/blueconic-export/{day}/{job.run_id}.json"
    assert stored["rows_written"] == 5


def test_a_function_timeout_below_the_conversion_minimum_converts_in_the_second_invocation(
    braze: Braze, bucket: Bucket, tmp_path: Path
) -> None:
    # Given a conversion minimum longer than any invocation of the function ever has
    seed_profiles(braze)
    braze.add_segment("VIP customers", VIP)
    exporter = make_exporter(braze, bucket, tmp_path, convert_min_budget_s=1_000.0)
    job = exporter.begin(BlueConicExportConfig.model_validate(CONFIG))

    # When the export is ready in an invocation with 600 s left
    first = exporter.advance(job, lambda: 600.0)

    # Then the conversion is handed to a fresh invocation once, and the job remembers it
    assert not first.finished and first.delay_s == 0.0
    stored = exporter.jobs.load(job.run_id)
    assert stored is not None and stored.convert_deferrals == 1

    # When the fresh invocation has no more time than that
    second = exporter.advance(stored, lambda: 600.0)

    # Then it converts instead of handing on without end
    assert second.finished and second.report is not None
    assert second.report["status"] == "completed"
    _, rows = csv_rows(bucket.text(second.report["files"][0]))
    assert sorted(rows) == sorted(EXPECTED_ROWS)


def test_an_export_of_a_segment_already_exporting_waits_and_then_succeeds(
    braze: Braze, bucket: Bucket, tmp_path: Path
) -> None:
    # Given an export of the segment already running (BlueConic's own, say), which takes a second
    seed_profiles(braze)
    segment_id = braze.add_segment("VIP customers", VIP)
    braze.configure(export_delay_s=1.0)
    client = BrazeClient(braze_settings(braze.url), API_KEY)
    client.export_segment(segment_id, ["external_id"], output_format="gzip")

    # When ours is started
    exporter = make_exporter(braze, bucket, tmp_path)
    job = exporter.begin(BlueConicExportConfig.model_validate({**CONFIG, "segment": {"id": segment_id}}))
    step = exporter.advance(job, lambda: 600.0)

    # Then Braze's 429 "export in progress" was waited out, and the export then succeeded
    assert step.report is not None and step.report["status"] == "completed"
    assert step.report["waits"]["in_progress_waits"] >= 1
    assert step.report["waits"]["start_attempts"] == step.report["waits"]["in_progress_waits"] + 1
    _, rows = csv_rows(bucket.text(step.report["files"][0]))
    assert sorted(rows) == sorted(EXPECTED_ROWS)
    assert [export["status"] for export in braze.exports()] == ["done", "done"]


def test_segment_names_resolve_and_ambiguous_or_unknown_names_are_clear_errors(braze: Braze) -> None:
    # Given segments, two of which share a name
    vip = braze.add_segment("VIP customers", VIP)
    first_dup = braze.add_segment("Newsletter")
    second_dup = braze.add_segment("Newsletter")
    client = BrazeClient(braze_settings(braze.url), API_KEY)

    # Then a unique name, and a bare text that is an id or a name, resolve
    assert resolve_segment(client, SegmentRef(name="VIP customers")).id == vip
    assert resolve_segment(client, SegmentRef.model_validate("VIP customers")).id == vip
    assert resolve_segment(client, SegmentRef.model_validate(vip)).name == "VIP customers"
    # And a name matching several or none is an error saying so
    with pytest.raises(SegmentResolutionError, match="2 segments are named 'Newsletter'") as several:
        resolve_segment(client, SegmentRef(name="Newsletter"))
    assert first_dup in str(several.value) and second_dup in str(several.value)
    with pytest.raises(SegmentResolutionError, match=r"no segment named 'vip customers'.*'VIP customers'"):
        resolve_segment(client, SegmentRef(name="vip customers"))


def load_handler() -> ModuleType:
    """functions/blueconic_export/app.py, imported under a name of its own (every handler is app.py)."""
    spec = importlib.util.spec_from_file_location(
        "blueconic_export_app", ROOT / "functions" / "blueconic_export" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def deployed(bucket: Bucket, braze: Braze, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The export function's environment, its run-state table, queue and secret in moto."""
    suffix = uuid.uuid4().hex[:8]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"blueconic-export-{suffix}")["QueueUrl"]
    table = f"run-{suffix}"
    create_table(boto3.client("dynamodb"), RUN_STATE_TABLE, table)
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name=f"braze-key-{suffix}", SecretString=orjson.dumps({"api_key": API_KEY}).decode()
    )
    environment = {
        "INTEGRATION": "blueconic",
        "DROP_BUCKET": bucket.name,
        "RUN_STATE_TABLE": table,
        "CONTINUATION_QUEUE_URL": queue_url,
        "BRAZE_REST_ENDPOINT": braze.url,
        "BRAZE_API_KEY_SECRET": f"braze-key-{suffix}",
        "EXPORT_POLL_INITIAL_S": "0.2",
        "EXPORT_POLL_MAX_S": "0.5",
        "EXPORT_QUIET_PERIOD_S": "0.3",
        "DEADLINE_MARGIN_MS": "1000",
        "EXPORT_CONVERT_MIN_BUDGET_S": "0.1",
        "POWERTOOLS_SERVICE_NAME": "braze-cdp-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "BrazeCdpBridgeTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    export_runtime.clear_cached_runtimes()
    yield environment
    export_runtime.clear_cached_runtimes()


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"rh{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:blueconic-export",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def receive(queue_url: str, wait_s: int = 10) -> list[str]:
    sqs = boto3.client("sqs")
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s)
    messages = response.get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [message["Body"] for message in messages]


def test_an_export_not_ready_before_the_deadline_continues_in_a_new_invocation(
    deployed: dict[str, str], braze: Braze, bucket: Bucket
) -> None:
    # Given an export that takes Braze four seconds, and the config in the bucket
    seed_profiles(braze)
    braze.add_segment("VIP customers", VIP)
    braze.configure(export_delay_s=4.0)
    config = {key: value for key, value in CONFIG.items() if key != "segment"} | {"segment": "placeholder"}
    bucket.s3.put_object(Bucket=bucket.name, Key="config/blueconic-export.yaml", Body=orjson.dumps(config))
    handler = load_handler()

    # When the schedule fires an invocation with only 3 s left (1 s of it the safety margin): time
    # to ask for the export on a loaded machine, not to see it finish
    started = handler.lambda_handler(
        {"config_key": "config/blueconic-export.yaml", "segment": "VIP customers"},
        LambdaContextStub("BlueConicExportFunction", deadline=time.time() + 3.0),
    )

    # Then it requested the export, kept the job in the run-state table and queued its continuation
    assert started["status"] == "waiting"
    assert 0 <= started["continue_in_s"] <= 900
    jobs = ExportJobStore(DynamoDbCheckpointStore(deployed["RUN_STATE_TABLE"]))
    job = jobs.load(started["run_id"])
    assert job is not None
    assert (job.phase, job.token, job.invocations) == ("waiting", 1, 1)
    assert job.object_prefix and job.segment_name == "VIP customers"
    assert job.next_action_at > job.started_at
    (message,) = receive(deployed["CONTINUATION_QUEUE_URL"])
    assert orjson.loads(message) == {
        "type": "cdpbridge.export.continue",
        "integration": "blueconic",
        "run_id": started["run_id"],
        "token": 1,
    }

    # When the continuation arrives in invocations that keep running short of time
    bodies = [message]
    invocations = 1
    while bodies:
        response = handler.lambda_handler(
            sqs_event(*bodies), LambdaContextStub("BlueConicExportFunction", deadline=time.time() + 1.6)
        )
        assert response == {"batchItemFailures": []}
        invocations += len(bodies)
        bodies = receive(deployed["CONTINUATION_QUEUE_URL"], wait_s=5)
        assert invocations < 30, "the export never finished"

    # Then the export finished in a later invocation, into one CSV and one report
    job = jobs.load(started["run_id"])
    assert job is not None and job.phase == "done" and job.report_location is not None
    report = orjson.loads(bucket.text(job.report_location))
    assert report["status"] == "completed"
    assert report["waits"]["invocations"] == invocations >= 2
    assert len(bucket.keys("outbound/blueconic/")) == 1
    _, rows = csv_rows(bucket.text(report["files"][0]))
    assert sorted(rows) == sorted(EXPECTED_ROWS)

    # And a repeated delivery of an old continuation changes nothing
    stale = orjson.dumps({**orjson.loads(message), "token": 0}).decode()
    assert handler.lambda_handler(
        sqs_event(stale), LambdaContextStub("BlueConicExportFunction", deadline=time.time() + 60)
    ) == {"batchItemFailures": []}
    assert len(bucket.keys("outbound/blueconic/")) == 1


def test_an_export_braze_refuses_ends_in_a_failed_report_saying_why(
    braze: Braze, bucket: Bucket, tmp_path: Path
) -> None:
    # Given a workspace without S3 export credentials (Braze refuses output_format gzip)
    braze.configure(export_s3=None)
    segment_id = braze.add_segment("VIP customers", VIP)
    exporter = make_exporter(braze, bucket, tmp_path)

    # When the export runs
    job = exporter.begin(BlueConicExportConfig.model_validate(CONFIG))
    step = exporter.advance(job, lambda: 600.0)

    # Then it ends at once with a failed report quoting Braze, and no CSV
    assert step.finished and step.report is not None
    assert step.report["status"] == "failed"
    assert step.report["failure"].startswith(
        f"segment {segment_id}: Braze /users/export/segment answered 400"
    )
    assert "S3 export credentials" in step.report["failure"]
    assert bucket.keys("outbound/") == []
    assert bucket.keys("reports/blueconic-export/") == [step.report["report_file"].split("/", 3)[3]]


def test_an_export_whose_files_never_appear_fails_after_the_maximum_wait(
    braze: Braze, bucket: Bucket, tmp_path: Path
) -> None:
    # Given Braze taking longer than the run may wait
    seed_profiles(braze)
    braze.add_segment("VIP customers", VIP)
    braze.configure(export_delay_s=30.0)
    policy = ExportWaitPolicy(initial_s=0.05, max_s=0.1, quiet_s=0.3, max_wait_s=0.6)
    exporter = make_exporter(braze, bucket, tmp_path, policy=policy)

    # When the export runs
    job = exporter.begin(BlueConicExportConfig.model_validate(CONFIG))
    step = exporter.advance(job, lambda: 600.0)

    # Then the run gives up with a report that says what it waited for
    assert step.report is not None and step.report["status"] == "failed"
    assert "Braze wrote no export files under" in step.report["failure"]
    # (how many polls fit into the wait depends on how fast the bucket answers; the wait itself does
    # not: the run gives up once more than max_wait_s has passed since it began)
    assert step.report["waits"]["polls"] >= 1
    assert step.report["duration_s"] >= policy.max_wait_s
    # And a later delivery of the same job finds it finished
    assert exporter.advance(job, lambda: 600.0).report is None
