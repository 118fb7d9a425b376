"""What a segment export function does with its two triggers.

- A schedule (EventBridge) whose Input carries the export config (``{"config": {...}}``) or the S3 key
  of one in the drop bucket (``{"config_key": "config/blueconic-export.yaml"}``), optionally with
  ``"segment"`` (an id or name) overriding the config's segment. An event without Input (the plain
  "Scheduled Event") reads the config at EXPORT_CONFIG_KEY.
- ``{"type": "cdpbridge.export.continue", "integration", "run_id", "token"}`` messages on the
  function's own queue, which it sends itself (DelaySeconds <= 900) when the export is not ready
  before the invocation ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal

import boto3
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cdpbridge.braze import BrazeClient
from cdpbridge.environment import EnvironmentSettings, read_function_environment
from cdpbridge.exports.segment import (
    ExportIntegration,
    ExportJob,
    ExportJobStore,
    ExportStep,
    ExportWaitPolicy,
    SegmentExporter,
    SegmentExportError,
    parse_export_document,
    sqs_delay_seconds,
)
from cdpbridge.state import CheckpointStore, DynamoDbCheckpointStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = Logger(child=True)

CONTINUE_EXPORT_MESSAGE: Final = "cdpbridge.export.continue"


class ExportSettings(EnvironmentSettings):
    """The export function's environment, besides the Braze client's (cdpbridge.braze.BrazeSettings)."""

    integration: str = Field(min_length=1, alias="INTEGRATION")
    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    run_state_table: str = Field(min_length=3, alias="RUN_STATE_TABLE")
    continuation_queue_url: str = Field(min_length=1, alias="CONTINUATION_QUEUE_URL")
    # The folder Braze's S3 export credentials write into, inside the drop bucket ("" = bucket root).
    export_path: str = Field(default="", alias="SEGMENT_EXPORT_PATH")
    config_key: str = Field(default="", alias="EXPORT_CONFIG_KEY")
    outbound_prefix: str = Field(default="outbound/", alias="OUTBOUND_PREFIX")
    reports_prefix: str = Field(default="reports/", alias="REPORTS_PREFIX")
    # Stop working this long before the Lambda deadline: time to save the job and queue the rest.
    deadline_margin_ms: int = Field(default=30_000, ge=1_000, alias="DEADLINE_MARGIN_MS")
    poll_initial_s: float = Field(default=10.0, gt=0, alias="EXPORT_POLL_INITIAL_S")
    poll_max_s: float = Field(default=120.0, gt=0, alias="EXPORT_POLL_MAX_S")
    quiet_period_s: float = Field(default=30.0, ge=0, alias="EXPORT_QUIET_PERIOD_S")
    max_wait_s: float = Field(default=3600.0, gt=0, alias="EXPORT_MAX_WAIT_S")
    inline_wait_max_s: float = Field(default=60.0, ge=0, alias="EXPORT_INLINE_WAIT_MAX_S")
    convert_min_budget_s: float = Field(default=300.0, ge=0, alias="EXPORT_CONVERT_MIN_BUDGET_S")

    @property
    def default_config_key(self) -> str:
        return self.config_key or f"config/{self.integration}-export.yaml"

    @property
    def wait_policy(self) -> ExportWaitPolicy:
        return ExportWaitPolicy(
            initial_s=self.poll_initial_s,
            max_s=self.poll_max_s,
            quiet_s=self.quiet_period_s,
            max_wait_s=self.max_wait_s,
        )


class ExportTrigger(BaseModel):
    """A schedule's Input (or a manual invocation's payload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: dict[str, Any] | None = None
    config_key: str | None = Field(default=None, min_length=1)
    segment: str | None = None
    run_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ContinueExport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cdpbridge.export.continue"]
    integration: str
    run_id: str = Field(min_length=1)
    token: int = Field(ge=0)


