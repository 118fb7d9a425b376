import math
import random
from datetime import UTC, datetime

import pytest

from cdpbridge.integrations.notify.fitting import (
    MAX_STRENGTH,
    MIN_STRENGTH,
    fit,
    fit_half_life,
    moment_strength,
)
from cdpbridge.integrations.notify.model import (
    Basis,
    FitOverrides,
    GroupKey,
    SendTimeModel,
    smooth_cells,
    user_counts,
)
from cdpbridge.integrations.notify.observations import EngagementKind, Observation

NOW = int(datetime(2026, 12, 7, 6, tzinfo=UTC).timestamp())
DAY = 86_400
TUESDAY = 1
SATURDAY = 5
WINDOW = tuple(range(8, 21))
MORNING = GroupKey("active", "morning")
EVENING = GroupKey("active", "evening")
WEIGHTS = dict.fromkeys(EngagementKind, 1.0)
FIXED = FitOverrides(
    half_life_days=math.inf, user_strength=10.0, hour_kernel=(1.0,), cross_day_type_weight=0.0
)


def events(
    user: str, hour_of_day: int, count: int, *, days_ago: float = 10, weekend: bool = False
) -> list[Observation]:
    """``count`` opens at ``hour_of_day``, spread over the weekdays (or the weekend days)."""
    days = (5, 6) if weekend else (0, 1, 2, 3, 4)
    return [
        Observation(
            user,
            EngagementKind.EMAIL_OPEN,
            NOW - int(days_ago * DAY) - i,
            days[i % len(days)] * 24 + hour_of_day,
        )
        for i in range(count)
    ]


def workspace(
    overrides: FitOverrides = FIXED,
) -> tuple[SendTimeModel, dict[str, list[Observation]], dict[str, GroupKey]]:
    """Two sub-segments of one segment: morning people (9:00) and evening people (18:00)."""
    histories: dict[str, list[Observation]] = {}
    groups: dict[str, GroupKey] = {}
    for index in range(40):
        histories[f"m{index}"] = events(f"m{index}", 9, 6)
        groups[f"m{index}"] = MORNING
        histories[f"e{index}"] = events(f"e{index}", 18, 4)
        groups[f"e{index}"] = EVENING
    return fit(histories, groups, NOW, overrides), histories, groups


def test_moment_strength_limits() -> None:
    uniform = [1 / 24] * 24
    assert moment_strength([([5.0] * 24, uniform)] * 10) == MAX_STRENGTH
    assert (
        moment_strength([([0.0] * (i % 24) + [50.0] + [0.0] * (23 - i % 24), uniform) for i in range(30)])
        == MIN_STRENGTH
    )
    assert moment_strength([([1.0] + [0.0] * 23, uniform)]) is None  # one count says nothing of spread


def test_moment_strength_recovers_a_dirichlet_concentration() -> None:
    rng = random.Random(3)
    parent = [math.exp(math.cos(2 * math.pi * h / 24)) for h in range(24)]
    parent = [p / sum(parent) for p in parent]
    concentration = 20.0
    children = []
    for _ in range(3000):
        draws = [rng.gammavariate(concentration * p, 1.0) for p in parent]
        shares = [d / sum(draws) for d in draws]
        counts = [0.0] * 24
        for hour in rng.choices(range(24), weights=shares, k=30):
            counts[hour] += 1
        children.append((counts, parent))
    estimate = moment_strength(children)
    assert estimate is not None and 15 < estimate < 27


def test_users_without_history_get_their_groups_best_slot() -> None:
    model, _, _ = workspace()
    assert model.choose(None, MORNING, TUESDAY, WINDOW).hour_of_day == 9
    assert model.choose(None, MORNING, TUESDAY, WINDOW).basis is Basis.SUB_SEGMENT
    assert model.choose(None, EVENING, TUESDAY, WINDOW).hour_of_day == 18
    # An unknown sub-segment falls back to its segment; an unknown segment to the workspace.
    segment_only = model.choose(None, GroupKey("active", "unheard-of"), TUESDAY, WINDOW)
    assert segment_only.basis is Basis.SEGMENT and segment_only.hour_of_day == 9  # 240 morning events vs 160
    assert model.choose(None, GroupKey("lapsed", None), TUESDAY, WINDOW).basis is Basis.WORKSPACE
    assert model.choose(None, GroupKey(), TUESDAY, WINDOW) == model.choose(
        None, GroupKey("x", "y"), TUESDAY, WINDOW
    )


