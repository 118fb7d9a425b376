"""Notify's functions: opt-in ingestion, the tracking pixel, the daily planner and the dispatcher.

Programs are YAML files under ``config/notify/`` in the drop bucket (``<program>.yaml``, the keys
of PROGRAM.yaml; ``send_date`` is left out: the planner plans the next date, the dispatcher looks
at the dates around now). Dropping a file there is all it takes to add a program: the planner's
daily schedule plans every program it finds, the dispatcher dispatches every program it finds.

Each function reads its settings from its environment on its first event (never at import) and
keeps its clients while the container stays warm.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import boto3
import orjson
import yaml
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, ValidationError

from cdpbridge.braze import BrazeClient
from cdpbridge.currents.notification import created_objects
from cdpbridge.engagement import DynamoDbEngagementStore
from cdpbridge.environment import EnvironmentSettings, read_environment, read_function_environment
from cdpbridge.exports import runtime as export_runtime
from cdpbridge.exports.segment import ExportJobStore, SegmentExportError
from cdpbridge.integrations.notify.dispatcher import (
    Dispatcher,
    DispatchReport,
    PixelSettings,
    send_dates_around,
)
from cdpbridge.integrations.notify.export import NOTIFY_EXPORT
from cdpbridge.integrations.notify.optin import read_optin_export
from cdpbridge.integrations.notify.optin_store import DynamoDbOptinStore
from cdpbridge.integrations.notify.pixel import MACHINE_OPEN, gif_response, record_open, token_of_request
from cdpbridge.integrations.notify.planner import PlanUser
from cdpbridge.integrations.notify.planning import plan_program, schedule_plan
from cdpbridge.integrations.notify.program import ProgramConfig
from cdpbridge.integrations.notify.schedules import DynamoDbScheduleStore
from cdpbridge.records import RowIssue
from cdpbridge.sources import SourceError
from cdpbridge.state import DynamoDbCheckpointStore

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

PROGRAMS_PREFIX: Final = "config/notify/"
OPTIN_PREFIX: Final = "inbound/notify/optin/"
# Opt-in events merged into the store per write: a year of history of a big list is millions of rows.
_OPTIN_BATCH: Final = 20_000
# Issues listed in an opt-in report (every one is counted).
_LISTED_ISSUES: Final = 1_000


class ProgramLoadError(ValueError):
    """A program file in the bucket is not valid; the message names the key and each bad setting."""


def read_secret(secret_id: str) -> bytes:
    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    text = value.get("SecretString")
    if text is None:
        return bytes(value["SecretBinary"])
    return text.strip().encode("utf-8")


# -------------------------------------------------------------------------------------------- programs


def program_keys(s3: S3Client, bucket: str, prefix: str = PROGRAMS_PREFIX) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(
            item["Key"] for item in page.get("Contents", []) if item["Key"].endswith((".yaml", ".yml"))
        )
    return sorted(keys)


def load_bucket_program(s3: S3Client, bucket: str, key: str, send_date: date) -> ProgramConfig:
    """The program in ``key`` for ``send_date`` (whatever send_date the file may give)."""
    source = f"s3://{bucket}/{key}"
    try:
        document = yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except yaml.YAMLError as error:
        raise ProgramLoadError(f"{source}: {error}") from error
    if not isinstance(document, dict):
        raise ProgramLoadError(f"{source}: expected a mapping of program settings")
    try:
        return ProgramConfig.model_validate({**document, "send_date": send_date.isoformat()})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ProgramLoadError(f"{source}: {problems}") from error


def _event_time(event: Any) -> datetime:
    """The instant a schedule fired (its ``time``), else now."""
    if isinstance(event, dict) and isinstance(event.get("time"), str):
        try:
            return datetime.fromisoformat(event["time"]).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


# ----------------------------------------------------------------------------------------- the pixel


class PixelFunctionSettings(EnvironmentSettings):
    """The pixel function's environment."""

    pixel_key_secret: str = Field(min_length=1, alias="NOTIFY_PIXEL_KEY_SECRET")
    engagement_table: str = Field(min_length=3, alias="ENGAGEMENT_PROFILE_TABLE")


