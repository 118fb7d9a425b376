"""Engagement observations and profiles: what the send-time optimiser learns a user's best hour from.

An observation is one open, click or purchase: when it happened (epoch seconds), the local hour of
week it happened in (0 = Monday 00:00-00:59 in the user's time zone, 167 = Sunday 23:00-23:59)
and its kind. Stored packed, 10 bytes each: occurred_at (uint32), hour of week (uint8), kind
(uint8, its high bit set when the event had no time zone) and a 32-bit tag of the event's id, so
that recording the same event twice (a retried write) keeps one observation.

Some events carry no time zone (Braze's purchases never do): their hour is UTC's when recorded, and
a profile read later places them in the user's own zone, the last one their other events showed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import IntEnum
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOURS_PER_WEEK: Final = 168
_PACKED: Final = struct.Struct(">IBBI")
OBSERVATION_BYTES: Final = _PACKED.size
_ZONE_UNKNOWN: Final = 0x80


class EngagementKind(IntEnum):
    """The kinds of engagement kept; the numbers are stored, so they never change meaning."""

    EMAIL_OPEN = 1
    EMAIL_CLICK = 2
    PUSH_OPEN = 3
    PURCHASE = 4
    SMS_CLICK = 5
    IN_APP_MESSAGE_CLICK = 6
    CONTENT_CARD_CLICK = 7

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True, order=True)
class Observation:
    occurred_at: int
    hour_of_week: int
    kind: EngagementKind
    tag: int = 0
    # False when the event had no usable time zone: hour_of_week is then UTC's.
    zone_known: bool = True

    def pack(self) -> bytes:
        kind = self.kind if self.zone_known else self.kind | _ZONE_UNKNOWN
        return _PACKED.pack(self.occurred_at, self.hour_of_week, kind, self.tag)

    def in_zone(self, zone: str | None) -> Observation:
        """The observation placed in ``zone`` when its own event had none (else itself)."""
        if self.zone_known or not zone or _zone(zone) is None:
            return self
        return replace(self, hour_of_week=hour_of_week(self.occurred_at, zone))


def unpack_observations(data: bytes) -> list[Observation]:
    if len(data) % OBSERVATION_BYTES:
        raise ValueError(f"packed observations are {len(data)} bytes, not a multiple of {OBSERVATION_BYTES}")
    return [
        Observation(at, hour, EngagementKind(kind & ~_ZONE_UNKNOWN), tag, not kind & _ZONE_UNKNOWN)
        for at, hour, kind, tag in _PACKED.iter_unpack(data)
    ]


def pack_observations(observations: Iterable[Observation]) -> bytes:
    return b"".join(observation.pack() for observation in observations)


def merge_observations(
    current: Iterable[Observation], new: Iterable[Observation], limit: int
) -> list[Observation]:
    """The newest ``limit`` distinct observations of both, newest first."""
    merged = set(current)
    merged.update(new)
    return sorted(merged, reverse=True)[:limit]


@lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def known_zone(timezone: Any) -> str | None:
    """``timezone`` when it is an IANA zone name this runtime knows (Braze's test events carry
    placeholders), else None."""
    return timezone if isinstance(timezone, str) and timezone and _zone(timezone) is not None else None


def hour_of_week(occurred_at: int, timezone: str | None) -> int:
    """The local hour of week of ``occurred_at`` in ``timezone`` (an IANA name); UTC when the name
    is missing or unknown."""
    zone = _zone(timezone) if timezone else None
    moment = datetime.fromtimestamp(occurred_at, zone or UTC)
    return moment.weekday() * 24 + moment.hour


@dataclass(frozen=True, slots=True)
class EngagementProfile:
    """One user's kept observations (newest first) and their counts by kind and by hour of week."""

    user_id: str
    observations: tuple[Observation, ...]
    by_kind: dict[str, int] = field(default_factory=dict)
    # kind label -> 168 counts, index = local hour of week
    by_hour_of_week: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # The user's time zone as their latest zoned event showed it (None: never seen).
    time_zone: str | None = None

    @classmethod
    def of(
        cls, user_id: str, observations: Iterable[Observation], time_zone: str | None = None
    ) -> EngagementProfile:
        kept = tuple(sorted((observation.in_zone(time_zone) for observation in observations), reverse=True))
        by_kind: dict[str, int] = {}
        hours: dict[str, list[int]] = {}
        for observation in kept:
            label = observation.kind.label
            by_kind[label] = by_kind.get(label, 0) + 1
            hours.setdefault(label, [0] * HOURS_PER_WEEK)[observation.hour_of_week] += 1
        by_hour = {label: tuple(counts) for label, counts in hours.items()}
        return cls(user_id, kept, by_kind, by_hour, time_zone)

    @property
    def total(self) -> int:
        return len(self.observations)
