"""What an import function does with one SQS message: start, fan out, continue or finish a run.

Messages on an integration's queue are of three kinds:
- an S3 ObjectCreated notification for inbound/<integration>/… (idempotent on bucket, key and etag);
- ``{"type": "cdpbridge.part", …}``: one byte range of a file too big for one invocation;
- ``{"type": "cdpbridge.continue", …}``: a run that stopped at a checkpoint near the deadline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import boto3
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.braze import BrazeClient, BrazeSettings, SecretsManagerKeyProvider
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.s3keys import check_object_key
from cdpbridge.sources import ByteRange, SourceSpec, plan_byte_ranges
from cdpbridge.state import (
    DynamoDbCheckpointStore,
    DynamoDbFieldStateStore,
    DynamoDbSendLedger,
    idempotency_setup,
)
from cdpbridge.sync.artifacts import S3ArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, RunPart, retry_files_pending, run_part
from cdpbridge.sync.settings import ImportSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = Logger(child=True)

PART_MESSAGE = "cdpbridge.part"
CONTINUE_MESSAGE = "cdpbridge.continue"


class MappingNotFoundError(LookupError):
    pass


@dataclass(slots=True)
class ImportRuntime:
    settings: ImportSettings
    services: JobServices
    s3: S3Client
    sqs: SQSClient

    # -- entry points --------------------------------------------------------------------------

    def start(
        self, notification: dict[str, str], context: LambdaContext | None, metrics: Metrics | None
    ) -> None:
        bucket, key, etag = notification["bucket"], notification["key"], notification["etag"]
        mapping_key, mapping = self.find_mapping(bucket, key)
        location = f"s3://{bucket}/{key}"
        started = datetime.now(UTC)
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{hashlib.sha256(f'{location}@{etag}'.encode()).hexdigest()[:12]}"
        size = int(notification.get("size") or 0)
        spec = SourceSpec.model_validate(mapping.source.model_dump())
        ranges: list[ByteRange] = []
        if size >= self.settings.fanout_threshold_bytes:
            ranges = plan_byte_ranges(
                location, spec, target_bytes=self.settings.fanout_part_bytes, s3_client=self.s3
            )
        base = {
            "integration": self.settings.integration,
            "location": location,
            "version": etag,
            "run_id": run_id,
            "started_at": started.isoformat(),
            "mapping_key": mapping_key,
        }
        logger.info(
            "run started", extra={"run_id": run_id, "key": key, "size": size, "parts": max(1, len(ranges))}
        )
        if len(ranges) > 1:
            parts = [
                {
                    **base,
                    "type": PART_MESSAGE,
                    "part_id": str(index),
                    "parts": len(ranges),
                    "byte_range": byte_range.to_dict(),
                }
                for index, byte_range in enumerate(ranges)
            ]
            if not self.services.options.dry_run and retry_files_pending(
                self.services, self.settings.integration
            ):
                # Part 0 replays what earlier runs could not deliver before any part sends a newer
                # row of the same users; it starts the other parts once the replay has drained.
                self._enqueue({**parts[0], "then_parts": parts[1:]})
                return
            for message in parts:
                self._enqueue(message)
            return
        request = JobRequest(self.settings.integration, location, etag, run_id, started, mapping)
        self._run(request, base, context, metrics)

    def continue_part(
        self, message: dict[str, Any], context: LambdaContext | None, metrics: Metrics | None
    ) -> None:
        mapping = self._load_mapping_object(message["location"], message["mapping_key"])
        byte_range = ByteRange.from_dict(message["byte_range"]) if message.get("byte_range") else None
        part = RunPart(
            str(message.get("part_id", "0")),
            int(message.get("parts", 1)),
            byte_range,
            tuple(message.get("held_from") or ()),
        )
        request = JobRequest(
            integration=message["integration"],
            location=message["location"],
            version=message["version"],
            run_id=message["run_id"],
            started_at=datetime.fromisoformat(message["started_at"]),
            mapping=mapping,
            part=part,
        )
        self._run(request, message, context, metrics)

    # -- helpers -------------------------------------------------------------------------------

    def _run(
        self,
        request: JobRequest,
        message: dict[str, Any],
        context: LambdaContext | None,
        metrics: Metrics | None,
    ) -> None:
        margin = self.settings.deadline_margin_ms

        def near_deadline() -> bool:
            return context is not None and context.get_remaining_time_in_millis() < margin

        waiting_parts: list[dict[str, Any]] = message.get("then_parts") or []

        def start_waiting_parts(replay_retry_files: list[str]) -> None:
            for waiting in waiting_parts:
                self._enqueue({**waiting, "held_from": replay_retry_files})

        outcome = run_part(
            request,
            self.services,
            should_stop=near_deadline,
            on_replayed=start_waiting_parts if waiting_parts else None,
        )
        if outcome.aborted_reason:
            raise RuntimeError(outcome.aborted_reason)
        if not outcome.finished:
            self._enqueue(
                {
                    # Still carries the waiting parts: a replay stopped near the deadline starts
                    # them in a later invocation (run_part calls on_replayed once, when it ends).
                    **message,
                    "type": CONTINUE_MESSAGE,
                    "part_id": request.part.part_id,
                    "parts": request.part.parts,
                    "byte_range": request.part.byte_range.to_dict() if request.part.byte_range else None,
                }
            )
            return
        if outcome.report is not None:
            _publish_metrics(metrics, outcome)
            logger.info(
                "run finished",
                extra={
                    "run_id": request.run_id,
                    "report": outcome.report_location,
                    "rows_read": outcome.counters.rows_read,
                    "rejects": outcome.counters.rows_rejected,
                },
            )

    def _enqueue(self, message: dict[str, Any]) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.continuation_queue_url, MessageBody=orjson.dumps(message).decode()
        )

    def find_mapping(self, bucket: str, key: str) -> tuple[str, MappingConfig]:
        """config/<integration>/<feed>.yaml for files under a feed folder, else config/<integration>.yaml."""
        integration = self.settings.integration
        inbound = f"inbound/{integration}/"
        relative = key[len(inbound) :] if key.startswith(inbound) else key
        candidates: list[str] = []
        if "/" in relative:
            feed = relative.split("/", 1)[0]
            candidates += [
                f"{self.settings.mapping_prefix}{integration}/{feed}.{ext}" for ext in ("yaml", "yml", "json")
            ]
        candidates += [
            f"{self.settings.mapping_prefix}{integration}.{ext}" for ext in ("yaml", "yml", "json")
        ]
        for candidate in candidates:
            try:
                return candidate, self._load_mapping_object(f"s3://{bucket}/{key}", candidate)
            except self.s3.exceptions.NoSuchKey:
                continue
        raise MappingNotFoundError(
            f"no mapping config for s3://{bucket}/{key}: put one at any of s3://{bucket}/"
            + f", s3://{bucket}/".join(candidates)
        )

    def _load_mapping_object(self, location: str, mapping_key: str) -> MappingConfig:
        bucket = location.removeprefix("s3://").split("/", 1)[0]
        body = self.s3.get_object(Bucket=bucket, Key=mapping_key)["Body"].read()
        return load_mapping(body.decode("utf-8"))


def _publish_metrics(metrics: Metrics | None, outcome: PartOutcome) -> None:
    if metrics is None:
        return
    counters = outcome.counters
    metrics.add_metric(
        name="RowsSynced", unit=MetricUnit.Count, value=counters.rows_read - counters.rows_rejected
    )
    metrics.add_metric(name="DataPointsSent", unit=MetricUnit.Count, value=counters.data_points_sent)
    metrics.add_metric(name="DataPointsSaved", unit=MetricUnit.Count, value=counters.data_points_saved)
    metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=counters.rate_limited)
    metrics.add_metric(
        name="Rejects",
        unit=MetricUnit.Count,
        value=counters.rows_rejected + counters.objects_rejected_by_braze,
    )
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=counters.requests)


@cache
def _runtime(integration: str) -> ImportRuntime:
    """Built on the first message of a container and reused while it stays warm."""
    settings = ImportSettings.from_env()
    if settings.integration != integration:
        raise ValueError(f"function for {integration!r} deployed with INTEGRATION={settings.integration!r}")
    braze_settings = BrazeSettings.from_env()
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    if not braze_settings.api_key_secret_id:
        raise ValueError("BRAZE_API_KEY_SECRET is not set: the REST key is read from Secrets Manager")
    client = BrazeClient(
        braze_settings,
        SecretsManagerKeyProvider(braze_settings.api_key_secret_id, ttl_s=braze_settings.api_key_cache_ttl_s),
    )
    services = JobServices(
        client=client,
        field_state=DynamoDbFieldStateStore(settings.field_state_table),
        ledger=DynamoDbSendLedger(settings.run_state_table),
        checkpoints=DynamoDbCheckpointStore(settings.run_state_table),
        artifacts=S3ArtifactStore(settings.drop_bucket, s3),
        options=EngineOptions(
            workspace=settings.workspace,
            track_cap=braze_settings.track_cap,
            in_flight=settings.in_flight,
            full_refresh=settings.full_refresh,
        ),
        s3_client=s3,
        reports_prefix=settings.reports_prefix,
        retry_prefix=settings.retry_prefix,
    )
    return ImportRuntime(settings, services, s3, sqs)


@cache
def _idempotent_start(integration: str) -> Any:
    runtime = _runtime(integration)
    persistence, config = idempotency_setup(runtime.settings.idempotency_table)

    def start(notification: dict[str, str]) -> dict[str, str]:
        runtime.start(notification, _CURRENT.context, _CURRENT.metrics)
        return {"status": "started", "key": notification["key"]}

    decorate = idempotent_function(
        data_keyword_argument="notification", persistence_store=persistence, config=config
    )
    return decorate(start), config


@dataclass(slots=True)
class _Invocation:
    context: LambdaContext | None = None
    metrics: Metrics | None = None


_CURRENT = _Invocation()


def handle_message(
    body: str,
    *,
    integration: str,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Everything an import function does with one SQS record (see cdpbridge.sync.runtime)."""
    message = orjson.loads(body)
    _CURRENT.context, _CURRENT.metrics = lambda_context, metrics
    runtime = _runtime(integration)
    kind = message.get("type")
    if kind in (PART_MESSAGE, CONTINUE_MESSAGE):
        runtime.continue_part(message, lambda_context, metrics)
        return
    records = message.get("Records")
    if not isinstance(records, list):
        raise ValueError("unrecognised message: neither an S3 notification nor a cdpbridge run message")
    start, config = _idempotent_start(integration)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3_object = record["s3"]["object"]
        start(
            notification={
                "bucket": record["s3"]["bucket"]["name"],
                "key": check_object_key(unquote_plus(s3_object["key"]), (f"inbound/{integration}/",)),
                "etag": str(s3_object.get("eTag") or s3_object.get("etag") or s3_object.get("sequencer", "")),
                "size": str(s3_object.get("size", 0)),
            }
        )
