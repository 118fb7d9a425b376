"""Braze segment -> Lytics import CSV against the emulator, whose segment exports land in moto S3:
exactly the segment's members, e-mail and external id first, then the configured fields flattened."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.exports.segment import ExportJobStore, ExportWaitPolicy, SegmentExporter
from cdpbridge.integrations.lytics.export import LYTICS_EXPORT, LyticsExportConfig
from cdpbridge.state import SqliteCheckpointStore

from ..emulator_admin import API_KEY, Braze

pytestmark = pytest.mark.integration

CONFIG: dict[str, Any] = {
    "segment": {"name": "Engaged subscribers"},
    "fields": [
        {"braze": "first_name", "column": "first_name"},
        {"braze": "custom_attributes.lytics_segments", "column": "lytics_segments"},
        {"braze": "custom_attributes.address.city", "column": "city"},
        {"braze": "custom_attributes.engaged", "column": "engaged"},
    ],
}


def test_the_csv_holds_exactly_the_segments_members(aws: str, braze: Braze, tmp_path: Path) -> None:
    # Given profiles in Braze, some in the segment of engaged users, and exports written to S3
    s3 = boto3.client("s3")
    bucket = f"drop-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    braze.configure(
        export_s3={"endpoint_url": aws, "bucket": bucket, "path": "", "region": "us-east-1"},
        export_delay_s=0.3,
    )
    braze.seed(
        {
            "external_id": "LY-1",
            "email": "ana@example.com",
            "first_name": "Ana",
            "engaged": True,
            "lytics_segments": ["lytics_all", "high_value"],
            "address": {"city": "Lisbon", "zip": "1000"},
        },
        {"external_id": "LY-2", "first_name": "Ben", "engaged": True},
        {"external_id": "LY-3", "email": "cleo@example.com", "first_name": "Cleo", "engaged": False},
        {"email": "dan@example.com", "first_name": "Dan", "engaged": True},
        {"external_id": "LY-5", "first_name": "Eve"},
    )
    segment_id = braze.add_segment("Engaged subscribers", {"attribute": "engaged", "op": "eq", "value": True})
    settings = BrazeSettings(rest_endpoint=braze.url, retry=RetryPolicy(max_attempts=6, base_delay_s=0.01))
    exporter = SegmentExporter(
        integration=LYTICS_EXPORT,
        client=BrazeClient(settings, API_KEY),
        s3=s3,
        bucket=bucket,
        jobs=ExportJobStore(SqliteCheckpointStore(tmp_path / "state.sqlite3")),
        policy=ExportWaitPolicy(initial_s=0.05, max_s=0.25, quiet_s=0.3, max_wait_s=60),
    )

    # When the segment is exported and converted
    job = exporter.begin(LyticsExportConfig.model_validate(CONFIG))
    step = exporter.advance(job, lambda: 600.0)

    # Then one CSV under outbound/lytics/<segment>/<date>/ holds exactly the members
    assert step.finished and step.report is not None and step.report["status"] == "completed"
    (location,) = step.report["files"]
    assert location.startswith(f"s3://{bucket}/outbound/lytics/{segment_id}/{job.started:%Y-%m-%d}/")
    body = s3.get_object(Bucket=bucket, Key=location.removeprefix(f"s3://{bucket}/"))["Body"].read()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert rows[0] == ["email", "external_id", "first_name", "lytics_segments", "city", "engaged"]
    assert sorted(rows[1:]) == [
        ["", "LY-2", "Ben", "", "", "true"],
        ["ana@example.com", "LY-1", "Ana", "lytics_all|high_value", "Lisbon", "true"],
        ["dan@example.com", "", "Dan", "", "", "true"],
    ]