@dataclass(frozen=True, slots=True)
class PixelRuntime:
    key: bytes
    engagement: DynamoDbEngagementStore


@cache
def _pixel_runtime() -> PixelRuntime:
    settings = read_environment(PixelFunctionSettings)
    return PixelRuntime(
        read_secret(settings.pixel_key_secret), DynamoDbEngagementStore(settings.engagement_table)
    )


def handle_pixel_request(event: Any, metrics: Metrics | None = None) -> dict[str, Any]:
    """A Function URL request (payload 2.0): the GIF, always; the open recorded for a good token."""
    runtime = _pixel_runtime()
    token = token_of_request(event) if isinstance(event, dict) else None
    try:
        outcome = record_open(runtime.key, token, runtime.engagement)
    except Exception:
        # The image must load whatever happens behind it: the failure is logged and counted.
        logger.exception("pixel open not recorded")
        if metrics is not None:
            metrics.add_metric(name="PixelErrors", unit=MetricUnit.Count, value=1)
        return gif_response()
    if metrics is not None:
        name = "PixelOpens" if outcome.recorded else "PixelIgnored"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    # A refused token is said at INFO with its reason (the caller only ever sees the GIF); an open
    # recorded or a prefetch is routine. The token itself is never logged: it names the user.
    refused = not outcome.recorded and outcome.reason != MACHINE_OPEN
    (logger.info if refused else logger.debug)(
        "pixel request", extra={"recorded": outcome.recorded, "reason": outcome.reason}
    )
    return gif_response()


# ------------------------------------------------------------------------------------ opt-in exports


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


# ----------------------------------------------------------------------------------------- the planner


class PlannerSettings(export_runtime.ExportSettings):
    """The planner function's environment: a segment export function's, plus Notify's stores."""

    schedules_table: str = Field(min_length=3, alias="SCHEDULES_TABLE")
    engagement_table: str = Field(min_length=3, alias="ENGAGEMENT_PROFILE_TABLE")
    optin_table: str = Field(min_length=3, alias="NOTIFY_OPTIN_TABLE")
    programs_prefix: str = Field(default=PROGRAMS_PREFIX, alias="NOTIFY_PROGRAMS_PREFIX")


@dataclass(frozen=True, slots=True)
class PlannerRuntime:
    settings: PlannerSettings
    s3: S3Client
    schedules: DynamoDbScheduleStore
    engagement: DynamoDbEngagementStore
    optin: DynamoDbOptinStore
    jobs: ExportJobStore


@cache
def _planner_runtime() -> PlannerRuntime:
    settings = read_environment(PlannerSettings)
    return PlannerRuntime(
        settings,
        boto3.client("s3"),
        DynamoDbScheduleStore(settings.schedules_table),
        DynamoDbEngagementStore(settings.engagement_table),
        DynamoDbOptinStore(settings.optin_table),
        ExportJobStore(DynamoDbCheckpointStore(settings.run_state_table)),
    )


def planned_date(event: Any) -> date:
    if isinstance(event, dict) and isinstance(event.get("send_date"), str):
        return date.fromisoformat(event["send_date"])
    return (_event_time(event) + timedelta(days=1)).date()


