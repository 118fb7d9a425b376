"""The send-time model: where in a day each user is most likely to engage, learnt from their history.

Pure (no I/O). Every level of the hierarchy is a within-day distribution over the 24 local hours,
one per day of the week (Monday 0 .. Sunday 6):

    workspace(d, h)   = (c_ws(d, h) + b * workspace_daytype(t, h)) / (n_ws(d) + b)
    segment(d, h)     = (c_seg(d, h) + a_seg * workspace(d, h)) / (n_seg(d) + a_seg)
    sub_segment(d, h) = (c_sub(d, h) + a_sub * segment(d, h)) / (n_sub(d) + a_sub)
    user(d, h)        = (c_u(t, h) + a_u * sub_segment(d, h)) / (n_u(t) + a_u)

where c are recency-weighted event counts (an event half_life_days old counts half), t is the day
type of d (weekday Monday-Friday or weekend Saturday-Sunday), and n the count's total over the day.
A user's own events are pooled by day type, never across day types: a year of a sparse user's
events cannot tell Tuesday from Wednesday, but weekday and weekend habits differ. The groups hold
enough events to be kept per day of week.

The prior strengths (a_u, a_sub, a_seg, b, in pseudo-events) are fitted by the method of moments of
a Dirichlet-multinomial on the data: how far the children's hour shares spread around their
parent's, beyond what counting noise explains. The half-life is fitted by held-out likelihood: the
last weeks of history are predicted from the earlier ones under each candidate half-life.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from cdpbridge.integrations.notify.observations import (
    HOURS_PER_WEEK,
    WEEKEND_FIRST_HOUR,
    EngagementKind,
    Observation,
)

SECONDS_PER_DAY: Final = 86_400
# Day type of each hour of week (0 weekday, 1 weekend) and its hour of day.
_DAY_TYPE: Final = tuple(0 if how < WEEKEND_FIRST_HOUR else 1 for how in range(HOURS_PER_WEEK))
_HOUR_OF_DAY: Final = tuple(how % 24 for how in range(HOURS_PER_WEEK))
_DAYS_OF_TYPE: Final = ((0, 1, 2, 3, 4), (5, 6))

# Prior strengths are kept inside these bounds: below, one event would decide a profile alone;
# above, the level adds nothing (its children are indistinguishable from it).
MIN_STRENGTH: Final = 0.5
MAX_STRENGTH: Final = 1e6
# Candidate half-lives (days) for the held-out fit; inf means no recency weighting.
HALF_LIFE_CANDIDATES: Final = (14.0, 30.0, 60.0, 90.0, 180.0, 365.0, math.inf)
HOLDOUT_DAYS: Final = 28
# Enough users for stable moment and likelihood estimates; more only costs time.
MAX_USERS_FOR_FIT: Final = 50_000
MAX_USERS_FOR_HALF_LIFE: Final = 20_000
MAX_USERS_FOR_USER_LEVEL: Final = 20_000
DEFAULT_KIND_WEIGHTS: Final[Mapping[EngagementKind, float]] = dict.fromkeys(EngagementKind, 1.0)
NO_KERNEL: Final = (1.0,)
# Candidate spreads of one event over neighbouring hours, and multiples of the moment-fitted user
# prior strength, tried by held-out likelihood.
KERNEL_CANDIDATES: Final = (NO_KERNEL, (0.25, 0.5, 0.25), (0.1, 0.2, 0.4, 0.2, 0.1))
STRENGTH_FACTORS: Final = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0)
CROSS_DAY_TYPE_CANDIDATES: Final = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5)
# Every HOLDOUT_EVERY-th event of a user is held out when fitting the user level.
HOLDOUT_EVERY: Final = 4


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
        day_type = _DAY_TYPE[how]
        cell = day_type * 24 + _HOUR_OF_DAY[how]
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


def _week_counts(
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


# -- method of moments ------------------------------------------------------------------------------


def moment_strength(children: Iterable[tuple[Sequence[float], Sequence[float]]]) -> float | None:
    """The Dirichlet concentration that best explains how children's shares spread around parents'.

    Each child is (counts over cells, parent's shares over the same cells). For n counts drawn from
    a Dirichlet(a * p)-multinomial, E[n * sum_h (x_h - p_h)^2] = (1 - sum_h p_h^2) * (n + a) / (1 + a);
    pooling children gives a = (sum Q_i n_i - S) / (S - sum Q_i). Children with fewer than two
    counts carry no information about the spread and are left out. None when nothing informs it.
    """
    spread = 0.0
    weighted_q = 0.0
    total_q = 0.0
    informative = 0
    for counts, parent in children:
        n = sum(counts)
        if n < 2:
            continue
        q = 1.0 - sum(share * share for share in parent)
        if q <= 0.0:
            continue
        spread += n * sum((count / n - share) ** 2 for count, share in zip(counts, parent, strict=True))
        weighted_q += q * n
        total_q += q
        informative += 1
    if informative == 0:
        return None
    if spread <= total_q:
        # No more spread than counting noise: the children are their parent.
        return MAX_STRENGTH
    if spread >= weighted_q:
        return MIN_STRENGTH
    return min(MAX_STRENGTH, max(MIN_STRENGTH, (weighted_q - spread) / (spread - total_q)))


# -- distributions ----------------------------------------------------------------------------------


def _day_slice(week: Sequence[float], day: int) -> list[float]:
    return list(week[day * 24 : day * 24 + 24])


def _shrunk_week(counts: Sequence[float], parent: Sequence[float], strength: float) -> list[float]:
    """Per day: (counts + strength * parent) / (day total + strength); parent is a week of day shares."""
    shares = [0.0] * HOURS_PER_WEEK
    for day in range(7):
        base = day * 24
        total = sum(counts[base : base + 24])
        denominator = total + strength
        for hour in range(base, base + 24):
            shares[hour] = (counts[hour] + strength * parent[hour]) / denominator
    return shares


def _daytype_shares(counts: Sequence[float]) -> tuple[list[float], list[float]]:
    """Weekday and weekend hour-of-day shares with one pseudo-event spread evenly (never zero)."""
    result: list[list[float]] = []
    for days in _DAYS_OF_TYPE:
        pooled = [sum(counts[day * 24 + hour] for day in days) for hour in range(24)]
        total = sum(pooled)
        result.append([(value + 1.0 / 24) / (total + 1.0) for value in pooled])
    return result[0], result[1]


def _parent_for_day_type(week_shares: Sequence[float], day_type: int) -> list[float]:
    days = _DAYS_OF_TYPE[day_type]
    return [sum(week_shares[day * 24 + hour] for day in days) / len(days) for hour in range(24)]


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
            shares = _day_slice(week, day)
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
        shares = _day_slice(week, day)
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


# -- fitting ----------------------------------------------------------------------------------------


def _sample(histories: Mapping[str, Sequence[Observation]], limit: int) -> Iterator[str]:
    """Up to ``limit`` user keys with history, spread evenly over the mapping's order."""
    keys = [key for key, observations in histories.items() if observations]
    step = max(1, len(keys) // limit)
    yield from keys[::step][:limit]


def fit_half_life(
    histories: Mapping[str, Sequence[Observation]],
    groups: Mapping[str, GroupKey],
    now: int,
    kind_weights: Mapping[EngagementKind, float],
    *,
    candidates: Sequence[float] = HALF_LIFE_CANDIDATES,
    holdout_days: int = HOLDOUT_DAYS,
) -> float:
    """The candidate half-life under which the history best predicts its own last weeks.

    Events of the last ``holdout_days`` are held out; each user's earlier events, weighted by the
    candidate's recency and shrunk toward their group's weekday/weekend shares (unweighted, with a
    moment-fitted strength), predict the hour of each held-out event. The candidate with the highest
    log-likelihood wins; with no held-out events there is nothing to learn and no weighting is used.
    """
    cutoff = now - holdout_days * SECONDS_PER_DAY
    trained: list[tuple[str, list[Observation], list[Observation]]] = []
    for key in _sample(histories, MAX_USERS_FOR_HALF_LIFE * 4):
        before = [o for o in histories[key] if o.occurred_at < cutoff]
        after = [o for o in histories[key] if o.occurred_at >= cutoff and kind_weights[o.kind] > 0]
        if before and after:
            trained.append((key, before, after))
        if len(trained) >= MAX_USERS_FOR_HALF_LIFE:
            break
    if not trained:
        return math.inf
    group_counts: dict[GroupKey, list[float]] = {}
    for key, before, _ in trained:
        week = group_counts.setdefault(groups.get(key, NO_GROUP), [0.0] * HOURS_PER_WEEK)
        _week_counts(before, week, cutoff, 0.0, kind_weights)
    group_daytype = {group: _daytype_shares(week) for group, week in group_counts.items()}
    raw = [
        (user_counts(before, cutoff, 0.0, kind_weights), groups.get(key, NO_GROUP))
        for key, before, _ in trained
    ]
    strength = moment_strength(
        ([counts.cells.get(t * 24 + h, 0.0) for h in range(24)], group_daytype[group][t])
        for counts, group in raw
        for t in (0, 1)
    )
    strength = strength if strength is not None else 10.0
    best, best_likelihood = math.inf, -math.inf
    for half_life in candidates:
        decay = decay_per_second(half_life)
        likelihood = 0.0
        for key, before, after in trained:
            counts = user_counts(before, cutoff, decay, kind_weights)
            prior = group_daytype[groups.get(key, NO_GROUP)]
            for observation in after:
                t = _DAY_TYPE[observation.hour_of_week]
                h = _HOUR_OF_DAY[observation.hour_of_week]
                share = (counts.cells.get(t * 24 + h, 0.0) + strength * prior[t][h]) / (
                    counts.totals[t] + strength
                )
                likelihood += kind_weights[observation.kind] * math.log(share)
        if likelihood > best_likelihood:
            best, best_likelihood = half_life, likelihood
    return best


def fit(
    histories: Mapping[str, Sequence[Observation]],
    groups: Mapping[str, GroupKey],
    now: int,
    overrides: FitOverrides | None = None,
) -> SendTimeModel:
    """Fits the hierarchy on every user's history; ``groups`` gives each user's segment/sub-segment.

    ``now`` (epoch seconds) is the instant recency is measured from, normally the planning time.
    """
    overrides = overrides or FitOverrides()
    kind_weights = dict(overrides.kind_weights or DEFAULT_KIND_WEIGHTS)
    half_life = overrides.half_life_days
    if half_life is None:
        half_life = fit_half_life(histories, groups, now, kind_weights)
    decay = decay_per_second(half_life)

    # Weighted counts (the estimates) and raw counts (the moment fits: counting noise is in events).
    leaf_weighted: dict[GroupKey, list[float]] = {}
    leaf_raw: dict[GroupKey, list[float]] = {}
    unit_weights = dict.fromkeys(EngagementKind, 1.0)
    for key, observations in histories.items():
        if not observations:
            continue
        group = groups.get(key, NO_GROUP)
        weighted = leaf_weighted.get(group)
        if weighted is None:
            weighted = leaf_weighted[group] = [0.0] * HOURS_PER_WEEK
            leaf_raw[group] = [0.0] * HOURS_PER_WEEK
        _week_counts(observations, weighted, now, decay, kind_weights)
        _week_counts(
            (o for o in observations if kind_weights[o.kind] > 0), leaf_raw[group], now, 0.0, unit_weights
        )

    def summed(
        leaves: dict[GroupKey, list[float]], segment: str | None = None, everything: bool = False
    ) -> list[float]:
        total = [0.0] * HOURS_PER_WEEK
        for group, week in leaves.items():
            if everything or group.segment == segment:
                for how in range(HOURS_PER_WEEK):
                    total[how] += week[how]
        return total

    workspace_weighted = summed(leaf_weighted, everything=True)
    workspace_raw = summed(leaf_raw, everything=True)
    segment_names = sorted({group.segment for group in leaf_weighted if group.segment is not None})
    segment_weighted = {name: summed(leaf_weighted, name) for name in segment_names}
    segment_raw = {name: summed(leaf_raw, name) for name in segment_names}
    sub_groups = sorted(
        (group for group in leaf_weighted if group.sub_segment is not None),
        key=lambda group: (group.segment or "", group.sub_segment or ""),
    )

    # Workspace: each day shrunk toward its day type's shares.
    weekday, weekend = _daytype_shares(workspace_weighted)
    workspace_daytype_week = [
        (weekend if _DAY_TYPE[how] else weekday)[_HOUR_OF_DAY[how]] for how in range(HOURS_PER_WEEK)
    ]
    raw_weekday, raw_weekend = _daytype_shares(workspace_raw)
    day_strength = overrides.day_strength or moment_strength(
        (_day_slice(workspace_raw, day), raw_weekend if day >= 5 else raw_weekday) for day in range(7)
    )
    day_strength = day_strength if day_strength is not None else MAX_STRENGTH
    workspace = _shrunk_week(workspace_weighted, workspace_daytype_week, day_strength)
    workspace_raw_shares = _shrunk_week(workspace_raw, workspace_daytype_week, day_strength)

    # Segments toward the workspace, day by day.
    segment_strength = overrides.segment_strength or moment_strength(
        (_day_slice(segment_raw[name], day), _day_slice(workspace_raw_shares, day))
        for name in segment_names
        for day in range(7)
    )
    segment_strength = segment_strength if segment_strength is not None else MAX_STRENGTH
    segments = {
        name: _shrunk_week(segment_weighted[name], workspace, segment_strength) for name in segment_names
    }
    segments_raw = {
        name: _shrunk_week(segment_raw[name], workspace_raw_shares, segment_strength)
        for name in segment_names
    }

    # Sub-segments toward their segment (or the workspace when the segment is unknown).
    def parent_of(group: GroupKey, raw: bool) -> list[float]:
        if group.segment is not None:
            return (segments_raw if raw else segments)[group.segment]
        return workspace_raw_shares if raw else workspace

    sub_strength = overrides.sub_segment_strength or moment_strength(
        (_day_slice(leaf_raw[group], day), _day_slice(parent_of(group, raw=True), day))
        for group in sub_groups
        for day in range(7)
    )
    sub_strength = sub_strength if sub_strength is not None else MAX_STRENGTH
    sub_segments = {
        group: _shrunk_week(leaf_weighted[group], parent_of(group, raw=False), sub_strength)
        for group in sub_groups
    }
    sub_segments_raw = {
        group: _shrunk_week(leaf_raw[group], parent_of(group, raw=True), sub_strength) for group in sub_groups
    }

    # Users toward their group, by day type: the moment fit over a sample of users.
    def group_week_raw(group: GroupKey) -> list[float]:
        if group in sub_segments_raw:
            return sub_segments_raw[group]
        if group.segment is not None and group.segment in segments_raw:
            return segments_raw[group.segment]
        return workspace_raw_shares

    daytype_parents: dict[GroupKey, tuple[list[float], list[float]]] = {}

    def user_children() -> Iterator[tuple[list[float], list[float]]]:
        for key in _sample(histories, MAX_USERS_FOR_FIT):
            group = groups.get(key, NO_GROUP)
            parents = daytype_parents.get(group)
            if parents is None:
                week = group_week_raw(group)
                parents = daytype_parents[group] = (
                    _parent_for_day_type(week, 0),
                    _parent_for_day_type(week, 1),
                )
            counts = user_counts(histories[key], now, 0.0, kind_weights)
            for day_type in (0, 1):
                if counts.totals[day_type] >= 2:
                    offset = day_type * 24
                    yield [counts.cells.get(offset + h, 0.0) for h in range(24)], parents[day_type]

    moment_user_strength = overrides.user_strength or moment_strength(user_children())
    model = SendTimeModel(
        hyperparameters=Hyperparameters(
            half_life_days=half_life,
            user_strength=moment_user_strength if moment_user_strength is not None else MAX_STRENGTH,
            sub_segment_strength=sub_strength,
            segment_strength=segment_strength,
            day_strength=day_strength,
            kind_weights=kind_weights,
            hour_kernel=overrides.hour_kernel or NO_KERNEL,
            cross_day_type_weight=overrides.cross_day_type_weight or 0.0,
        ),
        workspace=workspace,
        segments=segments,
        sub_segments=sub_segments,
        segment_has_events={name: sum(segment_weighted[name]) > 0 for name in segment_names},
        sub_segment_has_events={group: sum(leaf_weighted[group]) > 0 for group in sub_groups},
        workspace_has_events=sum(workspace_weighted) > 0,
    )
    if (
        overrides.user_strength is None
        or overrides.hour_kernel is None
        or overrides.cross_day_type_weight is None
    ):
        strength, kernel, cross = fit_user_level(
            histories,
            groups,
            model,
            now,
            strengths=(
                (overrides.user_strength,)
                if overrides.user_strength is not None
                else tuple(
                    min(MAX_STRENGTH, max(MIN_STRENGTH, (moment_user_strength or 10.0) * factor))
                    for factor in STRENGTH_FACTORS
                )
            ),
            kernels=(overrides.hour_kernel,) if overrides.hour_kernel is not None else KERNEL_CANDIDATES,
            crosses=(
                (overrides.cross_day_type_weight,)
                if overrides.cross_day_type_weight is not None
                else CROSS_DAY_TYPE_CANDIDATES
            ),
        )
        model.hyperparameters = replace(
            model.hyperparameters, user_strength=strength, hour_kernel=kernel, cross_day_type_weight=cross
        )
    return model


def fit_user_level(
    histories: Mapping[str, Sequence[Observation]],
    groups: Mapping[str, GroupKey],
    model: SendTimeModel,
    now: int,
    *,
    strengths: Sequence[float],
    kernels: Sequence[tuple[float, ...]],
    crosses: Sequence[float],
) -> tuple[float, tuple[float, ...], float]:
    """The user prior strength and hour kernel under which users' held-out events are most likely.

    Every HOLDOUT_EVERY-th event of each sampled user is held out; the rest, weighted as the model
    weighs them and spread by the kernel, are shrunk toward the user's group shares on the held-out
    event's day and predict its hour. The moment estimate assumes hours independent of each other;
    this fit lets neighbouring hours share evidence and sets how much a user's own events count.
    """
    hyper = model.hyperparameters
    decay = hyper.decay_per_second()
    weights = hyper.kind_weights
    prepared: list[tuple[UserCounts, list[float], list[tuple[int, float]]]] = []
    for key in _sample(histories, MAX_USERS_FOR_USER_LEVEL):
        observations = histories[key]
        if len(observations) < 2:
            continue
        train = [o for i, o in enumerate(observations) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
        held = [
            (o.hour_of_week, weights[o.kind])
            for i, o in enumerate(observations)
            if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 and weights[o.kind] > 0
        ]
        if not held:
            continue
        week, _ = model.group_shares(groups.get(key, NO_GROUP))
        prepared.append((user_counts(train, now, decay, weights), week, held))
    if not prepared:
        return strengths[len(strengths) // 2], kernels[0], crosses[0]

    def likelihood(cells_of: list[dict[int, float]], strength: float, cross: float) -> float:
        total = 0.0
        log = math.log
        for (counts, week, held), cells in zip(prepared, cells_of, strict=True):
            totals = counts.totals
            for how, weight in held:
                day_type = _DAY_TYPE[how]
                hour = _HOUR_OF_DAY[how]
                own = cells.get(day_type * 24 + hour, 0.0)
                borrowed = cells.get((1 - day_type) * 24 + hour, 0.0) if cross else 0.0
                share = (own + cross * borrowed + strength * week[how]) / (
                    totals[day_type] + cross * totals[1 - day_type] + strength
                )
                total += weight * log(share)
        return total

    # Coordinate ascent over the grid: kernel and strength with the day types apart, then how much
    # the other day type's events count, then the strength again for that.
    smoothed = {
        kernel: [smooth_cells(c.cells, kernel) if len(kernel) > 1 else c.cells for c, _, _ in prepared]
        for kernel in kernels
    }
    _, strength, kernel = max(
        (likelihood(smoothed[kernel], strength, 0.0), strength, kernel)
        for kernel in kernels
        for strength in strengths
    )
    _, cross = max((likelihood(smoothed[kernel], strength, cross), cross) for cross in crosses)
    if cross:
        _, strength = max((likelihood(smoothed[kernel], strength, cross), strength) for strength in strengths)
    return strength, kernel, cross
