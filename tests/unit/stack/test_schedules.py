"""Schedule expressions and the clock that fires them."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cdpbridge_local.stack.schedules import ScheduleClock, ScheduleExpressionError, next_fire_time

MONDAY_NOON = datetime(2024, 5, 6, 12, 0, 30, tzinfo=UTC)  # 2024-05-06 is a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(5 minutes)", MONDAY_NOON + timedelta(minutes=5)),
        ("rate(1 hour)", MONDAY_NOON + timedelta(hours=1)),
        ("rate(2 days)", MONDAY_NOON + timedelta(days=2)),
        ("cron(0/15 * * * ? *)", datetime(2024, 5, 6, 12, 15, tzinfo=UTC)),
        ("cron(0 3 * * ? *)", datetime(2024, 5, 7, 3, 0, tzinfo=UTC)),
        ("cron(30 9 ? * MON-FRI *)", datetime(2024, 5, 7, 9, 30, tzinfo=UTC)),
        ("cron(0 8 ? * 1 *)", datetime(2024, 5, 12, 8, 0, tzinfo=UTC)),  # 1 = Sunday
        ("cron(0 0 L * ? *)", datetime(2024, 5, 31, 0, 0, tzinfo=UTC)),
        ("cron(0 10 ? * 6#3 *)", datetime(2024, 5, 17, 10, 0, tzinfo=UTC)),  # third Friday
        ("cron(0 10 ? * 6L *)", datetime(2024, 5, 31, 10, 0, tzinfo=UTC)),  # last Friday
        ("cron(0 12 1 JAN,JUL ? 2025)", datetime(2025, 1, 1, 12, 0, tzinfo=UTC)),
        ("at(2024-05-06T13:00:00)", datetime(2024, 5, 6, 13, 0, tzinfo=UTC)),
        ("at(2024-05-06T11:00:00)", None),
    ],
)
def test_next_fire_time_in_utc(expression, expected):
    assert next_fire_time(expression, MONDAY_NOON) == expected


def test_cron_in_a_time_zone_fires_at_local_wall_time():
    # 03:00 in Berlin during summer time is 01:00 UTC
    assert next_fire_time("cron(0 3 * * ? *)", MONDAY_NOON, "Europe/Berlin") == datetime(
        2024, 5, 7, 1, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 3 * *)", "needs six fields"),
        ("cron(61 * * * ? *)", "outside 0-59"),
        ("cron(0 0 15W * ? *)", "not supported"),
        ("every day", "not a rate"),
    ],
)
def test_bad_expressions_say_why(expression, message):
    with pytest.raises(ScheduleExpressionError, match=message):
        next_fire_time(expression, MONDAY_NOON)


@dataclass(frozen=True)
class Trigger:
    expression: str
    enabled: bool = True
    timezone: str = "UTC"


def test_the_clock_fires_each_schedule_when_due_and_stops_when_told():
    # Given a simulated clock and two schedules (one disabled)
    now = [MONDAY_NOON]
    fired: list[tuple[str, datetime]] = []
    every_ten = Trigger("rate(10 minutes)")
    quarter = Trigger("cron(0/15 * * * ? *)")
    disabled = Trigger("rate(1 minute)", enabled=False)

    def wait(seconds: float) -> bool:
        now[0] += timedelta(seconds=seconds)
        return now[0] > MONDAY_NOON + timedelta(minutes=31)

    clock = ScheduleClock(
        [every_ten, quarter, disabled], lambda t, at: fired.append((t.expression, at)), wait, lambda: now[0]
    )

    # When it runs for half an hour of simulated time
    clock.run()

    # Then each enabled schedule fired on its own times, in order
    assert fired == [
        ("rate(10 minutes)", MONDAY_NOON + timedelta(minutes=10)),
        ("cron(0/15 * * * ? *)", datetime(2024, 5, 6, 12, 15, tzinfo=UTC)),
        ("rate(10 minutes)", MONDAY_NOON + timedelta(minutes=20)),
        ("cron(0/15 * * * ? *)", datetime(2024, 5, 6, 12, 30, tzinfo=UTC)),
        ("rate(10 minutes)", MONDAY_NOON + timedelta(minutes=30)),
    ]


def test_a_failing_schedule_does_not_stop_the_clock():
    now = [MONDAY_NOON]
    calls: list[datetime] = []

    def fire(_trigger: Trigger, at: datetime) -> None:
        calls.append(at)
        raise RuntimeError("boom")

    def wait(seconds: float) -> bool:
        now[0] += timedelta(seconds=seconds)
        return now[0] > MONDAY_NOON + timedelta(minutes=3)

    ScheduleClock([Trigger("rate(1 minute)")], fire, wait, lambda: now[0]).run()
    assert len(calls) == 3
