"""The opt-in ingestion function: each export file's good rows merged into the opt-in store."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import boto3
import orjson
from aws_lambda_powertools import Logger
from pydantic import Field

from cdpbridge.currents.notification import created_objects
from cdpbridge.environment import EnvironmentSettings, read_environment
from cdpbridge.integrations.notify.optin import read_optin_export
from cdpbridge.integrations.notify.optin_store import DynamoDbOptinStore
from cdpbridge.records import RowIssue
from cdpbridge.sources import SourceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

OPTIN_PREFIX: Final = "inbound/notify/optin/"
# Opt-in events merged into the store per write: a year of history of a big list is millions of rows.
_OPTIN_BATCH: Final = 20_000
# Issues listed in an opt-in report (every one is counted).
_LISTED_ISSUES: Final = 1_000


class OptinFunctionSettings(EnvironmentSettings):
    """The opt-in ingestion function's environment."""

    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    optin_table: str = Field(min_length=3, alias="NOTIFY_OPTIN_TABLE")
    optin_prefix: str = Field(default=OPTIN_PREFIX, alias="NOTIFY_OPTIN_PREFIX")
    reports_prefix: str = Field(default="reports/", alias="REPORTS_PREFIX")


@dataclass(frozen=True, slots=True)
class OptinRuntime:
    settings: OptinFunctionSettings
    s3: S3Client
    store: DynamoDbOptinStore


@cache
def _optin_runtime() -> OptinRuntime:
    settings = read_environment(OptinFunctionSettings)
    return OptinRuntime(settings, boto3.client("s3"), DynamoDbOptinStore(settings.optin_table))


def ingest_optin_file(runtime: OptinRuntime, bucket: str, key: str) -> dict[str, Any]:
    """Merges one export file's good rows into the store; its report (and rejects) go to reports/."""
    issues: list[RowIssue] = []
    counts = {"rows": 0, "users": 0}
    location = f"s3://{bucket}/{key}"

    def flush(batch: list[Any]) -> None:
        counts["users"] += runtime.store.record(batch)
        batch.clear()

    batch: list[Any] = []
    status = "completed"
    reason: str | None = None
    try:
        for event in read_optin_export(location, issues.append):
            counts["rows"] += 1
            batch.append(event)
            if len(batch) >= _OPTIN_BATCH:
                flush(batch)
        flush(batch)
    except SourceError as error:
        # The whole file is unusable (no such columns, unreadable): nothing of it is merged.
        status, reason = "failed", str(error)
    stamp = datetime.now(UTC)
    stem = key.rsplit("/", 1)[-1]
    base = f"{runtime.settings.reports_prefix}notify-optin/{stamp:%Y-%m-%d}/{stem}"
    rejects_key = None
    if issues:
        rejects_key = f"{base}.rejects.csv"
        runtime.s3.put_object(
            Bucket=runtime.settings.drop_bucket, Key=rejects_key, Body=_issues_csv(issues).encode("utf-8")
        )
    report = {
        "file": location,
        "status": status,
        "reason": reason,
        "good_rows": counts["rows"],
        "user_writes": counts["users"],
        "rejected_issues": len(issues),
        "rejects_file": f"s3://{runtime.settings.drop_bucket}/{rejects_key}" if rejects_key else None,
        "issues": [_issue_dict(issue) for issue in issues[:_LISTED_ISSUES]],
    }
    runtime.s3.put_object(Bucket=runtime.settings.drop_bucket, Key=f"{base}.json", Body=orjson.dumps(report))
    logger.info(
        "opt-in export ingested",
        extra={"file": location, "status": status, "rows": counts["rows"], "issues": len(issues)},
    )
    return report


def _issue_dict(issue: RowIssue) -> dict[str, Any]:
    position = issue.position
    return {"file": position.source, "row": position.row, "column": issue.column, "reason": issue.reason}


def _issues_csv(issues: list[RowIssue]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("file", "row", "column", "reason"))
    for issue in issues:
        writer.writerow((issue.position.source, issue.position.row, issue.column or "", issue.reason))
    return buffer.getvalue()


def handle_optin_message(body: str) -> list[dict[str, Any]]:
    """One SQS message: the S3 notification of opt-in export files."""
    runtime = _optin_runtime()
    return [
        ingest_optin_file(runtime, location.bucket, location.key)
        for location in created_objects(body)
        if location.key.startswith(runtime.settings.optin_prefix)
    ]


def clear_cached_runtime() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    _optin_runtime.cache_clear()


__all__ = [
    "OPTIN_PREFIX",
    "OptinFunctionSettings",
    "OptinRuntime",
    "clear_cached_runtime",
    "handle_optin_message",
    "ingest_optin_file",
]
