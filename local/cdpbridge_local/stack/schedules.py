"""EventBridge schedule expressions: rate(...) and the six-field cron(...), and when they fire next."""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
# EventBridge numbers the days of the week 1 (Sunday) to 7 (Saturday).
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
# How far ahead a cron expression is searched for its next match.
_SEARCH_YEARS = 5


class ScheduleExpressionError(ValueError):
    """A schedule expression the local clock cannot evaluate."""


@dataclass(frozen=True, slots=True)
class _CronField:
    values: frozenset[int]
    any: bool = False  # "*" or "?"
    last: bool = False  # "L" in day-of-month
    nth_weekday: tuple[int, int] | None = None  # "6#3": the third Friday
    last_weekday: int | None = None  # "6L": the last Friday


def _parse_field(text: str, low: int, high: int, names: dict[str, int], what: str) -> _CronField:
    text = text.upper()
    if text in ("*", "?"):
        return _CronField(frozenset(range(low, high + 1)), any=True)
    if text == "L" and what == "day-of-month":
        return _CronField(frozenset(), last=True)
    if what == "day-of-week" and "#" in text:
        day, _, nth = text.partition("#")
        return _CronField(frozenset(), nth_weekday=(_value(day, names, what), int(nth)))
    if what == "day-of-week" and text.endswith("L") and len(text) > 1:
        return _CronField(frozenset(), last_weekday=_value(text[:-1], names, what))
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, names, what), _value(last, names, what)
        else:
            start = _value(base, names, what)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ScheduleExpressionError(f"{what} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return _CronField(frozenset(values))


def _value(text: str, names: dict[str, int], what: str) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ScheduleExpressionError(f"{what} value {text!r} is not supported by the local clock")
    return int(text)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    minutes: _CronField
    hours: _CronField
    days_of_month: _CronField
    months: _CronField
    days_of_week: _CronField
    years: _CronField

    @classmethod
    def parse(cls, body: str) -> CronSchedule:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleExpressionError(
                f"cron({body}) needs six fields: minutes hours day-of-month month day-of-week year"
            )
        return cls(
            minutes=_parse_field(fields[0], 0, 59, {}, "minutes"),
            hours=_parse_field(fields[1], 0, 23, {}, "hours"),
            days_of_month=_parse_field(fields[2], 1, 31, {}, "day-of-month"),
            months=_parse_field(fields[3], 1, 12, {k.upper(): v for k, v in _MONTHS.items()}, "month"),
            days_of_week=_parse_field(fields[4], 1, 7, _WEEKDAYS, "day-of-week"),
            years=_parse_field(fields[5], 1970, 2199, {}, "year"),
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months.values or day.year not in self.years.values:
            return False
        weekday = day.isoweekday() % 7 + 1
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        dom = self.days_of_month
        dow = self.days_of_week
        dom_ok = day.day == days_in_month if dom.last else day.day in dom.values
        if dow.nth_weekday is not None:
            wanted, nth = dow.nth_weekday
            dow_ok = weekday == wanted and (day.day - 1) // 7 + 1 == nth
        elif dow.last_weekday is not None:
            dow_ok = weekday == dow.last_weekday and day.day + 7 > days_in_month
        else:
            dow_ok = weekday in dow.values
        # One of the two day fields is "?" in EventBridge; the other one decides.
        if dom.any:
            return dow_ok
        if dow.any:
            return dom_ok
        return dom_ok and dow_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment`` (in ``moment``'s time zone)."""
        start = (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * _SEARCH_YEARS):
            if self._day_matches(day):
                for hour in sorted(self.hours.values):
                    for minute in sorted(self.minutes.values):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        raise ScheduleExpressionError(f"the cron expression never fires within {_SEARCH_YEARS} years")


def next_fire_time(expression: str, after: datetime, timezone: str = "UTC") -> datetime | None:
    """When ``expression`` fires next after ``after`` (UTC); None for a one-time schedule in the past."""
    expression = expression.strip()
    after = after.astimezone(UTC)
    rate = _RATE.match(expression)
    if rate is not None:
        amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if amount < 1:
            raise ScheduleExpressionError(f"{expression}: the rate must be at least 1")
        return after + timedelta(**{f"{unit}s": amount})
    zone = ZoneInfo(timezone)
    at = _AT.match(expression)
    if at is not None:
        moment = datetime.fromisoformat(at.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return moment if moment > after else None
    cron = _CRON.match(expression)
    if cron is not None:
        local = CronSchedule.parse(cron.group(1)).next_after(after.astimezone(zone))
        return local.astimezone(UTC)
    raise ScheduleExpressionError(f"{expression!r} is not a rate(), cron() or at() expression")


class ScheduledTrigger(Hashable, Protocol):
    """What the clock needs of a schedule (cdpbridge_local.stack.functions.ScheduleTrigger has it)."""

    @property
    def expression(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    @property
    def enabled(self) -> bool: ...


class ScheduleClock[TriggerT: ScheduledTrigger]:
    """Fires schedules when they are due, until ``wait`` reports a stop.

    ``wait(seconds)`` sleeps and returns True when the clock must stop (a threading.Event's wait);
    ``now`` and ``wait`` are parameters so that tests can run the clock on simulated time.
    """

    # Re-check at least this often, so that a stop or a changed wall clock is noticed.
    MAX_WAIT_S = 1.0

    def __init__(
        self,
        triggers: Iterable[TriggerT],
        fire: Callable[[TriggerT, datetime], object],
        wait: Callable[[float], bool],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.fire = fire
        self.wait = wait
        self.now = now
        self.due: dict[TriggerT, datetime] = {}
        started = now()
        for trigger in triggers:
            if trigger.enabled:
                fire_at = next_fire_time(trigger.expression, started, trigger.timezone)
                if fire_at is not None:
                    self.due[trigger] = fire_at

    def run(self) -> None:
        while self.due:
            trigger, fire_at = min(self.due.items(), key=lambda item: item[1])
            wait_s = (fire_at - self.now()).total_seconds()
            if wait_s > 0:
                if self.wait(min(wait_s, self.MAX_WAIT_S)):
                    return
                continue
            try:
                self.fire(trigger, fire_at)
            except Exception:  # one failing schedule must not stop the others
                logger.exception("firing a schedule failed")
            following = next_fire_time(trigger.expression, fire_at, trigger.timezone)
            if following is None:
                del self.due[trigger]
            else:
                self.due[trigger] = following
