"""The send-time model: where in a day each user is most likely to engage, learnt from their history.

Pure (no I/O). Every level of the hierarchy is a within-day distribution over the 24 local hours,
one per day of the week (Monday 0 .. Sunday 6):

    workspace(d, h)   = (c_ws(d, h) + b * workspace_daytype(t, h)) / (n_ws(d) + b)
    segment(d, h)     = (c_seg(d, h) + a_seg * workspace(d, h)) / (n_seg(d) + a_seg)
    sub_segment(d, h) = (c_sub(d, h) + a_sub * segment(d, h)) / (n_sub(d) + a_sub)
    user(d, h)       ~= c_u(t, h) + x * c_u(t', h) + a_u * sub_segment(d, h)

where c are recency-weighted event counts (an event half_life_days old counts half), t is the day
type of d (weekday Monday-Friday or weekend Saturday-Sunday), and n the count's total over the day.
A user's own events are pooled by day type: a year of a sparse user's events cannot tell Tuesday
from Wednesday, but weekday and weekend habits differ, so the other day type t' lends its events
only with the weight x the data gives it. The groups hold enough events to be kept per day of week.

How the hyperparameters are fitted on the data is in ``fitting``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from cdpbridge.integrations.notify.observations import (
    HOURS_PER_WEEK,
    WEEKEND_FIRST_HOUR,
    EngagementKind,
    Observation,
)

SECONDS_PER_DAY: Final = 86_400
# Day type of each hour of week (0 weekday, 1 weekend), its hour of day, the days of each type.
DAY_TYPE_OF_HOUR: Final = tuple(0 if how < WEEKEND_FIRST_HOUR else 1 for how in range(HOURS_PER_WEEK))
HOUR_OF_DAY: Final = tuple(how % 24 for how in range(HOURS_PER_WEEK))
DAYS_OF_TYPE: Final = ((0, 1, 2, 3, 4), (5, 6))

DEFAULT_KIND_WEIGHTS: Final[Mapping[EngagementKind, float]] = dict.fromkeys(EngagementKind, 1.0)
NO_KERNEL: Final = (1.0,)


class Basis(StrEnum):
    """Whose history decided a user's slot: their own, or the nearest group that has history."""

    USER = "user"
    SUB_SEGMENT = "sub_segment"
    SEGMENT = "segment"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A user's groups from the opt-in export (either may be unknown)."""

    segment: str | None = None
    sub_segment: str | None = None


