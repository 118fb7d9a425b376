"""Settings of an import function, read from its environment when first needed (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ImportSettings(BaseModel):
    """What an import function needs besides the Braze settings (cdpbridge.braze.BrazeSettings)."""

    model_config = ConfigDict(frozen=True)

    integration: str = Field(min_length=1)
    drop_bucket: str = Field(min_length=3)
    field_state_table: str = Field(min_length=3)
    run_state_table: str = Field(min_length=3)
    idempotency_table: str = Field(min_length=3)
    continuation_queue_url: str = Field(min_length=1)
    # Dedupe state is kept per Braze workspace; the secret's name identifies it well enough by default.
    workspace: str = Field(min_length=1)
    mapping_prefix: str = "config/"
    reports_prefix: str = "reports/"
    retry_prefix: str = "retry/"
    # A file larger than this is split into byte ranges processed by parallel invocations.
    fanout_threshold_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    fanout_part_bytes: int = Field(default=128 * 1024 * 1024, ge=1024 * 1024)
    # Stop reading this long before the Lambda deadline: enough to drain requests in flight.
    deadline_margin_ms: int = Field(default=120_000, ge=5_000)
    in_flight: int = Field(default=16, ge=1, le=256)
    full_refresh: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImportSettings:
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {
            "integration": env.get("INTEGRATION", ""),
            "drop_bucket": env.get("DROP_BUCKET", ""),
            "field_state_table": env.get("FIELD_STATE_TABLE", ""),
            "run_state_table": env.get("RUN_STATE_TABLE", ""),
            "idempotency_table": env.get("IDEMPOTENCY_TABLE", ""),
            "continuation_queue_url": env.get("CONTINUATION_QUEUE_URL", ""),
            "workspace": env.get("BRAZE_WORKSPACE") or env.get("BRAZE_API_KEY_SECRET", ""),
        }
        optional = {
            "mapping_prefix": "MAPPING_PREFIX",
            "reports_prefix": "REPORTS_PREFIX",
            "retry_prefix": "RETRY_PREFIX",
            "fanout_threshold_bytes": "FANOUT_THRESHOLD_BYTES",
            "fanout_part_bytes": "FANOUT_PART_BYTES",
            "deadline_margin_ms": "DEADLINE_MARGIN_MS",
            "in_flight": "BRAZE_MAX_CONCURRENCY",
            "full_refresh": "FULL_REFRESH",
        }
        for field_name, variable in optional.items():
            if env.get(variable):
                raw[field_name] = env[variable]
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            names = {
                "integration": "INTEGRATION",
                "drop_bucket": "DROP_BUCKET",
                "field_state_table": "FIELD_STATE_TABLE",
                "run_state_table": "RUN_STATE_TABLE",
                "idempotency_table": "IDEMPOTENCY_TABLE",
                "continuation_queue_url": "CONTINUATION_QUEUE_URL",
                "workspace": "BRAZE_WORKSPACE (or BRAZE_API_KEY_SECRET)",
                **optional,
            }
            problems = [
                f"{names.get(str(item['loc'][0]), item['loc'][0])}: {item['msg']}" for item in error.errors()
            ]
            raise ValueError("invalid import function settings:\n  " + "\n  ".join(problems)) from error
