"""Fitting the send-time model's hyperparameters on the history itself; nothing is tuned by hand.

- Prior strengths of the groups (day toward day type, segment toward workspace, sub-segment toward
  segment), in pseudo-events: the method of moments of a Dirichlet-multinomial, i.e. how far the
  children's hour shares spread around their parent's beyond what counting noise explains.
- Recency half-life: held-out likelihood; the last weeks of history are predicted from the earlier
  ones under each candidate half-life.
- The user level (prior strength, hour kernel, weight of the other day type): held-out likelihood;
  every fourth event of each user is predicted from their other events.

Fits use a sample of users spread over the whole population, so their cost does not grow with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from cdpbridge.integrations.notify.model import (
    DAY_TYPE_OF_HOUR,
    DAYS_OF_TYPE,
    DEFAULT_KIND_WEIGHTS,
    HOUR_OF_DAY,
    NO_GROUP,
    NO_KERNEL,
    SECONDS_PER_DAY,
    FitOverrides,
    GroupKey,
    Hyperparameters,
    SendTimeModel,
    UserCounts,
    day_slice,
    decay_per_second,
    smooth_cells,
    user_counts,
    week_counts,
)
from cdpbridge.integrations.notify.observations import HOURS_PER_WEEK, EngagementKind, Observation

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
# Candidate spreads of one event over neighbouring hours, multiples of the moment-fitted user
# prior strength, and weights of the other day type, tried by held-out likelihood.
KERNEL_CANDIDATES: Final = (NO_KERNEL, (0.25, 0.5, 0.25), (0.1, 0.2, 0.4, 0.2, 0.1))
STRENGTH_FACTORS: Final = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0)
CROSS_DAY_TYPE_CANDIDATES: Final = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5)
# Every HOLDOUT_EVERY-th event of a user is held out when fitting the user level.
HOLDOUT_EVERY: Final = 4


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
    for days in DAYS_OF_TYPE:
        pooled = [sum(counts[day * 24 + hour] for day in days) for hour in range(24)]
        total = sum(pooled)
        result.append([(value + 1.0 / 24) / (total + 1.0) for value in pooled])
    return result[0], result[1]


def _parent_for_day_type(week_shares: Sequence[float], day_type: int) -> list[float]:
    days = DAYS_OF_TYPE[day_type]
    return [sum(week_shares[day * 24 + hour] for day in days) / len(days) for hour in range(24)]


# -- group levels -----------------------------------------------------------------------------------


@dataclass(slots=True)
class LevelCounts:
    """A group's counts by hour of week: recency-weighted (the estimates) and raw (the moment fits,
    since counting noise is in events, not in weights)."""

    weighted: list[float]
    raw: list[float]

    @classmethod
    def empty(cls) -> LevelCounts:
        return cls([0.0] * HOURS_PER_WEEK, [0.0] * HOURS_PER_WEEK)

    def add(self, other: LevelCounts) -> None:
        for how in range(HOURS_PER_WEEK):
            self.weighted[how] += other.weighted[how]
            self.raw[how] += other.raw[how]


@dataclass(frozen=True, slots=True)
class LevelShares:
    """A group's fitted day shares: from weighted counts (used) and raw counts (the next moment fit)."""

    weighted: list[float]
    raw: list[float]


def leaf_counts(
    histories: Mapping[str, Sequence[Observation]],
    groups: Mapping[str, GroupKey],
    now: int,
    decay: float,
    kind_weights: Mapping[EngagementKind, float],
) -> dict[GroupKey, LevelCounts]:
    """Counts per (segment, sub-segment) as the users' groups name them."""
    unit_weights = dict.fromkeys(EngagementKind, 1.0)
    leaves: dict[GroupKey, LevelCounts] = {}
    for key, observations in histories.items():
        if not observations:
            continue
        group = groups.get(key, NO_GROUP)
        counts = leaves.get(group)
        if counts is None:
            counts = leaves[group] = LevelCounts.empty()
        week_counts(observations, counts.weighted, now, decay, kind_weights)
        counted = (o for o in observations if kind_weights[o.kind] > 0)
        week_counts(counted, counts.raw, now, 0.0, unit_weights)
    return leaves


def shrink_level[Key](
    children: Mapping[Key, LevelCounts],
    parent_of: Callable[[Key], LevelShares],
    strength: float | None,
) -> tuple[float, dict[Key, LevelShares]]:
    """Each child's day shares shrunk toward its parent's, with a moment-fitted strength unless given."""
    if strength is None:
        strength = moment_strength(
            (day_slice(counts.raw, day), day_slice(parent_of(key).raw, day))
            for key, counts in children.items()
            for day in range(7)
        )
    fitted = strength if strength is not None else MAX_STRENGTH
    shares = {
        key: LevelShares(
            _shrunk_week(counts.weighted, parent_of(key).weighted, fitted),
            _shrunk_week(counts.raw, parent_of(key).raw, fitted),
        )
        for key, counts in children.items()
    }
    return fitted, shares


@dataclass(frozen=True, slots=True)
class GroupFit:
    workspace: LevelShares
    segments: dict[str, LevelShares]
    sub_segments: dict[GroupKey, LevelShares]
    day_strength: float
    segment_strength: float
    sub_segment_strength: float
    segment_has_events: dict[str, bool]
    sub_segment_has_events: dict[GroupKey, bool]
    workspace_has_events: bool

    def raw_week(self, group: GroupKey) -> list[float]:
        """The raw-count shares a user of ``group`` is compared with in the moment fit."""
        if group in self.sub_segments:
            return self.sub_segments[group].raw
        if group.segment is not None and group.segment in self.segments:
            return self.segments[group.segment].raw
        return self.workspace.raw