@dataclass(slots=True)
class ExportRuntime:
    integration: ExportIntegration
    settings: ExportSettings
    client: BrazeClient
    s3: S3Client
    sqs: SQSClient
    checkpoints: CheckpointStore

    @property
    def jobs(self) -> ExportJobStore:
        return ExportJobStore(self.checkpoints)

    def exporter(self) -> SegmentExporter:
        settings = self.settings
        return SegmentExporter(
            integration=self.integration,
            client=self.client,
            s3=self.s3,
            bucket=settings.drop_bucket,
            jobs=self.jobs,
            policy=settings.wait_policy,
            export_path=settings.export_path,
            outbound_prefix=settings.outbound_prefix,
            reports_prefix=settings.reports_prefix,
            inline_wait_max_s=settings.inline_wait_max_s,
            convert_min_budget_s=settings.convert_min_budget_s,
        )

    # -- triggers ------------------------------------------------------------------------------

    def start(self, event: Any, context: LambdaContext | None, metrics: Metrics | None) -> dict[str, Any]:
        trigger = self._trigger(event)
        data, source = self._config_document(trigger)
        if trigger.segment:
            data = {**data, "segment": trigger.segment}
        config = self.integration.parse_config(data, source)
        exporter = self.exporter()
        job = exporter.begin(config, run_id=trigger.run_id)
        return self._drive(exporter, job, context, metrics)

    def resume(self, body: str, context: LambdaContext | None, metrics: Metrics | None) -> dict[str, Any]:
        try:
            message = ContinueExport.model_validate_json(body)
        except ValidationError as error:
            raise SegmentExportError(f"unrecognised message on the export queue: {error}") from None
        if message.integration != self.integration.name:
            raise SegmentExportError(
                f"continuation of a {message.integration} export reached the {self.integration.name} function"
            )
        job = self.jobs.load(message.run_id)
        if job is None:
            # The run-state item expired or was never stored: nothing is left to continue.
            logger.warning("continuation for an unknown export run dropped", extra={"run_id": message.run_id})
            return {"run_id": message.run_id, "status": "unknown"}
        if job.token != message.token:
            logger.info(
                "duplicate continuation dropped",
                extra={"run_id": job.run_id, "token": message.token, "current": job.token},
            )
            return {"run_id": job.run_id, "status": "duplicate"}
        job.invocations += 1
        return self._drive(self.exporter(), job, context, metrics)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _trigger(event: Any) -> ExportTrigger:
        if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
            # A rule without Input delivers its notification: the default config applies.
            return ExportTrigger()
        try:
            return ExportTrigger.model_validate(event)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or '(event)'}: {item['msg']}"
                for item in error.errors(include_url=False)
            )
            raise SegmentExportError(f"unrecognised export trigger: {problems}") from None

    def _config_document(self, trigger: ExportTrigger) -> tuple[dict[str, Any], str]:
        if trigger.config is not None:
            if trigger.config_key is not None:
                raise SegmentExportError("the export trigger gives both config and config_key: give one")
            return trigger.config, "the export trigger's config"
        key = trigger.config_key or self.settings.default_config_key
        source = f"s3://{self.settings.drop_bucket}/{key}"
        try:
            body = self.s3.get_object(Bucket=self.settings.drop_bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            raise SegmentExportError(f"{source}: no export config there") from None
        data = parse_export_document(body.decode("utf-8"), source)
        if not isinstance(data, dict):
            raise SegmentExportError(f"{source}: the export config must be a mapping of keys to values")
        return data, source

    def _drive(
        self,
        exporter: SegmentExporter,
        job: ExportJob,
        context: LambdaContext | None,
        metrics: Metrics | None,
    ) -> dict[str, Any]:
        margin_s = self.settings.deadline_margin_ms / 1000

        def budget_s() -> float:
            if context is None:
                return math.inf
            return context.get_remaining_time_in_millis() / 1000 - margin_s

        step = exporter.advance(job, budget_s)
        if not step.finished:
            return self._continue_later(job, step)
        return self._finished(step, metrics)

    def _continue_later(self, job: ExportJob, step: ExportStep) -> dict[str, Any]:
        # The token changes before the message goes out: only this message may carry the job on.
        job.token += 1
        self.jobs.save(job)
        delay = sqs_delay_seconds(step.delay_s)
        message = {
            "type": CONTINUE_EXPORT_MESSAGE,
            "integration": job.integration,
            "run_id": job.run_id,
            "token": job.token,
        }
        self.sqs.send_message(
            QueueUrl=self.settings.continuation_queue_url,
            MessageBody=orjson.dumps(message).decode(),
            DelaySeconds=delay,
        )
        logger.info(
            "segment export continues in a new invocation",
            extra={"run_id": job.run_id, "phase": job.phase, "delay_s": delay, "token": job.token},
        )
        return {"run_id": job.run_id, "status": "waiting", "phase": job.phase, "continue_in_s": delay}

    @staticmethod
    def _finished(step: ExportStep, metrics: Metrics | None) -> dict[str, Any]:
        job, report = step.job, step.report
        if report is None:
            # Finished by an earlier invocation; this one was a repeated delivery.
            return {"run_id": job.run_id, "status": job.phase, "report": job.report_location}
        if metrics is not None:
            if job.phase == "failed":
                metrics.add_metric(name="ExportsFailed", unit=MetricUnit.Count, value=1)
            else:
                metrics.add_metric(name="ExportedUsers", unit=MetricUnit.Count, value=int(report["users"]))
                metrics.add_metric(
                    name="ExportWaitSeconds", unit=MetricUnit.Seconds, value=float(report["duration_s"])
                )
        return {"run_id": job.run_id, "status": report["status"], "report": job.report_location}


@cache
def _runtime(integration: ExportIntegration) -> ExportRuntime:
    """Built on the first event of a container and reused while it stays warm."""
    environment = read_function_environment(ExportSettings)
    settings = environment.function
    if settings.integration != integration.name:
        raise ValueError(
            f"function for {integration.name!r} deployed with INTEGRATION={settings.integration!r}"
        )
    client = environment.braze_client()
    return ExportRuntime(
        integration=integration,
        settings=settings,
        client=client,
        s3=boto3.client("s3"),
        sqs=boto3.client("sqs"),
        checkpoints=DynamoDbCheckpointStore(settings.run_state_table),
    )


def start_export(
    event: Any,
    integration: ExportIntegration,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """The schedule side of an export function."""
    return _runtime(integration).start(event, lambda_context, metrics)


def continue_export(
    body: str,
    integration: ExportIntegration,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """One continuation message of an export function's own queue."""
    return _runtime(integration).resume(body, lambda_context, metrics)


def clear_cached_runtimes() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    _runtime.cache_clear()
