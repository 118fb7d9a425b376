"""Settings of the Braze emulator: what the admin API reads and writes at /_emulator/config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Endpoint families that share one rate-limit window, as Braze groups them.
# "users.export" is /users/export/ids alone; /users/export/segment is in the shared hourly pool
# ("lists"). Broadcast sends have a per-minute family of their own on top of "campaigns.trigger".
# "users.track.hourly" is the hourly users.track limit of monthly-active-user contracts, on top of
# their 3-second burst limit ("users.track"); its default is high enough never to bind.
RATE_LIMIT_FAMILIES: tuple[str, ...] = (
    "users.track",
    "users.track.hourly",
    "users.export",
    "campaigns.trigger",
    "campaigns.trigger.broadcast",
    "lists",
    "cohorts",
    "users.other",
    "subscription",
)


class RateLimitSetting(BaseModel):
    """A fixed window of ``window_s`` seconds (aligned to the epoch) that admits ``limit`` requests."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(ge=1)
    window_s: float = Field(gt=0)


def default_rate_limits() -> dict[str, RateLimitSetting]:
    return {
        "users.track": RateLimitSetting(limit=3000, window_s=3),
        "users.track.hourly": RateLimitSetting(limit=1_000_000_000, window_s=3600),
        "users.export": RateLimitSetting(limit=250, window_s=60),
        "campaigns.trigger": RateLimitSetting(limit=250_000, window_s=3600),
        "campaigns.trigger.broadcast": RateLimitSetting(limit=250, window_s=60),
        "lists": RateLimitSetting(limit=250_000, window_s=3600),
        "cohorts": RateLimitSetting(limit=250_000, window_s=3600),
        "users.other": RateLimitSetting(limit=20_000, window_s=60),
        "subscription": RateLimitSetting(limit=5000, window_s=60),
    }


class FaultSettings(BaseModel):
    """Probabilities (0..1) of each injected fault; the six failure kinds are mutually exclusive."""

    model_config = ConfigDict(extra="forbid")

    status_429: float = Field(default=0.0, ge=0, le=1)
    status_500: float = Field(default=0.0, ge=0, le=1)
    status_502_html: float = Field(default=0.0, ge=0, le=1)
    status_503: float = Field(default=0.0, ge=0, le=1)
    drop_connection: float = Field(default=0.0, ge=0, le=1)
    # Applied, then the connection dropped before the answer: see FaultKind.APPLY_THEN_DROP.
    apply_then_drop: float = Field(default=0.0, ge=0, le=1)
    slow_p: float = Field(default=0.0, ge=0, le=1)
    slow_ms: float = Field(default=5000.0, ge=0)
    # Braze's maintenance answer: the request is applied, the reply is 202 {"message": "queued"}.
    queued_202: float = Field(default=0.0, ge=0, le=1)

    def failure_probability(self) -> float:
        return (
            self.status_429
            + self.status_500
            + self.status_502_html
            + self.status_503
            + self.drop_connection
            + self.apply_then_drop
        )


class TrackCap(BaseModel):
    """users.track objects per request: 75 across all three arrays (current workspaces, the
    default), 50 on some contracts, or 75 of each array (``per_array``, legacy limits)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["per_array", "total"] = "total"
    limit: int = Field(default=75, ge=1)


class ExportS3(BaseModel):
    """Where segment exports go when the workspace has S3 export credentials.

    ``endpoint_url`` is required: the emulator only ever writes to a local S3 such as a moto server.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    path: str = ""
    region: str = "us-east-1"


class EmulatorConfig(BaseModel):
    """Everything about the emulator's behaviour that a test or benchmark may want to change."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    seed: int = 0
    rate_limits: dict[str, RateLimitSetting] = Field(default_factory=default_rate_limits)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    track_cap: TrackCap = Field(default_factory=TrackCap)
    export_s3: ExportS3 | None = None
    export_delay_s: float = Field(default=1.0, ge=0)
    export_users_per_file: int = Field(default=5000, ge=1)
    # Braze's default is 25; a workspace may raise it (older pages: up to 100, newer: 500).
    array_max_length: int = Field(default=25, ge=1, le=500)
    # Braze documents 100 KB for event properties (older docs: 50 KB); both are in use.
    event_properties_max_bytes: int = Field(default=100 * 1024, ge=1)
    purchase_properties_max_bytes: int = Field(default=50 * 1024, ge=1)
    trigger_properties_max_bytes: int = Field(default=50 * 1024, ge=1)
    nested_object_max_bytes: int = Field(default=100 * 1024, ge=1)
    object_array_max_bytes: int = Field(default=100 * 1024, ge=1)
    # Workspaces created after August 2024 must name fields_to_export in /users/export/ids.
    export_ids_fields_required: bool = True
    # Braze does not document the text of the 429 for a second export of a segment while one
    # runs: tests switch between plausible forms. None answers with an empty JSON object.
    export_in_progress_message: str | None = "An export of this segment is already in progress"
    # Newer contracts bill monthly active users: data points are still counted, shown as unbilled.
    bills_data_points: bool = True
    custom_send_ids_per_campaign_per_day: int = Field(default=100, ge=1)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _families_with_defaults(cls, limits: Any) -> Any:
        """Unknown families are refused; families not given keep their defaults."""
        if not isinstance(limits, dict):
            return limits
        unknown = sorted(set(limits) - set(RATE_LIMIT_FAMILIES))
        if unknown:
            raise ValueError(f"unknown rate limit families {unknown}; known: {list(RATE_LIMIT_FAMILIES)}")
        return {**default_rate_limits(), **limits}

    def merged_with(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A new config with ``changes`` applied; dict-valued settings merge one level deep.

        Raises pydantic.ValidationError when the result is invalid, leaving this config untouched.
        """
        current = self.model_dump()
        for key, value in changes.items():
            if key == "rate_limits" and isinstance(value, dict):
                merged_limits = dict(current["rate_limits"])
                for family, setting in value.items():
                    base = merged_limits.get(family, {})
                    merged_limits[family] = {**base, **setting} if isinstance(setting, dict) else setting
                current["rate_limits"] = merged_limits
            elif key in ("faults", "track_cap") and isinstance(value, dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        return EmulatorConfig.model_validate(current)
