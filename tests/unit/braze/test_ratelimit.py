"""Token buckets with an injected clock: nothing here sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from cdpbridge.braze import BrazeSettings
from cdpbridge.braze.ratelimit import MIN_429_PENALTY_S, RateLimiter, RateLimitHeaders, TokenBucket

WALL_START = 1_800_000_000.0


class Clocks:
    """A monotonic and a wall clock that move together, and a waiter that moves them."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = WALL_START
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def wall_clock(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def waiter(self, condition: threading.Condition, seconds: float) -> bool:
        self.waits.append(seconds)
        self.advance(seconds)
        return False


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def bucket(clocks: Clocks, limit: int = 3, window_s: float = 3.0) -> TokenBucket:
    return TokenBucket(
        "users.track",
        limit,
        window_s,
        clock=clocks.monotonic,
        wall_clock=clocks.wall_clock,
        waiter=clocks.waiter,
    )


def headers(**values: str) -> RateLimitHeaders:
    return RateLimitHeaders.parse(values, wall_now=WALL_START)


def test_a_new_bucket_admits_its_limit_then_asks_to_wait_for_the_refill(clocks: Clocks) -> None:
    # Given a bucket of 3 per 3 s / When 3 tokens are taken / Then the 4th is due in 1 s
    limited = bucket(clocks)
    assert [limited.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limited.try_acquire() == pytest.approx(1.0)
    clocks.advance(0.5)
    assert limited.try_acquire() == pytest.approx(0.5)
    clocks.advance(0.5)
    assert limited.try_acquire() == 0.0


def test_refill_never_exceeds_the_limit(clocks: Clocks) -> None:
    limited = bucket(clocks)
    clocks.advance(3600)
    assert limited.available() == 3.0


def test_acquire_sleeps_once_until_the_token_is_due_instead_of_spinning(clocks: Clocks) -> None:
    # Given an empty bucket
    limited = bucket(clocks, limit=10, window_s=1.0)
    for _ in range(10):
        assert limited.acquire()
    # When one more token is asked for / Then one wait of exactly the refill time happens
    assert limited.acquire() is True
    assert clocks.waits == [pytest.approx(0.1)]


def test_acquire_with_a_hopeless_timeout_returns_false_at_once_and_takes_nothing(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=1, window_s=10.0)
    assert limited.acquire()
    assert limited.acquire(timeout_s=5.0) is False
    assert clocks.waits == []
    assert limited.acquire(timeout_s=10.0) is True
    assert clocks.waits == [pytest.approx(10.0)]


def test_a_lower_limit_header_shrinks_the_bucket(clocks: Clocks) -> None:
    # Given our 3000/3 s bucket / When Braze says the limit is 300 / Then we refill at 100/s, capped at 300
    limited = bucket(clocks, limit=3000, window_s=3.0)
    limited.observe(headers(**{"X-RateLimit-Limit": "300"}))
    assert limited.capacity == 300
    assert limited.rate_per_s == pytest.approx(100)
    # A higher limit is not believed: our configured one stands.
    limited.observe(headers(**{"X-RateLimit-Limit": "90000"}))
    assert limited.capacity == 300


def test_braze_saying_fewer_remain_is_trusted_until_its_reset(clocks: Clocks) -> None:
    # Given a full bucket of 100/s
    limited = bucket(clocks, limit=300, window_s=3.0)
    # When Braze says 2 remain until a reset 2 s away (other clients share the workspace)
    limited.observe(headers(**{"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(int(WALL_START + 2))}))
    # Then only 2 go, and the next one waits for Braze's reset although our refill would allow it sooner
    assert limited.try_acquire() == 0.0
    assert limited.try_acquire() == 0.0
    assert limited.try_acquire() == pytest.approx(2.0)
    clocks.advance(2.0)
    assert limited.try_acquire() == 0.0


def test_more_remaining_than_we_think_does_not_add_tokens(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=3, window_s=3.0)
    for _ in range(3):
        limited.try_acquire()
    limited.observe(
        headers(**{"X-RateLimit-Remaining": "2999", "X-RateLimit-Reset": str(int(WALL_START + 3))})
    )
    assert limited.try_acquire() > 0


def test_a_late_response_from_an_ended_window_is_ignored(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=300, window_s=3.0)
    clocks.advance(10)
    # Reset lies in the past: the window it describes is over.
    limited.observe(RateLimitHeaders(remaining=0, reset_epoch_s=WALL_START + 3))
    assert limited.try_acquire() == 0.0


def test_within_one_window_the_lowest_remaining_wins(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=300, window_s=3.0)
    reset = str(int(WALL_START + 3))
    limited.observe(headers(**{"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": reset}))
    # A slower response counted earlier in the same window says more remain: it is stale.
    limited.observe(headers(**{"X-RateLimit-Remaining": "50", "X-RateLimit-Reset": reset}))
    assert limited.try_acquire() == 0.0
    assert limited.try_acquire() == pytest.approx(3.0)


def test_a_429_blocks_the_bucket_until_brazes_reset(clocks: Clocks) -> None:
    # Given a bucket with tokens left
    limited = bucket(clocks, limit=300, window_s=3.0)
    # When Braze answers 429 with a reset 2 s away
    blocked = limited.penalize(
        headers(**{"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(WALL_START + 2))})
    )
    # Then nothing goes until then
    assert blocked == pytest.approx(2.0)
    assert limited.try_acquire() == pytest.approx(2.0)
    assert limited.acquire() is True
    assert sum(clocks.waits) == pytest.approx(2.0 + 1 / 100)


def test_a_429_whose_reset_already_passed_still_pauses_briefly(clocks: Clocks) -> None:
    # Reset has one-second resolution, so "now" may print as the second that just ended.
    limited = bucket(clocks, limit=300, window_s=3.0)
    blocked = limited.penalize(RateLimitHeaders(remaining=0, reset_epoch_s=WALL_START - 0.4))
    assert blocked == MIN_429_PENALTY_S
    assert limited.try_acquire() == pytest.approx(MIN_429_PENALTY_S)


def test_a_429_without_reset_uses_retry_after(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=300, window_s=3.0)
    assert limited.penalize(headers(**{"Retry-After": "7"})) == pytest.approx(7.0)


def test_header_names_are_case_insensitive_and_values_tolerant() -> None:
    mixed = RateLimitHeaders.parse(
        {"x-RateLimit-limit": "3000", "X-RATELIMIT-REMAINING": "12", "x-ratelimit-reset": "1800000003"},
        wall_now=WALL_START,
    )
    assert (mixed.limit, mixed.remaining, mixed.reset_epoch_s) == (3000, 12, 1_800_000_003)
    assert mixed.seconds_until_reset(WALL_START) == pytest.approx(3.0)
    junk = RateLimitHeaders.parse({"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "nan"}, wall_now=0)
    assert junk == RateLimitHeaders()


def test_a_small_reset_value_is_read_as_seconds_from_now() -> None:
    parsed = RateLimitHeaders.parse({"X-RateLimit-Reset": "2"}, wall_now=WALL_START)
    assert parsed.reset_epoch_s == WALL_START + 2


def test_retry_after_may_be_seconds_or_an_http_date() -> None:
    assert RateLimitHeaders.parse({"Retry-After": "4"}, wall_now=WALL_START).retry_after_s == 4.0
    when = format_datetime(datetime.fromtimestamp(WALL_START + 30, tz=UTC), usegmt=True)
    assert RateLimitHeaders.parse({"Retry-After": when}, wall_now=WALL_START).retry_after_s == pytest.approx(
        30
    )
    assert RateLimitHeaders.parse({"Retry-After": "whenever"}, wall_now=WALL_START).retry_after_s is None


def test_an_absurd_reset_is_capped_so_a_skewed_clock_cannot_stall_a_run() -> None:
    far = RateLimitHeaders(reset_epoch_s=WALL_START + 10 * 86400)
    assert far.seconds_until_reset(WALL_START) == 3600.0


def test_threads_racing_for_tokens_never_take_more_than_the_limit(clocks: Clocks) -> None:
    # Given a frozen clock and 8 threads grabbing 500 times each from a bucket of 1000
    limited = bucket(clocks, limit=1000, window_s=1.0)
    taken: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        mine = sum(1 for _ in range(500) if limited.try_acquire() == 0.0)
        with lock:
            taken.append(mine)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly the limit was handed out
    assert sum(taken) == 1000


def test_the_limiter_has_one_bucket_per_family_sized_from_settings() -> None:
    settings = BrazeSettings.model_validate(
        {"instance": "US-01", "rate_limits": {"cohorts": {"limit": 10, "window_s": 5}}}
    )
    limiter = RateLimiter(settings.rate_limits)
    assert limiter.bucket("cohorts").capacity == 10
    assert limiter.bucket("cohorts").rate_per_s == pytest.approx(2)
    assert limiter.bucket("users.track").capacity == 3000
    assert limiter.bucket("users.track") is limiter.bucket("users.track")
    with pytest.raises(ValueError, match="no rate limit configured"):
        limiter.bucket("users.merge")
