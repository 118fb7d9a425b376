from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cdpbridge.integrations.notify.observations import (
    EngagementKind,
    Observation,
    fixed_offset_hour_of_week,
    hour_of_week,
    hour_of_week_at_epoch,
    is_weekend_hour,
    time_zone,
    weekday_hour,
)

NEW_YORK = ZoneInfo("America/New_York")


def test_monday_midnight_is_zero_and_sunday_late_is_167() -> None:
    assert hour_of_week(datetime(2026, 12, 7, 0, 30, tzinfo=NEW_YORK), NEW_YORK) == 0
    assert hour_of_week(datetime(2026, 12, 13, 23, 59, tzinfo=NEW_YORK), NEW_YORK) == 167
    assert weekday_hour(date(2026, 12, 8), 10) == 34


def test_same_instant_differs_by_zone() -> None:
    instant = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday
    assert hour_of_week(instant, NEW_YORK) == 10
    assert hour_of_week(instant, ZoneInfo("Asia/Tokyo")) == 24  # Tuesday 00:00


def test_spring_forward_uses_the_offset_of_each_instant() -> None:
    # 2026-03-08 (a Sunday): New York goes from 02:00 EST to 03:00 EDT.
    before = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    after = before + timedelta(hours=1)
    assert hour_of_week(before, NEW_YORK) == 6 * 24 + 1
    assert hour_of_week(after, NEW_YORK) == 6 * 24 + 3


def test_fall_back_gives_the_repeated_hour_twice() -> None:
    # 2026-11-01 (a Sunday): 01:00-02:00 happens twice in New York.
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    second = first + timedelta(hours=1)
    assert hour_of_week(first, NEW_YORK) == hour_of_week(second, NEW_YORK) == 6 * 24 + 1
    assert hour_of_week_at_epoch(int(second.timestamp()) + 3600, NEW_YORK) == 6 * 24 + 2


def test_fixed_offset_reads_the_wall_clock_written() -> None:
    written = datetime.fromisoformat("2026-12-08T10:15:00+05:30")
    assert fixed_offset_hour_of_week(written) == 24 + 10
    assert fixed_offset_hour_of_week(datetime(2026, 12, 8, 23, 0, tzinfo=timezone(timedelta(hours=-3)))) == 47


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        hour_of_week(datetime(2026, 12, 8, 10), NEW_YORK)


def test_observation_at_and_bounds() -> None:
    observation = Observation.at(
        "u1", EngagementKind.EMAIL_OPEN, datetime(2026, 12, 12, 15, tzinfo=UTC), NEW_YORK
    )
    assert observation.hour_of_week == 5 * 24 + 10
    assert is_weekend_hour(observation.hour_of_week)
    assert observation.occurred_at == int(datetime(2026, 12, 12, 15, tzinfo=UTC).timestamp())
    with pytest.raises(ValueError, match=r"0\.\.167"):
        Observation("u1", EngagementKind.PURCHASE, 0, 168)


def test_unknown_zone_is_named() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        time_zone("Mars/Olympus")
