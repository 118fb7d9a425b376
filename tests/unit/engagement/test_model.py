"""Observations: local hour of week from the event's time zone, packing, bounded merging, profiles."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cdpbridge.engagement import HOURS_PER_WEEK, EngagementKind, EngagementProfile, Observation, hour_of_week
from cdpbridge.engagement.model import merge_observations, pack_observations, unpack_observations

# Monday 2026-12-07 14:30 UTC
MONDAY_1430_UTC = int(datetime(2026, 12, 7, 14, 30, tzinfo=ZoneInfo("UTC")).timestamp())


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (None, 14),  # Monday 14:00 UTC
        ("UTC", 14),
        ("America/New_York", 9),  # Monday 09:30 local
        ("Asia/Tokyo", 23),  # Monday 23:30 local
        ("Pacific/Kiritimati", 24 + 4),  # Tuesday 04:30 local (UTC+14)
        ("f47ac10b-58cc-4372-a567-0e02b2c3d479", 14),  # Braze test events: a placeholder, read as UTC
    ],
)
def test_hour_of_week_is_local_to_the_events_time_zone(zone, expected):
    assert hour_of_week(MONDAY_1430_UTC, zone) == expected


def test_sunday_night_is_the_last_hour_of_the_week():
    sunday = int(datetime(2026, 12, 13, 23, 59, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())
    assert hour_of_week(sunday, "Europe/Berlin") == HOURS_PER_WEEK - 1


def test_observations_pack_into_10_bytes_each_and_back():
    observations = [
        Observation(MONDAY_1430_UTC, 14, EngagementKind.EMAIL_OPEN, 7),
        Observation(1, 0, EngagementKind.PURCHASE, 2**32 - 1),
    ]
    packed = pack_observations(observations)
    assert len(packed) == 20
    assert unpack_observations(packed) == observations
    with pytest.raises(ValueError, match="not a multiple of 10"):
        unpack_observations(packed[:-1])


def test_merging_keeps_the_newest_distinct_observations_up_to_the_bound():
    old = [Observation(t, 0, EngagementKind.EMAIL_CLICK, t) for t in range(10)]
    new = [Observation(t, 1, EngagementKind.PUSH_OPEN, t) for t in range(5, 15)] + old[:3]
    merged = merge_observations(old, new, limit=12)
    assert len(merged) == 12
    assert merged == sorted(merged, reverse=True)
    assert merged[0].occurred_at == 14 and min(o.occurred_at for o in merged) >= 5
    assert len(merge_observations(old, old, limit=100)) == 10


def test_a_profile_counts_by_kind_and_by_hour_of_week():
    observations = [
        Observation(100, 9, EngagementKind.EMAIL_OPEN, 1),
        Observation(200, 9, EngagementKind.EMAIL_OPEN, 2),
        Observation(300, 20, EngagementKind.EMAIL_OPEN, 3),
        Observation(400, 9, EngagementKind.PURCHASE, 4),
    ]
    profile = EngagementProfile.of("u1", observations)
    assert profile.total == 4
    assert profile.by_kind == {"email_open": 3, "purchase": 1}
    assert len(profile.by_hour_of_week["email_open"]) == HOURS_PER_WEEK
    assert profile.by_hour_of_week["email_open"][9] == 2 and profile.by_hour_of_week["email_open"][20] == 1
    assert profile.by_hour_of_week["purchase"][9] == 1
    assert profile.observations[0].occurred_at == 400


def test_an_observation_without_time_zone_keeps_that_fact_and_takes_the_users_zone_when_read():
    # Given a purchase (Braze's purchases carry no time zone) recorded with UTC's hour
    purchase = Observation(MONDAY_1430_UTC, 14, EngagementKind.PURCHASE, 9, zone_known=False)
    (unpacked,) = unpack_observations(pack_observations([purchase]))
    assert unpacked == purchase and not unpacked.zone_known
    # When the profile is read with the user's zone (from their other events)
    profile = EngagementProfile.of(
        "u1", [unpacked, Observation(MONDAY_1430_UTC, 9, EngagementKind.EMAIL_OPEN, 1)], "America/New_York"
    )
    # Then the purchase is placed at 09:00 local, like the open; an unknown zone changes nothing
    assert profile.by_hour_of_week["purchase"][9] == 1
    assert profile.by_hour_of_week["email_open"][9] == 1
    assert profile.time_zone == "America/New_York"
    assert EngagementProfile.of("u1", [unpacked], "Not/AZone").by_hour_of_week["purchase"][14] == 1