NO_GROUP: Final = GroupKey()


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    half_life_days: float
    user_strength: float
    sub_segment_strength: float
    segment_strength: float
    day_strength: float
    kind_weights: Mapping[EngagementKind, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
    # How a user's event at hour h is spread over h-k..h+k (weights sum to 1): habits are smooth
    # in time, so an event at 8:50 says something about 9:00 too.
    hour_kernel: tuple[float, ...] = NO_KERNEL
    # How much a user's events of the other day type count (0: weekday and weekend wholly apart).
    cross_day_type_weight: float = 0.0

    def decay_per_second(self) -> float:
        return decay_per_second(self.half_life_days)


def decay_per_second(half_life_days: float) -> float:
    """The exponential decay rate of a half-life; an infinite half-life does not decay."""
    return 0.0 if math.isinf(half_life_days) else math.log(2) / (half_life_days * SECONDS_PER_DAY)


@dataclass(frozen=True, slots=True)
class FitOverrides:
    """Hyperparameters fixed by the program instead of fitted (None: fit it)."""

    half_life_days: float | None = None
    user_strength: float | None = None
    sub_segment_strength: float | None = None
    segment_strength: float | None = None
    day_strength: float | None = None
    kind_weights: Mapping[EngagementKind, float] | None = None
    hour_kernel: tuple[float, ...] | None = None
    cross_day_type_weight: float | None = None


@dataclass(frozen=True, slots=True)
class UserCounts:
    """A user's recency-weighted events by day type and hour of day (sparse: most users have few)."""

    # cell = day_type * 24 + hour_of_day -> weight
    cells: dict[int, float]
    totals: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Choice:
    hour_of_day: int
    basis: Basis


# -- counting ---------------------------------------------------------------------------------------


def user_counts(
    observations: Iterable[Observation],
    now: int,
    decay_per_second: float,
    kind_weights: Mapping[EngagementKind, float],
    kernel: tuple[float, ...] = NO_KERNEL,
) -> UserCounts:
    """The user's weighted counts, spread by ``kernel``; an event after ``now`` counts as of now."""
    cells: dict[int, float] = {}
    weekday_total = weekend_total = 0.0
    exp = math.exp
    for observation in observations:
        age = now - observation.occurred_at
        weight = kind_weights[observation.kind] * (exp(-decay_per_second * age) if age > 0 else 1.0)
        if weight <= 0.0:
            continue
        how = observation.hour_of_week
        day_type = DAY_TYPE_OF_HOUR[how]
        cell = day_type * 24 + HOUR_OF_DAY[how]
        cells[cell] = cells.get(cell, 0.0) + weight
        if day_type:
            weekend_total += weight
        else:
            weekday_total += weight
    if len(kernel) > 1:
        cells = smooth_cells(cells, kernel)
    return UserCounts(cells, (weekday_total, weekend_total))


def smooth_cells(cells: Mapping[int, float], kernel: Sequence[float]) -> dict[int, float]:
    """Spreads each cell's weight over its neighbouring hours (around the clock, within its day type)."""
    reach = len(kernel) // 2
    smoothed: dict[int, float] = {}
    for cell, weight in cells.items():
        base = cell - cell % 24
        hour = cell % 24
        for step, share in enumerate(kernel):
            target = base + (hour + step - reach) % 24
            smoothed[target] = smoothed.get(target, 0.0) + weight * share
    return smoothed


def week_counts(
    observations: Iterable[Observation],
    into: list[float],
    now: int,
    decay_per_second: float,
    kind_weights: Mapping[EngagementKind, float],
) -> None:
    exp = math.exp
    for observation in observations:
        age = now - observation.occurred_at
        into[observation.hour_of_week] += kind_weights[observation.kind] * (
            exp(-decay_per_second * age) if age > 0 else 1.0
        )


# -- distributions ----------------------------------------------------------------------------------


def day_slice(week: Sequence[float], day: int) -> list[float]:
    return list(week[day * 24 : day * 24 + 24])


# -- the fitted model -------------------------------------------------------------------------------


@dataclass(slots=True)
class SendTimeModel:
    """Fitted shares per group level; choose() picks a user's hour on a given day of week."""

    hyperparameters: Hyperparameters
    workspace: list[float]
    segments: dict[str, list[float]]
    sub_segments: dict[GroupKey, list[float]]
    # Which group levels have events of their own (a basis names only a level that has history).
    segment_has_events: dict[str, bool]
    sub_segment_has_events: dict[GroupKey, bool]
    workspace_has_events: bool
    # (group, day, candidate hours) -> (best hour, its share, the day's shares, basis of the group)
    _group_best: dict[tuple[GroupKey, int, tuple[int, ...]], tuple[int, float, list[float], Basis]] = field(
        default_factory=dict
    )

    def group_shares(self, group: GroupKey) -> tuple[list[float], Basis]:
        """The week of day shares a user of ``group`` starts from, and the level that gave them."""
        if group.segment is not None or group.sub_segment is not None:
            sub = self.sub_segments.get(group)
            if sub is not None and group.sub_segment is not None:
                basis = Basis.SUB_SEGMENT if self.sub_segment_has_events.get(group) else None
                if basis is None:
                    basis = self._segment_basis(group.segment)
                return sub, basis
            if group.segment is not None and group.segment in self.segments:
                return self.segments[group.segment], self._segment_basis(group.segment)
        return self.workspace, Basis.WORKSPACE

    def _segment_basis(self, segment: str | None) -> Basis:
        if segment is not None and self.segment_has_events.get(segment):
            return Basis.SEGMENT
        return Basis.WORKSPACE

    def _best_of_group(
        self, group: GroupKey, day: int, hours: tuple[int, ...]
    ) -> tuple[int, float, list[float], Basis]:
        key = (group, day, hours)
        cached = self._group_best.get(key)
        if cached is None:
            week, basis = self.group_shares(group)
            shares = day_slice(week, day)
            best = max(hours, key=lambda hour: (shares[hour], -hour))
            cached = (best, shares[best], shares, basis)
            self._group_best[key] = cached
        return cached

    def choose(self, counts: UserCounts | None, group: GroupKey, day: int, hours: tuple[int, ...]) -> Choice:
        """The user's best hour among ``hours`` (local hours of day that hold a slot) on weekday ``day``.

        The posterior share of hour h is proportional to
        c_u(t, h) + x * c_u(other day type, h) + a_u * group(d, h): only the hours where the user
        has events can beat the group's best hour, so only those are scored.
        """
        if not hours:
            raise ValueError("no candidate hours")
        best_hour, best_share, shares, basis = self._best_of_group(group, day, hours)
        if counts is None:
            return Choice(best_hour, basis)
        hyper = self.hyperparameters
        day_type = 1 if day >= 5 else 0
        cross = hyper.cross_day_type_weight
        if counts.totals[day_type] + cross * counts.totals[1 - day_type] <= 0.0:
            return Choice(best_hour, basis)
        strength = hyper.user_strength
        cells = counts.cells
        offset = day_type * 24
        other = (1 - day_type) * 24
        best_score = (
            cells.get(offset + best_hour, 0.0)
            + cross * cells.get(other + best_hour, 0.0)
            + strength * best_share
        )
        for hour in hours:
            own = cells.get(offset + hour)
            borrowed = cells.get(other + hour) if cross else None
            if own is None and borrowed is None:
                continue
            score = (own or 0.0) + cross * (borrowed or 0.0) + strength * shares[hour]
            if score > best_score or (score == best_score and hour < best_hour):
                best_hour, best_score = hour, score
        return Choice(best_hour, Basis.USER)

    def user_shares(self, counts: UserCounts | None, group: GroupKey, day: int) -> list[float]:
        """The user's posterior hour-of-day shares on weekday ``day`` (for reports and tests)."""
        week, _ = self.group_shares(group)
        shares = day_slice(week, day)
        if counts is None:
            return shares
        hyper = self.hyperparameters
        day_type = 1 if day >= 5 else 0
        cross = hyper.cross_day_type_weight
        strength = hyper.user_strength
        denominator = counts.totals[day_type] + cross * counts.totals[1 - day_type] + strength
        offset = day_type * 24
        other = (1 - day_type) * 24
        return [
            (
                counts.cells.get(offset + hour, 0.0)
                + cross * counts.cells.get(other + hour, 0.0)
                + strength * shares[hour]
            )
            / denominator
            for hour in range(24)
        ]
