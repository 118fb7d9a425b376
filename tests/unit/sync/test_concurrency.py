"""The window of requests in flight: additive increase, multiplicative decrease, under a ceiling."""

from __future__ import annotations

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
