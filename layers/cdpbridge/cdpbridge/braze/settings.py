"""Settings of the Braze client, read from BRAZE_* variables when first needed (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdpbridge.braze.instances import rest_endpoint as instance_rest_endpoint
from cdpbridge.braze.track import TrackCap

# Endpoint families that share one rate limit at Braze.
USERS_TRACK = "users.track"
USERS_EXPORT = "users.export"
CAMPAIGNS_TRIGGER = "campaigns.trigger"
# Broadcast sends (no recipients) have a per-minute limit of their own.
CAMPAIGNS_BROADCAST = "campaigns.trigger.broadcast"
# The shared hourly pool: lists, details, /users/export/segment, /sends/id/create.
LISTS = "lists"
COHORTS = "cohorts"
USERS_OTHER = "users.other"
SUBSCRIPTION = "subscription"
FAMILIES: tuple[str, ...] = (
    USERS_TRACK,
    USERS_EXPORT,
    CAMPAIGNS_TRIGGER,
    CAMPAIGNS_BROADCAST,
    LISTS,
    COHORTS,
    USERS_OTHER,
    SUBSCRIPTION,
)

# BRAZE_MAX_CONCURRENCY's one upper bound: the client's connections and the engine's requests in
# flight are the same number. Each request in flight is a thread, and Lambda allows 1,024 per
# environment, boto3's pools and Powertools' own included.
MAX_CONCURRENCY_LIMIT = 256


class RateLimit(BaseModel):
    """``limit`` requests per ``window_s`` seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(gt=0)
    window_s: float = Field(gt=0)


# Braze's documented defaults; workspaces onboarded before Aug 2024 have more users.export headroom.
DEFAULT_RATE_LIMITS: Mapping[str, RateLimit] = {
    USERS_TRACK: RateLimit(limit=3000, window_s=3),
    USERS_EXPORT: RateLimit(limit=250, window_s=60),
    CAMPAIGNS_TRIGGER: RateLimit(limit=250_000, window_s=3600),
    CAMPAIGNS_BROADCAST: RateLimit(limit=250, window_s=60),
    LISTS: RateLimit(limit=250_000, window_s=3600),
    COHORTS: RateLimit(limit=250_000, window_s=3600),
    USERS_OTHER: RateLimit(limit=20_000, window_s=60),
    SUBSCRIPTION: RateLimit(limit=5000, window_s=60),
}