def fit_groups(leaves: Mapping[GroupKey, LevelCounts], overrides: FitOverrides) -> GroupFit:
    """Workspace (each day toward its day type), segments toward it, sub-segments toward those."""
    workspace_counts = LevelCounts.empty()
    segment_counts: dict[str, LevelCounts] = {}
    for group, counts in leaves.items():
        workspace_counts.add(counts)
        if group.segment is not None:
            segment_counts.setdefault(group.segment, LevelCounts.empty()).add(counts)
    sub_counts = {group: counts for group, counts in leaves.items() if group.sub_segment is not None}

    daytype = LevelShares(_daytype_week(workspace_counts.weighted), _daytype_week(workspace_counts.raw))
    day_strength, days = shrink_level(
        {"workspace": workspace_counts}, lambda _: daytype, overrides.day_strength
    )
    workspace = days["workspace"]
    segment_strength, segments = shrink_level(segment_counts, lambda _: workspace, overrides.segment_strength)

    def parent_of(group: GroupKey) -> LevelShares:
        return segments[group.segment] if group.segment is not None else workspace

    sub_strength, sub_segments = shrink_level(sub_counts, parent_of, overrides.sub_segment_strength)
    return GroupFit(
        workspace=workspace,
        segments=segments,
        sub_segments=sub_segments,
        day_strength=day_strength,
        segment_strength=segment_strength,
        sub_segment_strength=sub_strength,
        segment_has_events={name: sum(counts.weighted) > 0 for name, counts in segment_counts.items()},
        sub_segment_has_events={group: sum(counts.weighted) > 0 for group, counts in sub_counts.items()},
        workspace_has_events=sum(workspace_counts.weighted) > 0,
    )


def _daytype_week(counts: Sequence[float]) -> list[float]:
    """The weekday and weekend shares laid out over the week (each day gets its day type's)."""
    weekday, weekend = _daytype_shares(counts)
    return [
        (weekend if DAY_TYPE_OF_HOUR[how] else weekday)[HOUR_OF_DAY[how]] for how in range(HOURS_PER_WEEK)
    ]


def moment_user_strength(
    histories: Mapping[str, Sequence[Observation]],
    groups: Mapping[str, GroupKey],
    group_fit: GroupFit,
    now: int,
    kind_weights: Mapping[EngagementKind, float],
) -> float | None:
    """The moment estimate of the user prior strength: users' raw day-type shares around their group's."""
    parents: dict[GroupKey, tuple[list[float], list[float]]] = {}

    def children() -> Iterator[tuple[list[float], list[float]]]:
        for key in _sample(histories, MAX_USERS_FOR_FIT):
            group = groups.get(key, NO_GROUP)
            pair = parents.get(group)
            if pair is None:
                week = group_fit.raw_week(group)
                pair = parents[group] = (_parent_for_day_type(week, 0), _parent_for_day_type(week, 1))
            counts = user_counts(histories[key], now, 0.0, kind_weights)
            for day_type in (0, 1):
                if counts.totals[day_type] >= 2:
                    offset = day_type * 24
                    yield [counts.cells.get(offset + h, 0.0) for h in range(24)], pair[day_type]

    return moment_strength(children())


# -- the whole fit ----------------------------------------------------------------------------------


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
    leaves = leaf_counts(histories, groups, now, decay_per_second(half_life), kind_weights)
    group_fit = fit_groups(leaves, overrides)
    user_strength = overrides.user_strength or moment_user_strength(
        histories, groups, group_fit, now, kind_weights
    )
    model = SendTimeModel(
        hyperparameters=Hyperparameters(
            half_life_days=half_life,
            user_strength=user_strength if user_strength is not None else MAX_STRENGTH,
            sub_segment_strength=group_fit.sub_segment_strength,
            segment_strength=group_fit.segment_strength,
            day_strength=group_fit.day_strength,
            kind_weights=kind_weights,
            hour_kernel=overrides.hour_kernel or NO_KERNEL,
            cross_day_type_weight=overrides.cross_day_type_weight or 0.0,
        ),
        workspace=group_fit.workspace.weighted,
        segments={name: shares.weighted for name, shares in group_fit.segments.items()},
        sub_segments={group: shares.weighted for group, shares in group_fit.sub_segments.items()},
        segment_has_events=group_fit.segment_has_events,
        sub_segment_has_events=group_fit.sub_segment_has_events,
        workspace_has_events=group_fit.workspace_has_events,
    )
    if None in (overrides.user_strength, overrides.hour_kernel, overrides.cross_day_type_weight):
        base = user_strength or 10.0
        strength, kernel, cross = fit_user_level(
            histories,
            groups,
            model,
            now,
            strengths=(
                (overrides.user_strength,)
                if overrides.user_strength is not None
                else tuple(min(MAX_STRENGTH, max(MIN_STRENGTH, base * f)) for f in STRENGTH_FACTORS)
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


# -- held-out likelihood fits -----------------------------------------------------------------------


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
        week_counts(before, week, cutoff, 0.0, kind_weights)
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
                t = DAY_TYPE_OF_HOUR[observation.hour_of_week]
                h = HOUR_OF_DAY[observation.hour_of_week]
                share = (counts.cells.get(t * 24 + h, 0.0) + strength * prior[t][h]) / (
                    counts.totals[t] + strength
                )
                likelihood += kind_weights[observation.kind] * math.log(share)
        if likelihood > best_likelihood:
            best, best_likelihood = half_life, likelihood
    return best


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
                day_type = DAY_TYPE_OF_HOUR[how]
                hour = HOUR_OF_DAY[how]
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
