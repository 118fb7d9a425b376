"""What an import function does with one queue message: start, fan out, continue or finish a run.

The messages are typed (cdpbridge.sync.messages) and arrive parsed: an S3 notification starts a run
(idempotent on bucket, key and etag), a part message runs one byte range of a fanned-out file, a
continuation resumes a part that stopped at a checkpoint near the deadline.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.environment import read_function_environment
from cdpbridge.integrations.registry import IntegrationEntry, get_integration
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.s3keys import check_object_key
from cdpbridge.sources import ByteRange, plan_byte_ranges
from cdpbridge.state import (
    DynamoDbCheckpointStore,
    DynamoDbFieldStateStore,
    DynamoDbSendLedger,
    DynamoDbSnapshotRoster,
    idempotency_setup,
)
from cdpbridge.sync.artifacts import S3ArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import FanOut, JobRequest, JobServices, PartOutcome, RunPart, plan_fan_out, run_part
from cdpbridge.sync.messages import (
    ContinueMessage,
    ObjectVersion,
    PartMessage,
    S3Location,
    S3Notification,
)
from cdpbridge.sync.settings import ImportSettings
from cdpbridge.sync.snapshots import reads_whole_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = Logger(child=True)


class MappingNotFoundError(LookupError):
    pass


@dataclass(slots=True)
class ImportRuntime:
    settings: ImportSettings
    integration: IntegrationEntry
    services: JobServices
    s3: S3Client
    sqs: SQSClient

    # -- entry points --------------------------------------------------------------------------

    def start(self, notified: ObjectVersion, context: LambdaContext | None, metrics: Metrics | None) -> None:
        location = notified.location
        mapping_key, mapping = self.find_mapping(location)
        started = datetime.now(UTC)
        digest = hashlib.sha256(f"{location.uri}@{notified.etag}".encode()).hexdigest()[:12]
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{digest}"
        first = PartMessage(
            integration=self.settings.integration,
            location=location,
            version=notified.etag,
            run_id=run_id,
            started_at=started,
            mapping_key=mapping_key,
        )
        request = JobRequest(
            self.settings.integration,
            location,
            notified.etag,
            run_id,
            started,
            mapping,
            config_name=PurePosixPath(mapping_key).stem,
        )
        ranges = []
        # A snapshot is never split: what it leaves out is known only once all of it is read.
        if notified.size >= self.settings.fanout_threshold_bytes and not reads_whole_file(mapping):
            ranges = plan_byte_ranges(
                location.uri,
                mapping.source.reader_spec(),
                target_bytes=self.settings.fanout_part_bytes,
                s3_client=self.s3,
            )
        logger.info(
            "run started",
            extra={
                "run_id": run_id,
                "key": location.key,
                "size": notified.size,
                "parts": max(1, len(ranges)),
            },
        )
        if len(ranges) < 2:
            self._run(request, first, context, metrics)
            return
        fan_out = plan_fan_out(request, ranges, self.services)
        waiting = tuple(_part_message(first, part) for part in fan_out.after_replay)
        for part in fan_out.start_now:
            # Part 0 replays what earlier runs could not deliver before any part sends a newer row
            # of the same users; it starts the waiting parts once the replay has drained.
            message = _part_message(first, part)
            self._enqueue(
                message.model_copy(update={"then_parts": waiting}) if part.part_id == "0" else message
            )

    def continue_part(
        self, message: PartMessage, context: LambdaContext | None, metrics: Metrics | None
    ) -> None:
        mapping = self._load_mapping_object(message.location.bucket, message.mapping_key)
        request = JobRequest(
            integration=message.integration,
            location=message.location,
            version=message.version,
            run_id=message.run_id,
            started_at=message.started_at,
            mapping=mapping,
            part=_run_part(message),
            config_name=PurePosixPath(message.mapping_key).stem,
        )
        self._run(request, message, context, metrics)

    # -- helpers -------------------------------------------------------------------------------

    def _run(
        self,
        request: JobRequest,
        message: PartMessage,
        context: LambdaContext | None,
        metrics: Metrics | None,
    ) -> None:
        margin = self.settings.deadline_margin_ms

        def near_deadline() -> bool:
            return context is not None and context.get_remaining_time_in_millis() < margin

        waiting = FanOut((), tuple(_run_part(part) for part in message.then_parts))

        def start_waiting_parts(replay_retry_files: list[str]) -> None:
            for part in waiting.released(replay_retry_files):
                self._enqueue(_part_message(message, part, held_from=part.held_from))

        outcome = run_part(
            request,
            self.services,
            should_stop=near_deadline,
            on_replayed=start_waiting_parts if waiting.after_replay else None,
        )
        if outcome.aborted_reason:
            raise RuntimeError(outcome.aborted_reason)
        if not outcome.finished:
            # Still carries the waiting parts: a replay stopped near the deadline starts them in a
            # later invocation (run_part calls on_replayed once, when it ends).
            self._enqueue(
                ContinueMessage.model_validate(message.model_dump() | {"type": "cdpbridge.continue"})
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
                    "users_missing_in_braze": outcome.counters.users_missing_in_braze,
                },
            )

    def _enqueue(self, message: PartMessage) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.continuation_queue_url, MessageBody=message.model_dump_json()
        )

    def find_mapping(self, location: S3Location) -> tuple[str, MappingConfig]:
        """config/<integration>/<feed>.yaml for files under a feed folder, else config/<integration>.yaml."""
        name = self.integration.name
        inbound = self.integration.inbound_prefix
        key = location.key
        relative = key[len(inbound) :] if key.startswith(inbound) else key
        candidates: list[str] = []
        if "/" in relative:
            feed = relative.split("/", 1)[0]
            candidates += [
                f"{self.settings.mapping_prefix}{name}/{feed}.{ext}" for ext in ("yaml", "yml", "json")
            ]
        candidates += [f"{self.settings.mapping_prefix}{name}.{ext}" for ext in ("yaml", "yml", "json")]
        for candidate in candidates:
            try:
                return candidate, self._load_mapping_object(location.bucket, candidate)
            except self.s3.exceptions.NoSuchKey:
                continue
        bucket = location.bucket
        raise MappingNotFoundError(
            f"no mapping config for {location.uri}: put one at any of s3://{bucket}/"
            + f", s3://{bucket}/".join(candidates)
        )

    def _load_mapping_object(self, bucket: str, mapping_key: str) -> MappingConfig:
        body = self.s3.get_object(Bucket=bucket, Key=mapping_key)["Body"].read()
        return load_mapping(body.decode("utf-8"))


def _part_message(
    run: PartMessage, part: RunPart, *, held_from: tuple[str, ...] | None = None
) -> PartMessage:
    """The message that runs ``part`` of ``run`` (``held_from``: it was started after a replay)."""
    of_the_run = run.model_dump(include=_RUN_FIELDS)
    return PartMessage.model_validate(
        of_the_run
        | {
            "part_id": part.part_id,
            "parts": part.parts,
            "byte_range": part.byte_range.to_dict() if part.byte_range is not None else None,
            "held_from": held_from,
        }
    )


# What every part message of a run carries alike.
_RUN_FIELDS: Final = {"integration", "location", "version", "run_id", "started_at", "mapping_key"}


def _run_part(message: PartMessage) -> RunPart:
    byte_range = message.byte_range
    return RunPart(
        message.part_id,
        message.parts,
        ByteRange(byte_range.start, byte_range.end, byte_range.first_row) if byte_range is not None else None,
        message.held_from or (),
    )


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
    environment = read_function_environment(ImportSettings)
    settings, braze_settings = environment.function, environment.braze
    if settings.integration != integration:
        raise ValueError(f"function for {integration!r} deployed with INTEGRATION={settings.integration!r}")
    entry = get_integration(integration)
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    client = environment.braze_client()
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
        roster=DynamoDbSnapshotRoster(settings.run_state_table),
        # Lambda sets this for every function; the report prices the run's GB-seconds with it.
        function_memory_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")),
    )
    return ImportRuntime(settings, entry, services, s3, sqs)


@cache
def _idempotent_start(integration: str) -> tuple[Any, IdempotencyConfig]:
    """The run start, idempotent on the notified object (bucket, key and etag) as Powertools
    documents it: the data as a keyword argument, the Lambda context registered on the config."""
    runtime = _runtime(integration)
    persistence, config = idempotency_setup(runtime.settings.idempotency_table)

    def start(
        *, notified: ObjectVersion, context: LambdaContext | None, metrics: Metrics | None
    ) -> dict[str, str]:
        runtime.start(notified, context, metrics)
        return {"status": "started", "key": notified.key}

    decorate = idempotent_function(
        data_keyword_argument="notified", persistence_store=persistence, config=config
    )
    return decorate(start), config


def handle_message(
    message: S3Notification | PartMessage,
    *,
    integration: str,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Everything an import function does with one parsed queue message (see cdpbridge.sync.runtime)."""
    runtime = _runtime(integration)
    if isinstance(message, PartMessage):
        runtime.continue_part(message, lambda_context, metrics)
        return
    start, config = _idempotent_start(integration)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    for record in message.records:
        if not record.is_object_created:
            continue
        notified = ObjectVersion.of(record)
        check_object_key(notified.key, (f"inbound/{integration}/",))
        start(notified=notified, context=lambda_context, metrics=metrics)
