"""config/currents.yaml: which routes run and which event types each one takes.

    version: 1
    routes:
      files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
      lytics:     {enabled: false, event_types: ["users.messages.*"], stream: braze_engagement}
      engagement: {enabled: true}

Event types are selected by name or glob (``fnmatch`` rules, case-sensitive). Unknown keys are
refused so that a misspelt switch never silently leaves a route on or off.
"""

from __future__ import annotations

import re
from fnmatch import translate
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class CurrentsConfigError(ValueError):
    """A currents config that cannot be used; the message names the file and every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Selecting(_Strict):
    enabled: bool = False
    event_types: tuple[str, ...] = ("*",)

    @field_validator("event_types")
    @classmethod
    def _not_blank(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        if any(not pattern.strip() for pattern in patterns):
            raise ValueError("event type patterns must not be blank")
        return patterns

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{translate(pattern)})" for pattern in self.event_types) or "(?!)")

    def takes(self, event_type: str) -> bool:
        """True when the route is on and one of its patterns matches ``event_type``."""
        return self.enabled and self._pattern.match(event_type) is not None


class FilesRoute(_Selecting):
    """JSON lines, gzip, under outbound/<destination>/currents/<event_type>/<YYYY-MM-DD>/."""

    enabled: bool = True
    destinations: tuple[str, ...] = ("amperity",)
    # zlib level 1: about three times the speed of level 6 for some 15% more bytes on Currents JSON.
    gzip_level: int = Field(default=1, ge=0, le=9)

    @field_validator("destinations")
    @classmethod
    def _plain_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"destination {name!r} must be a plain folder name (letters, digits, _.-)")
        return names


class LyticsRoute(_Selecting):
    """Engagement events posted to Lytics' collect API, ``POST /collect/json/<stream>``."""

    event_types: tuple[str, ...] = ("users.messages.*",)
    stream: str = "braze_engagement"
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_attempts: int = Field(default=6, ge=1, le=20)
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, stream: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]+", stream):
            raise ValueError(f"stream {stream!r} must be letters, digits and underscores")
        return stream


class EngagementRoute(_Strict):
    """Per-user engagement observations for the send-time optimiser (opens, clicks, purchases)."""

    enabled: bool = True
    max_observations: int = Field(default=512, ge=16, le=4096)


class Routes(_Strict):
    files: FilesRoute = FilesRoute()
    lytics: LyticsRoute = LyticsRoute()
    engagement: EngagementRoute = EngagementRoute()


class Dedupe(_Strict):
    # Longer than any redelivery Braze makes of a file (see docs/currents.md) with room to spare.
    ttl_days: int = Field(default=14, ge=1, le=365)


class CurrentsConfig(_Strict):
    version: Literal[1] = 1
    routes: Routes = Routes()
    dedupe: Dedupe = Dedupe()
    # Records routed between two commits of a file's progress: a failure re-reads at most this many.
    segment_records: int = Field(default=100_000, ge=100)
    # Records per dedupe look-up and per routing step (also the unit a failure rolls back to).
    chunk_records: int = Field(default=2_000, ge=1, le=100_000)


def parse_currents_config(text: str | bytes, source: str = "currents.yaml") -> CurrentsConfig:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CurrentsConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise CurrentsConfigError(f"{source}: expected a mapping at the top level")
    try:
        return CurrentsConfig.model_validate(loaded)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise CurrentsConfigError(f"{source}: {problems}") from exc


def load_currents_config(path: str | Path) -> CurrentsConfig:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise CurrentsConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_currents_config(text, str(path))