def test_a_user_with_enough_history_gets_their_own_hour() -> None:
    model, _, _ = workspace()
    own = user_counts(events("u", 14, 30), NOW, 0.0, WEIGHTS)
    choice = model.choose(own, MORNING, TUESDAY, WINDOW)
    assert (choice.hour_of_day, choice.basis) == (14, Basis.USER)


def test_one_event_is_shrunk_toward_the_group() -> None:
    model, _, _ = workspace()
    once = user_counts(events("u", 14, 1), NOW, 0.0, WEIGHTS)
    choice = model.choose(once, MORNING, TUESDAY, WINDOW)
    assert (choice.hour_of_day, choice.basis) == (9, Basis.USER)
    shares = model.user_shares(once, MORNING, TUESDAY)
    assert shares[9] > shares[14] > model.user_shares(None, MORNING, TUESDAY)[14]
    assert sum(shares) == pytest.approx(1.0)


def test_only_hours_of_the_window_are_chosen() -> None:
    model, _, _ = workspace()
    own = user_counts(events("u", 6, 30), NOW, 0.0, WEIGHTS)
    assert model.choose(own, MORNING, TUESDAY, (10, 11, 12)).hour_of_day == 10
    assert model.choose(None, EVENING, TUESDAY, (8, 9, 10)).hour_of_day in (8, 9, 10)
    with pytest.raises(ValueError, match="no candidate"):
        model.choose(None, EVENING, TUESDAY, ())


def test_weekday_and_weekend_are_kept_apart() -> None:
    model, _, _ = workspace()
    weekend_only = user_counts(events("u", 20, 30, weekend=True), NOW, 0.0, WEIGHTS)
    assert model.choose(weekend_only, MORNING, SATURDAY, WINDOW).hour_of_day == 20
    weekday = model.choose(weekend_only, MORNING, TUESDAY, WINDOW)
    assert (weekday.hour_of_day, weekday.basis) == (9, Basis.SUB_SEGMENT)


def test_recency_weighting_follows_a_change_of_habit() -> None:
    history = events("u", 8, 20, days_ago=300) + events("u", 19, 5, days_ago=3)
    for half_life, expected in ((30.0, 19), (math.inf, 8)):
        model, _, _ = workspace(
            FitOverrides(
                half_life_days=half_life, user_strength=1.0, hour_kernel=(1.0,), cross_day_type_weight=0.0
            )
        )
        counts = user_counts(history, NOW, model.hyperparameters.decay_per_second(), WEIGHTS)
        assert model.choose(counts, MORNING, TUESDAY, WINDOW).hour_of_day == expected


def test_smoothing_spreads_weight_without_losing_it() -> None:
    cells = {23: 1.0, 24 + 5: 2.0}
    smoothed = smooth_cells(cells, (0.25, 0.5, 0.25))
    assert smoothed == {22: 0.25, 23: 0.5, 0: 0.25, 28: 0.5, 29: 1.0, 30: 0.5}
    assert sum(smoothed.values()) == pytest.approx(3.0)


def test_fitted_hyperparameters_stay_in_bounds() -> None:
    model, _, _ = workspace(FitOverrides())
    hyper = model.hyperparameters
    assert MIN_STRENGTH <= hyper.user_strength <= MAX_STRENGTH
    assert hyper.hour_kernel in ((1.0,), (0.25, 0.5, 0.25), (0.1, 0.2, 0.4, 0.2, 0.1))
    assert 0.0 <= hyper.cross_day_type_weight <= 0.5
    # Morning and evening people differ: the sub-segment level is far from its segment.
    assert hyper.sub_segment_strength < MAX_STRENGTH


def _habit_users(switch: bool) -> tuple[dict[str, list[Observation]], dict[str, GroupKey]]:
    rng = random.Random(5)
    histories: dict[str, list[Observation]] = {}
    for index in range(300):
        key = f"u{index}"
        old_hour, new_hour = rng.randrange(7, 22), rng.randrange(7, 22)
        observations = []
        for _ in range(24):
            days_ago = rng.uniform(0, 365)
            hour = new_hour if (switch and days_ago < 60) else old_hour
            observations.append(
                Observation(
                    key, EngagementKind.EMAIL_OPEN, NOW - int(days_ago * DAY), rng.randrange(5) * 24 + hour
                )
            )
        histories[key] = observations
    return histories, dict.fromkeys(histories, MORNING)


def test_half_life_is_short_when_habits_change_and_long_when_they_do_not() -> None:
    switched = fit_half_life(*_habit_users(switch=True), NOW, WEIGHTS)
    stable = fit_half_life(*_habit_users(switch=False), NOW, WEIGHTS)
    assert switched <= 60
    assert stable >= 180
