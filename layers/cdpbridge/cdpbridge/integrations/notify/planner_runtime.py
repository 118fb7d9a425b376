"""The planner function: each program's segment exported, then every user's slot scheduled."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from cdpbridge.engagement import DynamoDbEngagementStore
from cdpbridge.environment import read_environment
from cdpbridge.exports import runtime as export_runtime
from cdpbridge.exports.segment import ExportJobStore, SegmentExportError
from cdpbridge.integrations.notify.bucket_programs import (
    PROGRAMS_PREFIX,
    ProgramLoadError,
    event_time,
    load_bucket_program,
    program_keys,
)
from cdpbridge.integrations.notify.export import NOTIFY_EXPORT
from cdpbridge.integrations.notify.optin_store import DynamoDbOptinStore
from cdpbridge.integrations.notify.planner import PlanUser
from cdpbridge.integrations.notify.planning import plan_program, schedule_plan
from cdpbridge.integrations.notify.schedules import DynamoDbScheduleStore
from cdpbridge.state import DynamoDbCheckpointStore

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)


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
    return (event_time(event) + timedelta(days=1)).date()


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


def clear_cached_runtime() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    _planner_runtime.cache_clear()
    export_runtime.clear_cached_runtimes()


__all__ = [
    "PlannerRuntime",
    "PlannerSettings",
    "clear_cached_runtime",
    "continue_plan",
    "planned_date",
    "start_plans",
]
