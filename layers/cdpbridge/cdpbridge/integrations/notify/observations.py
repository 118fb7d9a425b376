"""The model's input: one engagement event of one user, at a local hour of the week.

Both routes of engagement feed the model through this one type: the opt-in export (events keyed by
the e-mail hash, local time from the row's offset or the user's zone) and the Currents engagement
profiles (local hour from the event's ``timezone``). Hour of week counts from Monday 00:00 local
time: Monday 09:00 is 9, Sunday 23:00 is 167.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOURS_PER_WEEK: Final = 168
# Saturday and Sunday: hour-of-week 120..167 (Monday is day 0, as in date.weekday()).
WEEKEND_FIRST_HOUR: Final = 5 * 24


class EngagementKind(StrEnum):
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    PUSH_OPEN = "push_open"
    PURCHASE = "purchase"


@dataclass(frozen=True, slots=True)
class Observation:
    """One engagement event: whose, what, when (UTC epoch seconds) and at which local hour of week."""

    user_key: str
    kind: EngagementKind
    occurred_at: int
    hour_of_week: int

    def __post_init__(self) -> None:
        if not 0 <= self.hour_of_week < HOURS_PER_WEEK:
            raise ValueError(f"hour_of_week must be 0..167, got {self.hour_of_week}")

    @classmethod
    def at(cls, user_key: str, kind: EngagementKind, occurred_at: datetime, zone: tzinfo) -> Observation:
        """The observation of an aware instant, its local hour taken in ``zone`` (DST-correct)."""
        return cls(user_key, kind, epoch_seconds(occurred_at), hour_of_week(occurred_at, zone))


def epoch_seconds(instant: datetime) -> int:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant needs a UTC offset")
    return int(instant.timestamp())


def hour_of_week(instant: datetime, zone: tzinfo) -> int:
    """The local hour of week of an aware instant in ``zone``: the zone's offset on that very date."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant needs a UTC offset")
    local = instant.astimezone(zone)
    return local.weekday() * 24 + local.hour


def hour_of_week_at_epoch(occurred_at: int, zone: tzinfo) -> int:
    return hour_of_week(datetime.fromtimestamp(occurred_at, UTC), zone)


def is_weekend_hour(hour: int) -> bool:
    return hour >= WEEKEND_FIRST_HOUR


def weekday_hour(day: date, hour_of_day: int) -> int:
    """The hour of week of ``hour_of_day`` on local calendar date ``day``."""
    return day.weekday() * 24 + hour_of_day


@lru_cache(maxsize=1024)
def time_zone(name: str) -> ZoneInfo:
    """The IANA zone named ``name``; ValueError (naming it) when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def fixed_offset_hour_of_week(occurred_at: datetime) -> int:
    """The hour of week in the instant's own offset (an opt-in row written as local time)."""
    offset = occurred_at.utcoffset()
    if offset is None:
        raise ValueError("an instant needs a UTC offset")
    local = occurred_at.astimezone(UTC).replace(tzinfo=None) + offset
    return local.weekday() * 24 + local.hour


__all__ = [
    "HOURS_PER_WEEK",
    "WEEKEND_FIRST_HOUR",
    "EngagementKind",
    "Observation",
    "epoch_seconds",
    "fixed_offset_hour_of_week",
    "hour_of_week",
    "hour_of_week_at_epoch",
    "is_weekend_hour",
    "time_zone",
    "weekday_hour",
]
