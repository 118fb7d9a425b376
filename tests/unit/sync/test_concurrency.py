"""The window of requests in flight: additive increase, multiplicative decrease, under a ceiling."""

from __future__ import annotations

import itertools

import pytest

from cdpbridge.sync.concurrency import INITIAL_WINDOW, InFlightWindow


def answer(
    window: InFlightWindow,
    latency_s: float = 0.3,
    *,
    congested: bool = False,
    full: bool = True,
    now: float = 0.0,
) -> None:
    window.answered(latency_s=latency_s, congested=congested, window_was_full=full, now=now)


def test_the_window_doubles_each_round_trip_until_the_ceiling() -> None:
    window = InFlightWindow(ceiling=100)
    assert window.size == INITIAL_WINDOW
    for _ in range(INITIAL_WINDOW):
        answer(window)
    assert window.size == 2 * INITIAL_WINDOW
    for _ in range(200):
        answer(window)
    assert window.size == 100 and window.peak == 100


def test_a_window_that_is_not_full_does_not_grow() -> None:
    window = InFlightWindow(ceiling=100)
    for _ in range(50):
        answer(window, full=False)
    assert window.size == INITIAL_WINDOW


def test_a_rate_limited_answer_halves_the_window_once_per_round_trip() -> None:
    window = InFlightWindow(ceiling=100, limit=64)
    answer(window, congested=True, now=10.0)
    answer(window, congested=True, now=10.1)  # the same burst: not halved again
    assert window.size == 32
    answer(window, congested=True, now=10.5)
    assert window.size == 16
    # After congestion the window grows by one request per window of answers
    for _ in range(17):
        answer(window, now=11.0)
    assert window.size == 17


def test_answers_much_slower_than_the_fastest_stop_the_growth() -> None:
    window = InFlightWindow(ceiling=100, limit=40)
    answer(window, 0.3, now=1.0)
    answer(window, 0.9, now=2.0)
    answer(window, 3.0, now=5.0)
    # Held at the bound: neither grown nor shrunk, and out of slow start
    assert window.size == 41 and not window.slow_start
    # Noise on fast answers is not congestion
    fast = InFlightWindow(ceiling=100, limit=40)
    answer(fast, 0.001, now=1.0)
    answer(fast, 0.004, now=2.0)
    assert fast.size == 42


def test_the_window_never_goes_below_one_nor_above_the_ceiling() -> None:
    window = InFlightWindow(ceiling=4)
    assert window.size == 4
    for step in range(10):
        answer(window, congested=True, now=float(step))
    assert window.size == 1
    with pytest.raises(ValueError, match="at least 1"):
        InFlightWindow(ceiling=0)


def round_trip(
    window: InFlightWindow,
    latency_s: float,
    now: float,
    *,
    full: bool = True,
    held_s: float = 0.0,
    in_flight: int | None = None,
) -> float:
    """One window of answers, spread over one latency; returns the time after it."""
    answers = window.size
    for index in range(answers):
        window.answered(
            latency_s=latency_s,
            congested=False,
            window_was_full=full,
            now=now + latency_s * (index + 1) / answers,
            held_s=held_s,
            in_flight=window.size if in_flight is None else in_flight,
        )
    return now + latency_s


def test_a_sustained_rise_in_latency_shrinks_the_window_once_per_round_trip() -> None:
    window = InFlightWindow(ceiling=256, limit=64)
    now = 0.0
    for _ in range(3):
        now = round_trip(window, 0.3, now)
    before = window.limit
    assert before > 64
    # Braze answers in 1.2 s instead of 0.3: four times the base latency, round trip after round trip.
    limits = [before]
    for _ in range(5):
        now = round_trip(window, 1.2, now)
        limits.append(window.limit)
    assert not window.slow_start and limits[-1] < before / 4
    shrinks = [later / earlier for earlier, later in itertools.pairwise(limits) if later < earlier]
    # Multiplicative, at most halving, and at most once per round trip
    assert len(shrinks) >= 3 and all(0.5 <= ratio <= 0.9 for ratio in shrinks)
    # Each round trip's hundreds of slow answers shrank it once: never below half per round trip
    assert limits[-1] >= before / 2**5


