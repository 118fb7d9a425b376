"""Typed request pieces and response bodies of the Braze endpoints the client calls.

Responses ignore members they do not know, so that Braze adding a field never breaks a run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message: str = ""


class ExportIdsResult(_Response):
    """Profiles found by /users/export/ids, as Braze returns them (standard fields at the top level)."""

    users: list[dict[str, Any]] = Field(default_factory=list)
    invalid_user_ids: list[str] = Field(default_factory=list)
    # HTTP requests it took: Braze accepts only one braze_id, email or phone per request.
    requests: int = 1


class SegmentExportStarted(_Response):
    """/users/export/segment accepted: files appear under ``object_prefix`` (own bucket) or at ``url``."""

    object_prefix: str | None = None
    url: str | None = None


class SegmentSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    analytics_tracking_enabled: bool | None = None
    tags: list[str] = Field(default_factory=list)


class CampaignSummary(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    is_api_campaign: bool | None = None
    last_edited: str | None = None
    tags: list[str] = Field(default_factory=list)


class CampaignDetails(_Response):
    """/campaigns/details; members Braze adds later are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    description: str | None = None
    archived: bool | None = None
    draft: bool | None = None
    enabled: bool | None = None
    schedule_type: str | None = None
    channels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    first_sent: str | None = None
    last_sent: str | None = None
    messages: dict[str, Any] = Field(default_factory=dict)


class DispatchResult(_Response):
    dispatch_id: str | None = None
    # /canvas/trigger/send adds a notice when the Canvas is paused or archived.
    notice: str | None = None


class SendIdResult(_Response):
    send_id: str


class IdentifyResult(BaseModel):
    """What identify_users did, over however many requests it took."""

    model_config = ConfigDict(frozen=True)

    aliases_processed: int
    requests: int


class RequestsSent(BaseModel):
    """How many requests a call that answers only "success" took."""

    model_config = ConfigDict(frozen=True)

    requests: int


class ScheduleResult(_Response):
    dispatch_id: str | None = None
    schedule_id: str | None = None


class BrazeAck(_Response):
    """A response that carries nothing but Braze's message (cohort endpoints)."""


class CohortUpdateResult(BaseModel):
    """What cohort_update_users sent, over however many requests it took."""

    model_config = ConfigDict(frozen=True)

    requests: int
    ids_sent: int


class DeleteUsersResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    deleted: int
    requests: int


class NewAliasesResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    aliases_processed: int
    requests: int


class UserAlias(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alias_name: str = Field(min_length=1)
    alias_label: str = Field(min_length=1)


class NewAlias(UserAlias):
    """An alias to add to a profile; without external_id Braze creates an alias-only profile."""

    external_id: str | None = None


class TriggerSchedule(BaseModel):
    """When a scheduled API-triggered send goes out.

    With ``in_local_time`` or ``at_optimal_time`` the time is a wall-clock time read in each
    recipient's zone, so Braze takes it without a zone designator: give a naive datetime.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime
    in_local_time: bool = False
    at_optimal_time: bool = False

    @model_validator(mode="after")
    def _local_time_has_no_zone(self) -> TriggerSchedule:
        if (self.in_local_time or self.at_optimal_time) and self.time.tzinfo is not None:
            raise ValueError("with in_local_time or at_optimal_time the time takes no zone (naive)")
        return self

    @field_serializer("time")
    def _iso_time(self, value: datetime) -> str:
        # Braze reads a time without a zone as UTC; an aware time keeps its offset.
        return value.isoformat()


class CohortChange(BaseModel):
    """One membership delta: ids (one kind per change) added to or removed from a cohort."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_ids: list[str] | None = None
    device_ids: list[str] | None = None
    aliases: list[UserAlias] | None = None
    should_remove: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> CohortChange:
        kinds = [name for name in ("user_ids", "device_ids", "aliases") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a cohort change names exactly one of user_ids, device_ids, aliases (got {kinds})"
            )
        return self

    @property
    def id_kind(self) -> str:
        for name in ("user_ids", "device_ids", "aliases"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated to hold one kind")

    def ids(self) -> list[Any]:
        values: list[Any] = getattr(self, self.id_kind)
        return values
