"""Retry delays: full jitter, exponential, capped, and never earlier than Braze asked."""

from __future__ import annotations

import pytest

from cdpbridge.braze import RetryPolicy
from cdpbridge.braze.backoff import backoff_delay

POLICY = RetryPolicy(max_attempts=10, max_elapsed_s=120, base_delay_s=0.5, max_delay_s=8)


def upper(low: float, high: float) -> float:
    return high


def lower(low: float, high: float) -> float:
    return low


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)])
def test_the_ceiling_doubles_per_attempt_up_to_max_delay(attempt: int, ceiling: float) -> None:
    # Given the largest possible draw / When the delay is computed / Then it is the capped exponential
    assert backoff_delay(POLICY, attempt, uniform=upper) == ceiling


def test_full_jitter_can_be_anything_down_to_zero() -> None:
    assert backoff_delay(POLICY, 4, uniform=lower) == 0.0


def test_real_draws_stay_within_the_ceiling() -> None:
    delays = [backoff_delay(POLICY, 3) for _ in range(500)]
    assert all(0.0 <= delay <= 2.0 for delay in delays)
    # Jitter actually spreads them.
    assert len({round(delay, 3) for delay in delays}) > 100


def test_a_server_hint_is_honoured_even_when_the_jitter_draws_low() -> None:
    # Given Braze said "reset in 2.5 s" / When the draw is zero / Then we still wait at least 2.5 s
    assert backoff_delay(POLICY, 1, server_hint_s=2.5, uniform=lower) == 2.5
    # ... plus at most a little spread so that waiting threads do not all fire together
    assert backoff_delay(POLICY, 1, server_hint_s=2.5, uniform=upper) == 3.0


def test_a_small_hint_does_not_shorten_a_longer_backoff() -> None:
    assert backoff_delay(POLICY, 5, server_hint_s=0.1, uniform=upper) == 8.0


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(POLICY, 0)


def test_a_huge_attempt_number_does_not_overflow() -> None:
    assert backoff_delay(POLICY, 10_000, uniform=upper) == 8.0
