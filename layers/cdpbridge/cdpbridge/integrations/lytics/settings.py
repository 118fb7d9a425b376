"""The ``lytics:`` section of a Lytics mapping config (imported by the mapping config itself, so it
imports nothing of the package: pydantic only)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_ATTRIBUTE: Final = "lytics_segments"
# Braze's default maximum length of an array attribute (the emulator's default too).
DEFAULT_ARRAY_MAXIMUM: Final = 25
_FEED_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class LyticsMode(StrEnum):
    SNAPSHOT = "snapshot"  # every member of every audience, each time: diffed against the last one
    DELTA = (
        "delta"  # Lytics' own shape: {"external_id": ..., "lytics_segments": {"add": [...], "remove": [...]}}
    )


class LyticsSettings(BaseModel):
    """How Lytics audience files become members of one Braze array attribute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: LyticsMode = Field(
        default=LyticsMode.SNAPSHOT,
        description="snapshot: complete audience membership, diffed against the feed's previous "
        "snapshot; delta: Lytics' add/remove records, sent as they are.",
    )
    feed: str | None = Field(
        default=None,
        description="Snapshots of one feed are diffed against each other. Default: the folder under "
        "inbound/lytics/, or the config's name for a local file.",
    )
    audiences_column: str = Field(
        default="audiences",
        min_length=1,
        description="Snapshot, one row per user: the column holding the user's audience slugs.",
    )
    separator: str = Field(
        default="|",
        min_length=1,
        description="Splits the audiences column (a JSON array cell is read as one).",
    )
    audience_column: str | None = Field(
        default=None,
        min_length=1,
        description="Snapshot, one row per (user, audience): the column holding the one audience slug. "
        "Set it instead of relying on audiences_column.",
    )
    attribute: str = Field(
        default=DEFAULT_ATTRIBUTE,
        min_length=1,
        description="The Braze array attribute the audiences are added to and removed from; in delta "
        "files, also the key of the add/remove object.",
    )
    existing_users: bool = Field(
        default=True,
        description="true: the feed's first snapshot adds every membership (a data point per user and "
        "audience); false: it only records them, and only later entries and exits are sent.",
    )
    array_maximum: int = Field(
        default=DEFAULT_ARRAY_MAXIMUM,
        ge=1,
        le=500,
        description="The workspace's maximum array length: audiences beyond it are not sent and are "
        "reported with the user's row.",
    )

    @model_validator(mode="after")
    def _feed_name(self) -> Self:
        if self.feed is not None and not _FEED_NAME.fullmatch(self.feed):
            raise ValueError(
                f"feed {self.feed!r}: letters, digits, '_', '.' and '-' only (at most 100, starting "
                "with a letter or digit)"
            )
        if self.attribute.startswith(("$", "~")):
            raise ValueError(f"attribute {self.attribute!r} must not start with '$' or '~'")
        return self
