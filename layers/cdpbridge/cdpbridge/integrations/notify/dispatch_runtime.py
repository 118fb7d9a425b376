"""The dispatcher function: every 5 minutes, each program's due slots sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from cdpbridge.braze import BrazeClient
from cdpbridge.environment import EnvironmentSettings, read_function_environment
from cdpbridge.integrations.notify.bucket_programs import (
    PROGRAMS_PREFIX,
    ProgramLoadError,
    event_time,
    load_bucket_program,
    program_keys,
)
from cdpbridge.integrations.notify.dispatcher import (
    Dispatcher,
    DispatchReport,
    PixelSettings,
    send_dates_around,
)
from cdpbridge.integrations.notify.runtime import read_secret
from cdpbridge.integrations.notify.schedules import DynamoDbScheduleStore

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)


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
    now = event_time(event)
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


def clear_cached_runtime() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    _dispatch_runtime.cache_clear()


__all__ = [
    "DispatchFunctionSettings",
    "DispatchRuntime",
    "clear_cached_runtime",
    "dispatch_programs",
    "pixel_function_url",
]
