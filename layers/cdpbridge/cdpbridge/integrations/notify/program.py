"""PROGRAM.yaml: one Notify program (a campaign sent to a segment once per send date)."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdpbridge.integrations.notify.observations import time_zone

_CLOCK: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_clock(value: Any) -> time:
    """A local wall-clock time written "HH:MM" (24-hour)."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        # YAML reads an unquoted 10:00 as the base-60 number 600: ask for quotes instead of guessing.
        raise ValueError(f'write times as quoted "HH:MM" strings, got {value!r}')
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError(f'expected "HH:MM" (00:00..23:59), got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


class SendWindow(BaseModel):
    """The local hours a user may be sent to: slots that start at or after ``start``, before ``end``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> time:
        return parse_clock(value)

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end:%H:%M} must be after start {self.start:%H:%M} (same local day)"
            )
        return self

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        return self.end.hour * 60 + self.end.minute


class ModelSettings(BaseModel):
    """The send-time model's tunables; what is left out is fitted on the data (docs/notify.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Recency: an event half_life_days old counts half as much as one today. None: fitted by
    # held-out likelihood on the history itself.
    half_life_days: float | None = Field(default=None, gt=0)
    # Prior strengths (pseudo-events) of each level of the hierarchy. None: method of moments.
    user_prior_strength: float | None = Field(default=None, gt=0)
    sub_segment_prior_strength: float | None = Field(default=None, gt=0)
    segment_prior_strength: float | None = Field(default=None, gt=0)
    day_prior_strength: float | None = Field(default=None, gt=0)
    # How much each kind of engagement counts (a purchase is no weaker a sign than an open).
    kind_weights: dict[str, float] = Field(
        default_factory=lambda: {"email_open": 1.0, "email_click": 1.0, "push_open": 1.0, "purchase": 1.0}
    )

    @field_validator("kind_weights")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        known = {"email_open", "email_click", "push_open", "purchase"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown engagement kinds {unknown}; known: {sorted(known)}")
        if any(weight < 0 for weight in value.values()):
            raise ValueError("kind weights must not be negative")
        return value


class ProgramConfig(BaseModel):
    """PROGRAM.yaml. ``send_date`` is a calendar date in each user's own zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    program: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    campaign_id: str = Field(min_length=1)
    segment_id: str = Field(min_length=1)
    send_date: date
    window: SendWindow
    slot_minutes: int = 15
    default_time_zone: str
    # The dispatcher skips (and reports) a slot due more than this long ago instead of sending late.
    grace_minutes: int = Field(default=30, ge=0, le=24 * 60)
    model: ModelSettings = Field(default_factory=ModelSettings)

    @field_validator("slot_minutes")
    @classmethod
    def _divides_the_hour(cls, value: int) -> int:
        if value <= 0 or 60 % value != 0:
            raise ValueError(f"slot_minutes must divide 60 (1, 5, 10, 15, 20, 30, 60), got {value}")
        return value

    @field_validator("default_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @model_validator(mode="after")
    def _window_holds_a_slot(self) -> ProgramConfig:
        first = -(-self.window.start_minute // self.slot_minutes) * self.slot_minutes
        if first >= self.window.end_minute:
            raise ValueError(
                f"window {self.window.start:%H:%M}-{self.window.end:%H:%M} holds no "
                f"{self.slot_minutes}-minute slot"
            )
        return self


class ProgramConfigError(ValueError):
    """PROGRAM.yaml is unreadable or invalid; the message names the file and each bad key."""


def load_program(path: Path) -> ProgramConfig:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ProgramConfigError(f"{path}: {error}") from error
    if not isinstance(document, dict):
        raise ProgramConfigError(f"{path}: expected a mapping of program settings")
    try:
        return ProgramConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ProgramConfigError(f"{path}: {problems}") from error
