"""The engagement route: opens, clicks and purchases become per-user observations for Notify.

Machine opens (Apple Mail privacy protection and the like, Braze's ``machine_open``) say nothing
about when a person reads mail and are left out. The user is the event's ``external_user_id``,
else its Braze ``user_id``. An event's hour is local to its ``timezone``; events without one (all
purchases) are marked, and the user's zone, from their latest zoned event, places them when read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cdpbridge.engagement.model import EngagementKind, Observation, hour_of_week, known_zone

ENGAGEMENT_EVENT_TYPES: Final[dict[str, EngagementKind]] = {
    "users.messages.email.Open": EngagementKind.EMAIL_OPEN,
    "users.messages.email.Click": EngagementKind.EMAIL_CLICK,
    "users.messages.pushnotification.Open": EngagementKind.PUSH_OPEN,
    "users.behaviors.Purchase": EngagementKind.PURCHASE,
    "users.messages.sms.ShortLinkClick": EngagementKind.SMS_CLICK,
    "users.messages.inappmessage.Click": EngagementKind.IN_APP_MESSAGE_CLICK,
    "users.messages.contentcard.Click": EngagementKind.CONTENT_CARD_CLICK,
}


def is_machine_open(value: Any) -> bool:
    # Braze's schema types machine_open as a string ("true"); a boolean is accepted too.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass(slots=True)
class EngagementBatch:
    """Observations per user id, and what was left out and why."""

    by_user: dict[str, list[Observation]] = field(default_factory=dict)
    # user id -> (time, zone) of their latest event with a real time zone
    zones: dict[str, tuple[int, str]] = field(default_factory=dict)
    observations: int = 0
    machine_opens: int = 0
    without_user: int = 0
    without_time: int = 0


def add_observations(
    batch: EngagementBatch, kind: EngagementKind, records: Sequence[dict[str, Any]], keys: Sequence[bytes]
) -> None:
    """Adds one observation per record of ``kind`` (``keys`` are the records' event keys, in order)."""
    by_user = batch.by_user
    zones = batch.zones
    for record, key in zip(records, keys, strict=True):
        if kind is EngagementKind.EMAIL_OPEN and is_machine_open(record.get("machine_open")):
            batch.machine_opens += 1
            continue
        user_id = record.get("external_user_id") or record.get("user_id")
        if not user_id:
            batch.without_user += 1
            continue
        occurred_at = record.get("time")
        if not isinstance(occurred_at, int) or not 0 <= occurred_at < 1 << 32:
            batch.without_time += 1
            continue
        user = str(user_id)
        zone = known_zone(record.get("timezone"))
        hour = hour_of_week(occurred_at, zone)
        by_user.setdefault(user, []).append(
            Observation(occurred_at, hour, kind, int.from_bytes(key[:4]), bool(zone))
        )
        if zone is not None:
            latest = zones.get(user)
            if latest is None or latest[0] <= occurred_at:
                zones[user] = (occurred_at, zone)
        batch.observations += 1