def start_plans(event: Any, context: LambdaContext | None, metrics: Metrics | None) -> dict[str, Any]:
    """The daily schedule: a segment export per program found (or per program the event names)."""
    runtime = _planner_runtime()
    send_date = planned_date(event)
    wanted = event.get("programs") if isinstance(event, dict) else None
    results: dict[str, Any] = {}
    for key in program_keys(runtime.s3, runtime.settings.drop_bucket, runtime.settings.programs_prefix):
        try:
            program = load_bucket_program(runtime.s3, runtime.settings.drop_bucket, key, send_date)
        except ProgramLoadError as error:
            logger.error("program not planned", extra={"key": key, "reason": str(error)})
            results[key] = {"status": "invalid", "reason": str(error)}
            continue
        if wanted is not None and program.program not in wanted:
            continue
        trigger = {
            "config": {
                "segment": {"id": program.segment_id},
                "program": program.program,
                "send_date": send_date.isoformat(),
                "output_folder": program.program,
            },
            "run_id": f"notify-{program.program}-{send_date:%Y%m%d}-{datetime.now(UTC):%H%M%S}",
        }
        try:
            step = export_runtime.start_export(
                trigger, NOTIFY_EXPORT, lambda_context=context, metrics=metrics
            )
        except SegmentExportError as error:
            # This program's segment cannot be exported (unknown, no permission): the others still are.
            logger.error("program not planned", extra={"program": program.program, "reason": str(error)})
            results[program.program] = {"status": "failed", "reason": str(error)}
            continue
        results[program.program] = _after_export(runtime, step, metrics)
    return {"send_date": send_date.isoformat(), "programs": results}


def continue_plan(body: str, context: LambdaContext | None, metrics: Metrics | None) -> dict[str, Any]:
    """A continuation of a program's export: when the export is converted, the program is planned."""
    step = export_runtime.continue_export(body, NOTIFY_EXPORT, lambda_context=context, metrics=metrics)
    return _after_export(_planner_runtime(), step, metrics)


