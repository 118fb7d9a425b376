"""Engagement observations and profiles: what the send-time optimiser learns a user's best hour from.

An observation is one open, click or purchase: when it happened (epoch seconds), the local hour of
week it happened in (0 = Monday 00:00-00:59 in the user's time zone, 167 = Sunday 23:00-23:59)
and its kind. Stored packed, 10 bytes each: occurred_at (uint32), hour of week (uint8), kind
(uint8) and a 32-bit tag of the event's id, so that recording the same event twice (a retried
write) keeps one observation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import IntEnum
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOURS_PER_WEEK: Final = 168
_PACKED: Final = struct.Struct(">IBBI")
OBSERVATION_BYTES: Final = _PACKED.size


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

    def pack(self) -> bytes:
        return _PACKED.pack(self.occurred_at, self.hour_of_week, self.kind, self.tag)


def unpack_observations(data: bytes) -> list[Observation]:
    if len(data) % OBSERVATION_BYTES:
        raise ValueError(f"packed observations are {len(data)} bytes, not a multiple of {OBSERVATION_BYTES}")
    return [
        Observation(at, hour, EngagementKind(kind), tag) for at, hour, kind, tag in _PACKED.iter_unpack(data)
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


def hour_of_week(occurred_at: int, timezone: str | None) -> int:
    """The local hour of week of ``occurred_at`` in ``timezone`` (an IANA name); UTC when the name
    is missing or unknown (Braze's test events carry placeholder time zones)."""
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

    @classmethod
    def of(cls, user_id: str, observations: Iterable[Observation]) -> EngagementProfile:
        kept = tuple(sorted(observations, reverse=True))
        by_kind: dict[str, int] = {}
        hours: dict[str, list[int]] = {}
        for observation in kept:
            label = observation.kind.label
            by_kind[label] = by_kind.get(label, 0) + 1
            hours.setdefault(label, [0] * HOURS_PER_WEEK)[observation.hour_of_week] += 1
        return cls(user_id, kept, by_kind, {label: tuple(counts) for label, counts in hours.items()})

    @property
    def total(self) -> int:
        return len(self.observations)
