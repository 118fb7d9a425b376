"""Per-user engagement profiles (opens, clicks, purchases by local hour of week) for send-time choice."""

from cdpbridge.engagement.model import (
    HOURS_PER_WEEK,
    EngagementKind,
    EngagementProfile,
    Observation,
    hour_of_week,
)
from cdpbridge.engagement.store import (
    ENGAGEMENT_PROFILE_TABLE,
    DynamoDbEngagementStore,
    EngagementStore,
    SqliteEngagementStore,
)

__all__ = [
    "ENGAGEMENT_PROFILE_TABLE",
    "HOURS_PER_WEEK",
    "DynamoDbEngagementStore",
    "EngagementKind",
    "EngagementProfile",
    "EngagementStore",
    "Observation",
    "SqliteEngagementStore",
    "hour_of_week",
]