class RetryPolicy(BaseModel):
    """Bounds of the retry loop: whichever of attempts and elapsed time runs out first ends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=8, ge=1, le=100)
    max_elapsed_s: float = Field(default=120.0, gt=0)
    base_delay_s: float = Field(default=0.25, gt=0)
    max_delay_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        if self.max_delay_s < self.base_delay_s:
            raise ValueError("max_delay_s must not be smaller than base_delay_s")
        return self


class BrazeSettings(BaseModel):
    """Where and how the client talks to Braze. Give ``instance`` (e.g. "US-03") or ``rest_endpoint``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rest_endpoint: str | None = None
    instance: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=900)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # A ceiling: the engine's window of requests in flight finds its own level under it
    # (cdpbridge.sync.concurrency), so the default is the highest the environment allows.
    max_concurrency: int = Field(default=MAX_CONCURRENCY_LIMIT, ge=1, le=MAX_CONCURRENCY_LIMIT)
    rate_limits: dict[str, RateLimit] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    track_cap: TrackCap = Field(default_factory=TrackCap)
    # Secrets Manager secret (name or ARN) that holds the REST API key; see cdpbridge.braze.keys.
    api_key_secret_id: str | None = None
    api_key_cache_ttl_s: float = Field(default=300.0, ge=0)

    @field_validator("rate_limits", mode="after")
    @classmethod
    def _fill_default_limits(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown endpoint families {unknown}; expected some of {', '.join(FAMILIES)}")
        # Overriding one family must not leave the others without a limit.
        return {**DEFAULT_RATE_LIMITS, **value}

    @model_validator(mode="after")
    def _resolve_endpoint(self) -> Self:
        if self.instance is not None:
            from_instance = instance_rest_endpoint(self.instance)
            if self.rest_endpoint is not None and _normalise_url(self.rest_endpoint) != from_instance:
                raise ValueError(
                    f"rest_endpoint {self.rest_endpoint!r} contradicts instance {self.instance!r}"
                    f" ({from_instance}); give only one of them"
                )
            object.__setattr__(self, "rest_endpoint", from_instance)
        elif self.rest_endpoint is None:
            raise ValueError("either instance (e.g. 'US-03') or rest_endpoint (an https URL) is required")
        else:
            object.__setattr__(self, "rest_endpoint", _normalise_url(self.rest_endpoint))
        return self

    @property
    def base_url(self) -> str:
        """The REST endpoint without a trailing slash."""
        assert self.rest_endpoint is not None  # guaranteed by _resolve_endpoint
        return self.rest_endpoint

    def rate_limit(self, family: str) -> RateLimit:
        try:
            return self.rate_limits[family]
        except KeyError:
            raise ValueError(f"no rate limit for endpoint family {family!r}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrazeSettings:
        """Reads BRAZE_* variables (see ``ENVIRONMENT_VARIABLES``); a bad value names its variable."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        retry: dict[str, str] = {}
        track_cap: dict[str, str] = {}
        for variable, path in ENVIRONMENT_VARIABLES.items():
            value = env.get(variable, "").strip()
            if not value:
                continue
            if path[0] == "retry":
                retry[path[1]] = value
            elif path[0] == "track_cap":
                track_cap[path[1]] = value
            elif path[0] == "rate_limits":
                raw["rate_limits"] = _parse_rate_limits(variable, value)
            else:
                raw[path[0]] = value
        if retry:
            raw["retry"] = retry
        if track_cap:
            raw["track_cap"] = _parse_track_cap(track_cap)
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            problems = [f"{_variable_for(item['loc'])}: {_reason(item)}" for item in error.errors()]
            raise ValueError("invalid Braze settings:\n  " + "\n  ".join(problems)) from error


# Variable -> the settings field it sets (a path into the model).
ENVIRONMENT_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "BRAZE_REST_ENDPOINT": ("rest_endpoint",),
    "BRAZE_INSTANCE": ("instance",),
    "BRAZE_TIMEOUT_S": ("timeout_s",),
    "BRAZE_CONNECT_TIMEOUT_S": ("connect_timeout_s",),
    "BRAZE_MAX_CONCURRENCY": ("max_concurrency",),
    # JSON, e.g. {"users.track": {"limit": 3000, "window_s": 3}}; unnamed families keep their defaults.
    "BRAZE_RATE_LIMITS": ("rate_limits",),
    "BRAZE_RETRY_MAX_ATTEMPTS": ("retry", "max_attempts"),
    "BRAZE_RETRY_MAX_ELAPSED_S": ("retry", "max_elapsed_s"),
    "BRAZE_RETRY_BASE_DELAY_S": ("retry", "base_delay_s"),
    "BRAZE_RETRY_MAX_DELAY_S": ("retry", "max_delay_s"),
    "BRAZE_TRACK_CAP_MODE": ("track_cap", "mode"),
    "BRAZE_TRACK_CAP_LIMIT": ("track_cap", "limit"),
    "BRAZE_API_KEY_SECRET": ("api_key_secret_id",),
    "BRAZE_API_KEY_CACHE_TTL_S": ("api_key_cache_ttl_s",),
}


def _normalise_url(url: str) -> str:
    candidate = url.strip().rstrip("/")
    parts = urlsplit(candidate)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(
            f"rest_endpoint must be an http(s) URL such as https://rest.iad-01.braze.com: {url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"rest_endpoint must not carry a query or fragment: {url!r}")
    return candidate


def _parse_rate_limits(variable: str, value: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"invalid Braze settings:\n  {variable}: not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise ValueError(
            f'invalid Braze settings:\n  {variable}: expected a JSON object such as {{"users.track":'
            f' {{"limit": 3000, "window_s": 3}}}}, got {type(parsed).__name__}'
        )
    return parsed


def _parse_track_cap(values: dict[str, str]) -> TrackCap:
    mode_text = values.get("mode", "total")
    limit_text = values.get("limit", "75")
    try:
        limit = int(limit_text)
    except ValueError:
        raise ValueError(
            f"invalid Braze settings:\n  BRAZE_TRACK_CAP_LIMIT: must be an integer, got {limit_text!r}"
        ) from None
    mode: Literal["per_array", "total"]
    if mode_text == "per_array":
        mode = "per_array"
    elif mode_text == "total":
        mode = "total"
    else:
        raise ValueError(
            "invalid Braze settings:\n  BRAZE_TRACK_CAP_MODE:"
            f" must be 'per_array' or 'total', got {mode_text!r}"
        )
    try:
        return TrackCap(mode=mode, limit=limit)
    except ValueError as error:
        raise ValueError(f"invalid Braze settings:\n  BRAZE_TRACK_CAP_LIMIT: {error}") from None


def _variable_for(location: tuple[int | str, ...]) -> str:
    path = tuple(str(part) for part in location)
    for variable, field_path in ENVIRONMENT_VARIABLES.items():
        if path[: len(field_path)] == field_path:
            suffix = ".".join(path[len(field_path) :])
            return f"{variable} ({suffix})" if suffix else variable
    # A check over a whole group (e.g. retry delays) names every variable of the group.
    group = [
        variable for variable, field_path in ENVIRONMENT_VARIABLES.items() if field_path[: len(path)] == path
    ]
    if path and group:
        return " / ".join(group)
    # Model-level checks (e.g. neither instance nor endpoint) have an empty location.
    return "BRAZE_INSTANCE / BRAZE_REST_ENDPOINT" if not path else ".".join(path)


def _reason(item: Mapping[str, Any]) -> str:
    message = str(item["msg"]).removeprefix("Value error, ")
    value = item.get("input")
    if isinstance(value, str | int | float) and item["loc"]:
        message += f" (got {value!r})"
    return message