def _read_s3_url(s3: S3Client, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _exported_users(s3: S3Client, files: list[str]) -> Iterator[PlanUser]:
    for url in files:
        text = _read_s3_url(s3, url).decode("utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            yield PlanUser(row["external_id"], row["email_sha256"] or None, row["time_zone"] or None)


def _after_export(runtime: PlannerRuntime, step: dict[str, Any], metrics: Metrics | None) -> dict[str, Any]:
    if step.get("status") == "failed":
        job = runtime.jobs.load(str(step["run_id"]))
        reason = job.failure if job is not None else None
        logger.error("program not planned: its segment export failed", extra={"reason": reason})
        return {**step, "reason": reason}
    if step.get("status") not in ("completed", "done") or not step.get("report"):
        return step  # still waiting: a continuation is queued
    report = orjson.loads(_read_s3_url(runtime.s3, step["report"]))
    job = runtime.jobs.load(str(step["run_id"]))
    config = job.config if job is not None else {}
    program_name, send_date = config.get("program"), config.get("send_date")
    if not isinstance(program_name, str) or not isinstance(send_date, str):
        return {**step, "status": "failed", "reason": "the export run's job names no program"}
    key = f"{runtime.settings.programs_prefix}{program_name}.yaml"
    program = load_bucket_program(
        runtime.s3, runtime.settings.drop_bucket, key, date.fromisoformat(send_date)
    )
    users = list(_exported_users(runtime.s3, list(report.get("files") or [])))
    optin = runtime.optin.history([user.email_sha256 for user in users if user.email_sha256])
    planned = plan_program(program, users, optin, runtime.engagement, datetime.now(UTC))
    written = schedule_plan(runtime.schedules, program, planned)
    if metrics is not None:
        metrics.add_metric(name="NotifyPlannedUsers", unit=MetricUnit.Count, value=len(planned.rows))
    logger.info(
        "program planned",
        extra={
            "program": program.program,
            "send_date": send_date,
            "users": len(users),
            "planned": len(planned.rows),
            "by_basis": planned.report.by_basis,
            "inserted": written.inserted,
            "kept_claimed": written.kept_claimed,
        },
    )
    return {
        **step,
        "status": "planned",
        "program": program.program,
        "planned": len(planned.rows),
        "by_basis": planned.report.by_basis,
        "schedules": {
            "inserted": written.inserted,
            "unchanged": written.unchanged,
            "kept": written.kept_claimed,
        },
    }


# -------------------------------------------------------------------------------------- the dispatcher


class DispatchFunctionSettings(EnvironmentSettings):
    """The dispatcher function's environment."""

    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    schedules_table: str = Field(min_length=3, alias="SCHEDULES_TABLE")
    programs_prefix: str = Field(default=PROGRAMS_PREFIX, alias="NOTIFY_PROGRAMS_PREFIX")
    # The pixel's key and Function URL: each recipient gets a signed pixel URL (notify_pixel_url).
    # The URL is given, or asked of Lambda for the pixel function (GetFunctionUrlConfig).
    pixel_key_secret: str = Field(default="", alias="NOTIFY_PIXEL_KEY_SECRET")
    pixel_base_url: str = Field(default="", alias="NOTIFY_PIXEL_BASE_URL")
    pixel_function: str = Field(default="", alias="NOTIFY_PIXEL_FUNCTION")


@dataclass(frozen=True, slots=True)
class DispatchRuntime:
    settings: DispatchFunctionSettings
    s3: S3Client
    store: DynamoDbScheduleStore
    client: BrazeClient
    pixel: PixelSettings | None


def pixel_function_url(function_name: str) -> str:
    """The pixel function's URL; "" (sends go out without pixel URLs, said in the log) when there is
    no function or its URL cannot be read."""
    if not function_name:
        return ""
    try:
        url: str = boto3.client("lambda").get_function_url_config(FunctionName=function_name)["FunctionUrl"]
    except (BotoCoreError, ClientError) as error:
        logger.warning("pixel URL unknown: sends carry no pixel URL", extra={"reason": str(error)})
        return ""
    return url


@cache
def _dispatch_runtime() -> DispatchRuntime:
    environment = read_function_environment(DispatchFunctionSettings)
    settings = environment.function
    pixel = None
    base_url = settings.pixel_base_url or pixel_function_url(settings.pixel_function)
    if base_url and settings.pixel_key_secret:
        pixel = PixelSettings(base_url, read_secret(settings.pixel_key_secret))
    return DispatchRuntime(
        settings,
        boto3.client("s3"),
        DynamoDbScheduleStore(settings.schedules_table),
        environment.braze_client(),
        pixel,
    )


def dispatch_programs(event: Any, metrics: Metrics | None = None) -> dict[str, Any]:
    """Every 5 minutes: each program's due slots, around the schedule's time (or ``now`` given)."""
    runtime = _dispatch_runtime()
    now = _event_time(event)
    if isinstance(event, dict) and isinstance(event.get("now"), str):
        now = datetime.fromisoformat(event["now"]).astimezone(UTC)
    reports: dict[str, Any] = {}
    for key in program_keys(runtime.s3, runtime.settings.drop_bucket, runtime.settings.programs_prefix):
        try:
            program = load_bucket_program(runtime.s3, runtime.settings.drop_bucket, key, now.date())
        except ProgramLoadError as error:
            logger.error("program not dispatched", extra={"key": key, "reason": str(error)})
            reports[key] = {"status": "invalid", "reason": str(error)}
            continue
        report: DispatchReport = Dispatcher(program, runtime.store, runtime.client, runtime.pixel).dispatch(
            now, send_dates_around(now)
        )
        if metrics is not None:
            metrics.add_metric(name="NotifySent", unit=MetricUnit.Count, value=report.sent)
            metrics.add_metric(
                name="NotifySkippedLate", unit=MetricUnit.Count, value=len(report.skipped_late)
            )
            metrics.add_metric(name="NotifyUnconfirmed", unit=MetricUnit.Count, value=len(report.unconfirmed))
        reports[program.program] = report.to_dict()
    return {"now": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "programs": reports}


def clear_cached_runtimes() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    for cached in (_pixel_runtime, _optin_runtime, _planner_runtime, _dispatch_runtime):
        cached.cache_clear()
    export_runtime.clear_cached_runtimes()


__all__ = [
    "DispatchFunctionSettings",
    "OptinFunctionSettings",
    "PixelFunctionSettings",
    "PlannerSettings",
    "ProgramLoadError",
    "clear_cached_runtimes",
    "continue_plan",
    "dispatch_programs",
    "handle_optin_message",
    "handle_pixel_request",
    "ingest_optin_file",
    "load_bucket_program",
    "planned_date",
    "program_keys",
    "start_plans",
]
