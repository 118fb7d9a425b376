"""What a Braze workspace defines besides profiles: API keys, segments, campaigns, Canvases and
subscription groups.

Definitions arrive through the admin API, so their shapes are pydantic models.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdpbridge_local.emulator.state import Profile
from cdpbridge_local.emulator.validation import format_time

DEFAULT_API_KEY = "local-dev-key"
ALL_PERMISSIONS = frozenset(
    {
        "users.track",
        "users.delete",
        "users.alias.new",
        "users.export.ids",
        "users.export.segment",
        "segments.list",
        "segments.details",
        "campaigns.list",
        "campaigns.details",
        "campaigns.trigger.send",
        "campaigns.trigger.schedule.create",
        "campaigns.trigger.schedule.update",
        "campaigns.trigger.schedule.delete",
        "canvas.trigger.send",
        "sends.id.create",
        "subscription.status.set",
        "users.identify",
        "users.merge",
        "users.alias.update",
    }
)


class ApiKeyDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1)
    permissions: list[str]

    @model_validator(mode="after")
    def _known_permissions(self) -> ApiKeyDefinition:
        unknown = set(self.permissions) - ALL_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown permissions {sorted(unknown)}; known: {sorted(ALL_PERMISSIONS)}")
        return self


class SegmentFilter(BaseModel):
    """One attribute test: identifiers, standard fields and custom attributes are all addressable."""

    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(min_length=1)
    op: Literal["eq", "ne", "exists", "gt", "lt", "in"]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> SegmentFilter:
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("op 'in' needs a list value")
        if self.op == "exists" and self.value is not None and not isinstance(self.value, bool):
            raise ValueError("op 'exists' takes true, false or no value")
        if self.op in ("gt", "lt", "eq", "ne") and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        return self

    def matches(self, profile: Profile) -> bool:
        held = profile.attribute(self.attribute)
        op = self.op
        if op == "exists":
            return (held is not None) == (self.value is not False)
        if op == "eq":
            return bool(held == self.value)
        if op == "ne":
            return bool(held != self.value)
        if op == "in":
            return any(held == candidate for candidate in self.value)
        if held is None or isinstance(held, bool) != isinstance(self.value, bool):
            return False
        try:
            return bool(held > self.value) if op == "gt" else bool(held < self.value)
        except TypeError:
            return False


class SegmentDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    # No filter: every user is in the segment.
    filter: SegmentFilter | None = None
    tags: list[str] = Field(default_factory=list)
    analytics_tracking_enabled: bool = False


class CampaignDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)


class CanvasDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    canvas_id: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)
    # A paused or archived Canvas still answers 201, with a notice.
    status: Literal["active", "paused", "archived"] = "active"


class SubscriptionGroupDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscription_group_id: str = Field(min_length=1)
    channel: Literal["email", "sms", "whatsapp"]
    name: str | None = None


class Workspace:
    """API keys, segments, campaigns, Canvases and subscription groups; kept across a plain reset,
    cleared by a full one."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.api_keys: dict[str, frozenset[str]] = {DEFAULT_API_KEY: ALL_PERMISSIONS}
        self.segments: dict[str, SegmentDefinition] = {}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.canvases: dict[str, CanvasDefinition] = {}
        self.subscription_groups: dict[str, SubscriptionGroupDefinition] = {}

    def add_key(self, definition: ApiKeyDefinition) -> None:
        self.api_keys[definition.key] = frozenset(definition.permissions)

    def add_segment(self, definition: SegmentDefinition) -> SegmentDefinition:
        segment_id = definition.segment_id or str(uuid.uuid4())
        stored = definition.model_copy(update={"segment_id": segment_id})
        self.segments[segment_id] = stored
        return stored

    def add_canvas(self, definition: CanvasDefinition) -> CanvasDefinition:
        stored = definition.model_copy(update={"canvas_id": definition.canvas_id or str(uuid.uuid4())})
        assert stored.canvas_id is not None
        self.canvases[stored.canvas_id] = stored
        return stored

    def add_subscription_group(self, definition: SubscriptionGroupDefinition) -> None:
        self.subscription_groups[definition.subscription_group_id] = definition

    def segment_members(self, segment: SegmentDefinition, profiles: list[Profile]) -> list[Profile]:
        if segment.filter is None:
            return profiles
        return [profile for profile in profiles if segment.filter.matches(profile)]

    def add_campaign(self, definition: CampaignDefinition) -> dict[str, Any]:
        campaign_id = definition.campaign_id or str(uuid.uuid4())
        now = format_time(datetime.now(UTC))
        campaign = {
            "id": campaign_id,
            "name": definition.name,
            "tags": list(definition.tags),
            "created_at": now,
            "updated_at": now,
        }
        self.campaigns[campaign_id] = campaign
        return campaign

    @staticmethod
    def segment_listing(segment: SegmentDefinition) -> dict[str, Any]:
        return {
            "id": segment.segment_id,
            "name": segment.name,
            "analytics_tracking_enabled": segment.analytics_tracking_enabled,
            "tags": list(segment.tags),
        }

    @staticmethod
    def campaign_listing(campaign: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": campaign["id"],
            "name": campaign["name"],
            "is_api_campaign": True,
            "tags": list(campaign["tags"]),
            "last_edited": campaign["updated_at"],
        }

    @staticmethod
    def campaign_details(campaign: dict[str, Any]) -> dict[str, Any]:
        return {
            "message": "success",
            "name": campaign["name"],
            "created_at": campaign["created_at"],
            "updated_at": campaign["updated_at"],
            "archived": False,
            "draft": False,
            "enabled": True,
            "has_post_launch_draft": False,
            "schedule_type": "api_triggered",
            "channels": [],
            "first_sent": None,
            "last_sent": None,
            "tags": list(campaign["tags"]),
            "messages": {},
            "conversion_behaviors": [],
        }
