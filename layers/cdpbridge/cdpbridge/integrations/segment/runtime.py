"""What the relay function builds from its environment on its first event.

The handler stays thin: it passes the batch here. Settings and clients are read once per container,
never at import. (The webhook's, lighter, is ``webhook_runtime``.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import AliasChoices, Field

from cdpbridge.braze.settings import MAX_CONCURRENCY_LIMIT
from cdpbridge.environment import (
    EnvironmentSettings,
    EnvironmentSettingsError,
    read_function_environment,
)
from cdpbridge.integrations.segment.cohorts import (
    CohortCredentials,
    CohortSyncResult,
    collect,
    read_cohort_credentials,
    sync_cohorts,
)
from cdpbridge.integrations.segment.options import segment_options
from cdpbridge.integrations.segment.relay import (
    MINIMAL_CONFIG,
    QueuedMessage,
    RelayOutcome,
    RelayServices,
    relay_batch,
)
from cdpbridge.integrations.segment.webhook import unpack_calls
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.state import DynamoDbFieldStateStore, DynamoDbSendLedger
from cdpbridge.sync.artifacts import S3ArtifactStore
from cdpbridge.sync.engine import EngineOptions

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

logger = Logger(child=True)

# The relay's mapping config: its own, else the integration's, else the minimal one.
RELAY_CONFIG_KEYS: Final = ("segment/webhook.yaml", "segment.yaml")


class RelaySettings(EnvironmentSettings):
    """The Segment relay function's environment, besides the Braze client's."""

    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    field_state_table: str = Field(min_length=3, alias="FIELD_STATE_TABLE")
    run_state_table: str = Field(min_length=3, alias="RUN_STATE_TABLE")
    workspace: str = Field(
        min_length=1, validation_alias=AliasChoices("BRAZE_WORKSPACE", "BRAZE_API_KEY_SECRET")
    )
    mapping_prefix: str = Field(default="config/", alias="MAPPING_PREFIX")
    reports_prefix: str = Field(default="reports/", alias="REPORTS_PREFIX")
    in_flight: int = Field(default=4, ge=1, le=MAX_CONCURRENCY_LIMIT, alias="BRAZE_MAX_CONCURRENCY")
    # Secret holding {"partner_api_key": ..., "data_import_key": ...} for cohorts; empty: none.
    cohort_secret: str | None = Field(default=None, alias="SEGMENT_COHORT_SECRET")


@dataclass(slots=True)
class RelayRuntime:
    settings: RelaySettings
    services: RelayServices
    s3: Any

    def cohort_credentials(self) -> CohortCredentials:
        secret_id = self.settings.cohort_secret
        if not secret_id:
            raise EnvironmentSettingsError(
                "SEGMENT_COHORT_SECRET: required when options.cohorts.enabled is true"
            )
        return read_cohort_credentials(secret_id, boto3.client("secretsmanager"))


def _calls(message: QueuedMessage) -> list[dict[str, Any]]:
    try:
        return unpack_calls(message.body)
    except ValueError:
        return []  # rejected by the users.track pass already


@cache
def relay_runtime() -> RelayRuntime:
    environment = read_function_environment(RelaySettings)
    settings, braze_settings = environment.function, environment.braze
    s3 = boto3.client("s3")
    services = RelayServices(
        client=environment.braze_client(),
        field_state=DynamoDbFieldStateStore(settings.field_state_table),
        ledger=DynamoDbSendLedger(settings.run_state_table),
        artifacts=S3ArtifactStore(settings.drop_bucket, s3),
        options=EngineOptions(
            workspace=settings.workspace, track_cap=braze_settings.track_cap, in_flight=settings.in_flight
        ),
        reports_prefix=settings.reports_prefix,
    )
    return RelayRuntime(settings, services, s3)


def relay_config(runtime: RelayRuntime) -> MappingConfig:
    """Read on every batch, so an edited config applies to the next batch without a redeploy."""
    for name in RELAY_CONFIG_KEYS:
        key = runtime.settings.mapping_prefix + name
        try:
            body = runtime.s3.get_object(Bucket=runtime.settings.drop_bucket, Key=key)["Body"].read()
        except runtime.s3.exceptions.NoSuchKey:
            continue
        return load_mapping(body.decode("utf-8"))
    return load_mapping(MINIMAL_CONFIG)


def handle_relay_batch(
    records: list[QueuedMessage], *, batch_id: str, metrics: Metrics | None = None
) -> RelayOutcome:
    """The whole of the relay function: queue messages in, the ones to deliver again out."""
    runtime = relay_runtime()
    config = relay_config(runtime)
    outcome = relay_batch(records, config, runtime.services, batch_id=batch_id)
    counters = outcome.counters
    options = segment_options(config)
    cohorts: CohortSyncResult | None = None
    if options.cohorts.enabled and outcome.aborted_reason is None and runtime.services.client is not None:
        # After users.track: Braze adds to a cohort only users that exist.
        changes = collect((call for message in records for call in _calls(message)), options)
        cohorts = sync_cohorts(changes, runtime.services.client, runtime.cohort_credentials(), options)
    logger.info(
        "relayed a batch",
        extra={
            "messages": len(records),
            "failed_messages": len(outcome.failed_message_ids),
            "counters": counters.to_dict(),
            "rejects": outcome.rejects_location,
            "aborted": outcome.aborted_reason,
            "cohorts": None if cohorts is None else asdict(cohorts),
        },
    )
    if metrics is not None:
        synced = counters.rows_read - counters.rows_rejected
        rejected = counters.rows_rejected + counters.objects_rejected_by_braze
        metrics.add_metric(name="RowsSynced", unit=MetricUnit.Count, value=synced)
        metrics.add_metric(name="DataPointsSaved", unit=MetricUnit.Count, value=counters.data_points_saved)
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=counters.rate_limited)
        metrics.add_metric(name="Rejects", unit=MetricUnit.Count, value=rejected)
    return outcome


__all__ = [
    "RelaySettings",
    "handle_relay_batch",
    "relay_config",
    "relay_runtime",
]
