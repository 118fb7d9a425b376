"""Settings of an import function, read from its environment when first needed (never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from cdpbridge.braze.settings import MAX_CONCURRENCY_LIMIT
from cdpbridge.environment import EnvironmentSettings


class ImportSettings(EnvironmentSettings):
    """The import function's environment, besides the Braze client's (cdpbridge.braze.BrazeSettings)."""

    integration: str = Field(min_length=1, alias="INTEGRATION")
    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    field_state_table: str = Field(min_length=3, alias="FIELD_STATE_TABLE")
    run_state_table: str = Field(min_length=3, alias="RUN_STATE_TABLE")
    idempotency_table: str = Field(min_length=3, alias="IDEMPOTENCY_TABLE")
    continuation_queue_url: str = Field(min_length=1, alias="CONTINUATION_QUEUE_URL")
    # Dedupe state is kept per Braze workspace; the secret's name identifies it well enough by default.
    workspace: str = Field(
        min_length=1, validation_alias=AliasChoices("BRAZE_WORKSPACE", "BRAZE_API_KEY_SECRET")
    )
    mapping_prefix: str = Field(default="config/", alias="MAPPING_PREFIX")
    reports_prefix: str = Field(default="reports/", alias="REPORTS_PREFIX")
    retry_prefix: str = Field(default="retry/", alias="RETRY_PREFIX")
    # A file larger than this is split into byte ranges processed by parallel invocations.
    fanout_threshold_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024 * 1024, alias="FANOUT_THRESHOLD_BYTES"
    )
    fanout_part_bytes: int = Field(default=128 * 1024 * 1024, ge=1024 * 1024, alias="FANOUT_PART_BYTES")
    # Stop reading this long before the Lambda deadline: enough to drain requests in flight.
    deadline_margin_ms: int = Field(default=120_000, ge=5_000, alias="DEADLINE_MARGIN_MS")
    # The most requests the engine keeps in flight, as many as the client has connections: one
    # variable, one limit. A ceiling: the engine's window finds its own level under it.
    in_flight: int = Field(
        default=MAX_CONCURRENCY_LIMIT, ge=1, le=MAX_CONCURRENCY_LIMIT, alias="BRAZE_MAX_CONCURRENCY"
    )
    full_refresh: bool = Field(default=False, alias="FULL_REFRESH")