def test_the_slow_tail_of_a_burst_does_not_shrink_the_window() -> None:
    """The answers of a burst that wait for the engine's busy threads are late; the first are not."""
    window = InFlightWindow(ceiling=256, limit=60, threshold=60)
    now = 0.0
    for _ in range(10):
        for index in range(60):
            latency_s = 1.0 if index < 20 else 2.6
            window.answered(
                latency_s=latency_s,
                congested=False,
                window_was_full=True,
                now=now + latency_s + index * 0.001,
                in_flight=60,
            )
        now += 3.0
    assert window.size >= 60 and window.smoothed_s is not None and window.smoothed_s > 2.0


def test_one_slow_outlier_does_not_shrink_the_window() -> None:
    window = InFlightWindow(ceiling=1000, limit=64)
    now = round_trip(window, 0.3, 0.0)
    before = window.limit
    for slow in range(5):
        answer(window, 10.0, now=now + slow * 0.01)
    # Held (slow answers never grow it), but five in a row, each 33x the base, shrink nothing
    assert window.limit == before
    answer(window, 0.3, now=now + 0.1)
    assert window.limit > before


def test_a_constant_latency_with_noise_never_shrinks_the_window() -> None:
    window = InFlightWindow(ceiling=256)
    now = 0.0
    sizes = []
    jitter = (0.0, 0.04, 0.01, 0.09, 0.02, 0.0, 0.12, 0.03)
    for step in range(400):
        window.answered(
            latency_s=0.3 + jitter[step % len(jitter)],
            congested=False,
            window_was_full=True,
            now=now,
            in_flight=window.size,
        )
        now += 0.3 / window.size
        sizes.append(window.size)
    assert sizes == sorted(sizes) and sizes[-1] == 256


def test_a_braze_slower_for_good_becomes_the_new_base() -> None:
    window = InFlightWindow(ceiling=256, limit=64)
    now = round_trip(window, 0.3, 0.0)
    for _ in range(40):
        now = round_trip(window, 1.2, now)
    assert window.base_s == 1.2
    shrunk = window.limit
    now = round_trip(window, 1.2, now)
    assert window.limit > shrunk


def test_requests_held_by_the_rate_limiter_stop_the_growth_without_shrinking() -> None:
    window = InFlightWindow(ceiling=256, limit=40)
    now = 0.0
    for _ in range(10):
        now = round_trip(window, 0.3, now, held_s=2.5)
    assert window.limit == 40 and not window.slow_start
    # A wait shorter than a round trip is the limiter spreading a burst: no sign
    round_trip(window, 0.3, now, held_s=0.2)
    assert window.limit > 40


def test_an_engine_that_cannot_fill_the_window_shrinks_it_to_what_it_uses() -> None:
    # Out of slow start (it grows by one request per window), back to which it may double
    window = InFlightWindow(ceiling=256, limit=64, threshold=64)
    now = 0.0
    # The CPU is busy: never more than 8 requests in flight for several round trips
    for _ in range(8):
        for index in range(8):
            window.answered(
                latency_s=0.3, congested=False, window_was_full=False, now=now + 0.3 * index / 8, in_flight=8
            )
        now += 0.3
    assert 8 <= window.size <= 9
    # Once the CPU frees up the window fills again and doubles back towards its former level
    now = round_trip(window, 0.3, now)
    now = round_trip(window, 0.3, now)
    assert window.threshold == 64 and window.slow_start and window.size >= 32


def test_without_the_requests_in_flight_the_busy_cpu_signal_only_stops_the_growth() -> None:
    window = InFlightWindow(ceiling=256, limit=64)
    for index in range(100):
        answer(window, full=False, now=index * 0.1)
    assert window.limit == 64
