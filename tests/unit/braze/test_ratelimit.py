"""The rate limiter with an injected clock: nothing here sleeps."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from cdpbridge.braze import BrazeSettings
from cdpbridge.braze.ratelimit import (
    EARLY_MARGIN_S,
    MAX_CLOCK_SHIFT_S,
    MIN_429_PENALTY_S,
    RateLimiter,
    RateLimitHeaders,
    Ticket,
    WindowLimiter,
)

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


def bucket(clocks: Clocks, limit: int = 3, window_s: float = 3.0) -> WindowLimiter:
    return WindowLimiter(
        "users.track",
        limit,
        window_s,
        clock=clocks.monotonic,
        wall_clock=clocks.wall_clock,
        waiter=clocks.waiter,
    )


def headers(**values: str) -> RateLimitHeaders:
    return RateLimitHeaders.parse(values, wall_now=WALL_START)


def test_without_headers_the_configured_limit_holds_per_window(clocks: Clocks) -> None:
    # Given 3 per 3 s and a server that says nothing / When 3 are admitted / Then the 4th waits for
    # the window that began with the first request to end
    limited = bucket(clocks)
    assert [limited.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limited.try_acquire() == pytest.approx(3.0)
    clocks.advance(2.5)
    limited.observe(RateLimitHeaders())
    assert limited.try_acquire() == pytest.approx(0.5)
    clocks.advance(0.5)
    assert [limited.try_acquire() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(3.0)]


def test_refill_never_exceeds_the_limit(clocks: Clocks) -> None:
    limited = bucket(clocks)
    clocks.advance(3600)
    assert limited.available() == 3.0


def test_acquire_sleeps_once_until_the_window_opens_instead_of_spinning(clocks: Clocks) -> None:
    # Given a window used up
    limited = bucket(clocks, limit=10, window_s=1.0)
    for _ in range(10):
        assert limited.acquire()
    # When one more is asked for / Then one wait, exactly until the next window, happens
    assert limited.acquire() is True
    assert clocks.waits == [pytest.approx(1.0)]


def test_acquire_with_a_hopeless_timeout_returns_false_at_once_and_takes_nothing(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=1, window_s=10.0)
    assert limited.acquire()
    assert limited.acquire(timeout_s=5.0) is False
    assert clocks.waits == []
    assert limited.acquire(timeout_s=10.0) is True
    assert clocks.waits == [pytest.approx(10.0)]


def test_a_lower_limit_header_shrinks_the_bucket(clocks: Clocks) -> None:
    # Given our 3000/3 s limit / When Braze says the limit is 300 / Then 300 per window (100/s)
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
    # Then nothing goes until then, and then at once
    assert blocked == pytest.approx(2.0)
    assert limited.try_acquire() == pytest.approx(2.0)
    assert limited.acquire() is True
    assert clocks.waits == [pytest.approx(2.0)]


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
    assert limiter.for_family("cohorts").capacity == 10
    assert limiter.for_family("cohorts").rate_per_s == pytest.approx(2)
    assert limiter.for_family("users.track").capacity == 3000
    assert limiter.for_family("users.track") is limiter.for_family("users.track")
    with pytest.raises(ValueError, match="no rate limit configured"):
        limiter.for_family("users.merge")


# -- following Braze's windows -------------------------------------------------------------------------


def said(clocks: Clocks, *, remaining: int, reset_in: float, limit: int | None = None) -> RateLimitHeaders:
    """What Braze's answer says now: ``remaining`` left in a window that ends ``reset_in`` s from now."""
    return RateLimitHeaders(limit=limit, remaining=remaining, reset_epoch_s=clocks.wall + reset_in)


def trust_expected_windows(clocks: Clocks, limited: WindowLimiter) -> None:
    """Lets one expected window start be confirmed on time, so that the next ones open in full.
    Leaves a window 3 s long just begun, with 9 of 10 left and nothing in flight."""
    first = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=9, reset_in=0.5), first)
    clocks.advance(0.5)
    probe = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=9, reset_in=3.0), probe)


def admit(limited: WindowLimiter, count: int) -> list[Ticket]:
    tickets = [limited.admit(timeout_s=0.0) for _ in range(count)]
    assert all(ticket is not None for ticket in tickets)
    return [ticket for ticket in tickets if ticket is not None]


def test_remaining_is_reduced_only_by_requests_sent_after_the_reporting_one(clocks: Clocks) -> None:
    # Given 6 requests in flight
    limited = bucket(clocks, limit=10, window_s=3.0)
    t = admit(limited, 6)
    # When the answer to the 3rd says 5 remain (Braze counted the first 3 and 2 of another client)
    limited.observe(said(clocks, remaining=5, reset_in=2.0), t[2])
    # Then the 3 sent after it will still be counted, the 2 sent before it were: 2 more may go
    # (subtracting all 5 in flight would leave none)
    assert limited.available() == 2
    # A slow answer counted earlier in the window changes nothing
    limited.observe(said(clocks, remaining=8, reset_in=2.0), t[0])
    assert limited.available() == 2
    # The answer to the last one confirms the count: still 2
    limited.observe(said(clocks, remaining=2, reset_in=2.0), t[5])
    assert limited.available() == 2
    assert admit(limited, 2)
    assert limited.admit(timeout_s=0.0) is None


def test_an_answer_counted_out_of_sending_order_is_not_subtracted_twice(clocks: Clocks) -> None:
    # Given 4 in flight where Braze counted the 4th before the 3rd
    limited = bucket(clocks, limit=100, window_s=3.0)
    t = admit(limited, 4)
    limited.observe(said(clocks, remaining=7, reset_in=2.0), t[3])
    assert limited.available() == 7
    # When the 3rd's answer says fewer remain / Then the lowest Remaining wins, and the 4th, answered
    # already, is in it: nothing is sent after the 3rd and still unanswered
    limited.observe(said(clocks, remaining=6, reset_in=2.0), t[2])
    assert limited.available() == 6


def test_a_request_without_answer_still_counts_until_its_window_is_long_past(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=10, window_s=3.0)
    trust_expected_windows(clocks, limited)
    # Given a request sent late in a window that timed out: Braze may have counted it, in that window
    # or the next
    clocks.advance(2.75)
    first = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=8, reset_in=0.25), first)
    late = admit(limited, 1)[0]
    limited.forget(late)
    assert limited.available() == 7
    # Then it still counts against the next window, but not against the one after
    clocks.advance(0.25)
    assert limited.available() == 9
    clocks.advance(3.0)
    assert limited.available() == 10


def test_at_the_reset_a_probe_then_full_windows_go(clocks: Clocks) -> None:
    # Given Braze's window (150 per 3 s) used up, ending in 1 s
    limited = bucket(clocks, limit=150, window_s=3.0)
    first = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=0, reset_in=1.0), first)
    assert limited.try_acquire() == pytest.approx(1.0)
    # When it ends / Then one request goes first: whether Braze has rolled over too is not known yet
    clocks.advance(1.0)
    assert limited.available() == 1
    probe = admit(limited, 1)[0]
    assert limited.available() == 0
    # Its answer comes from the new window: the rest of it goes
    clocks.advance(0.25)
    limited.observe(said(clocks, remaining=149, reset_in=2.75), probe)
    assert limited.available() == 149
    in_flight = admit(limited, 149)
    assert limited.available() == 0
    # And from now on a window opens in full, less what is still in flight (it may land there)
    clocks.advance(2.75)
    for ticket in in_flight[:140]:
        limited.observe(said(clocks, remaining=0, reset_in=0.0), ticket)
    assert limited.available() == 150 - 9
    assert limited.clock_shift_s == 0.0


def test_requests_sent_late_in_a_window_are_counted_against_the_next(clocks: Clocks) -> None:
    # Given a window that ends while 3 requests are on their way (trusted expected windows)
    limited = bucket(clocks, limit=10, window_s=3.0)
    trust_expected_windows(clocks, limited)
    clocks.advance(2.9)
    late = admit(limited, 3)
    clocks.advance(0.1)
    # When the next window opens / Then 3 fewer go until their answers say where they landed
    assert limited.available() == 7
    limited.observe(said(clocks, remaining=9, reset_in=2.9), late[0])
    assert limited.available() == 9 - 2
    limited.observe(said(clocks, remaining=0, reset_in=0.0), late[1])  # a late answer of the old window
    limited.observe(said(clocks, remaining=8, reset_in=2.9), late[2])
    assert limited.available() == 8


def test_a_window_braze_opened_before_our_clock_says_is_joined_at_once(clocks: Clocks) -> None:
    # Given Braze's clock 1 s ahead: its window ends at 3.0 s by our clock, but at 2.0 s by its own
    limited = bucket(clocks, limit=10, window_s=3.0)
    first = admit(limited, 1)[0]
    clocks.advance(0.3)
    limited.observe(said(clocks, remaining=1, reset_in=2.7), first)
    clocks.advance(1.7)
    second = admit(limited, 1)[0]
    assert limited.available() == 0
    # When the answer to a request sent at 2.0 s comes from Braze's next window
    clocks.advance(0.3)
    limited.observe(said(clocks, remaining=9, reset_in=2.7), second)
    # Then its count is followed at once (our own count of 10 per window lines up with it)
    assert limited.available() == 9
    assert limited.clock_shift_s == 0.0


def test_a_braze_clock_behind_ours_moves_the_window_ends_later(clocks: Clocks) -> None:
    # Given a window reported to end in 1 s, but Braze's clock is 0.5 s behind ours
    limited = bucket(clocks, limit=10, window_s=3.0)
    first = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=0, reset_in=1.0, limit=10), first)
    clocks.advance(1.0)
    probe = admit(limited, 1)[0]
    # When the probe sent at what we took for the reset is refused by the old window
    refused = said(clocks, remaining=0, reset_in=0.0, limit=10)
    limited.observe(refused, probe)
    blocked = limited.penalize(refused)
    # Then the ends move past it, the old window counts as full, and the 429 waits for the moved end
    assert limited.clock_shift_s == pytest.approx(EARLY_MARGIN_S)
    assert blocked == pytest.approx(max(EARLY_MARGIN_S, MIN_429_PENALTY_S))
    assert limited.available() == 0
    clocks.advance(blocked)
    # The next window is probed again, and its ends are expected 0.25 s later from now on
    assert limited.available() == 1
    probe = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=9, reset_in=3.0 - blocked), probe)
    assert limited.available() == 9
    assert limited.try_acquire() == 0.0
    # Braze's window, by our clock, now ends EARLY_MARGIN_S after its Reset
    clocks.advance(3.0 - blocked)
    assert limited.available() == 8
    clocks.advance(EARLY_MARGIN_S)
    assert limited.available() == 10 - 1  # a full one (trusted now), less the one still in flight


def test_the_clock_shift_is_bounded(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=10, window_s=3.0)
    ticket = admit(limited, 1)[0]
    clocks.advance(0.3)
    # A Reset 50 s in the past: a wildly wrong clock (or header) must not stall the windows
    limited.observe(said(clocks, remaining=5, reset_in=-50), ticket)
    assert limited.clock_shift_s == MAX_CLOCK_SHIFT_S
    assert limited.try_acquire() == 0.0


def test_a_429_honours_both_reset_and_retry_after(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=10, window_s=3.0)
    both = RateLimitHeaders(remaining=0, reset_epoch_s=clocks.wall + 2, retry_after_s=5.0)
    assert limited.penalize(both) == pytest.approx(5.0)
    assert limited.try_acquire() == pytest.approx(5.0)


def test_a_refused_request_is_not_counted(clocks: Clocks) -> None:
    # Given a window with 2 left and a request answered 429 by another limit (Remaining > 0)
    limited = bucket(clocks, limit=10, window_s=3.0)
    first, refused = admit(limited, 2)
    limited.observe(said(clocks, remaining=2, reset_in=2.0), first)
    limited.observe(said(clocks, remaining=2, reset_in=2.0), refused)
    # Then its answer settled it: 2 may still go
    assert limited.available() == 2


def test_a_configured_limit_below_brazes_is_kept(clocks: Clocks) -> None:
    # Given the client set to 5 per 3 s in a workspace Braze allows 3,000
    limited = bucket(clocks, limit=5, window_s=3.0)
    t = admit(limited, 5)
    limited.observe(said(clocks, remaining=2995, reset_in=3.0, limit=3000), t[4])
    # Then Braze's room does not let more than 5 go in the window
    assert limited.available() == 0
    assert limited.capacity == 5


def test_a_server_window_longer_than_the_configured_one_caps_the_total(clocks: Clocks) -> None:
    # Given 10 per 1 s configured, and Braze says 12 remain in its window for 60 s
    limited = bucket(clocks, limit=10, window_s=1.0)
    first = admit(limited, 1)[0]
    limited.observe(said(clocks, remaining=12, reset_in=60.0, limit=50_000), first)
    # Then our own windows pace the sends (9 more in this second) and Braze's caps them (12 in all)
    assert len(admit(limited, 9)) == 9
    assert limited.available() == 0
    clocks.advance(1.0)
    assert len(admit(limited, 3)) == 3
    assert limited.admit(timeout_s=0.0) is None
    assert limited.try_acquire() == pytest.approx(59.0)


def test_a_hopeless_wait_returns_at_once_but_an_answer_in_flight_is_waited_for(clocks: Clocks) -> None:
    limited = bucket(clocks, limit=10, window_s=3.0)
    first, second = admit(limited, 2)
    limited.observe(said(clocks, remaining=1, reset_in=3.0), first)
    # Room is 0 while the second is in flight: its answer may say it was counted earlier, so the
    # limiter waits out the timeout rather than giving up at once
    assert limited.admit(timeout_s=1.0) is None
    assert clocks.waits == [pytest.approx(1.0)]
    # Without anything in flight, a wait past the deadline is given up on without waiting
    limited.observe(said(clocks, remaining=0, reset_in=2.0), second)
    assert limited.admit(timeout_s=1.0) is None
    assert clocks.waits == [pytest.approx(1.0)]


def test_the_answer_is_matched_to_the_request_of_the_thread_that_acquired_it(clocks: Clocks) -> None:
    # Given two threads with one request in flight each, the second sent later
    limited = bucket(clocks, limit=10, window_s=3.0)
    first_sent, answered = threading.Event(), threading.Event()

    def early() -> None:
        assert limited.acquire()
        first_sent.set()
        answered.wait(5)

    thread = threading.Thread(target=early)
    thread.start()
    assert first_sent.wait(5)
    assert limited.acquire()
    # When this thread's answer (sent last) says 8 remain
    limited.observe(said(clocks, remaining=8, reset_in=2.0))
    answered.set()
    thread.join(5)
    # Then nothing sent after it is in flight: 8 may go (matched to the other request it would be 7)
    assert limited.available() == 8


def test_a_waiting_thread_is_woken_by_an_answer_that_makes_room() -> None:
    # Given a frozen clock (a window that never ends) and real waits on the condition variable
    frozen = Clocks()
    limited = WindowLimiter("users.track", 10, 3.0, clock=frozen.monotonic, wall_clock=frozen.wall_clock)
    first, second = admit(limited, 2)
    limited.observe(said(frozen, remaining=1, reset_in=3.0), first)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(limited.acquire()))
    waiter.start()
    # When the answer to the second says it was counted already (before the first)
    limited.observe(said(frozen, remaining=2, reset_in=3.0), second)
    # Then the waiting thread is admitted: only the answer could have woken it
    waiter.join(5)
    assert got == [True]


# -- a simulated Braze: fixed windows aligned to its clock -----------------------------------------------


class SimulatedBraze:
    """Counts requests in fixed windows of ``window_s`` by its own clock (ours + ``skew_s``)."""

    def __init__(self, limit: int, window_s: float, skew_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.skew_s = skew_s
        self.counted: dict[int, int] = {}
        self.refused = 0

    def count(self, wall: float) -> tuple[bool, RateLimitHeaders]:
        index = math.floor((wall + self.skew_s) / self.window_s)
        used = self.counted.get(index, 0)
        # Whole seconds, as Braze sends it: rounded up here.
        reset = float(math.ceil((index + 1) * self.window_s - self.skew_s))
        if used >= self.limit:
            self.refused += 1
            return False, RateLimitHeaders(limit=self.limit, remaining=0, reset_epoch_s=reset)
        self.counted[index] = used + 1
        return True, RateLimitHeaders(limit=self.limit, remaining=self.limit - used - 1, reset_epoch_s=reset)

    def inner_windows(self) -> list[int]:
        """The counts of every window but the first and the last of the run."""
        indexes = sorted(self.counted)
        return [self.counted.get(index, 0) for index in range(indexes[0] + 1, indexes[-1])]


@dataclass
class Flight:
    ticket: Ticket
    counted_at: int
    answered_at: int
    answer: tuple[bool, RateLimitHeaders] | None = None


def simulate(
    clocks: Clocks, *, requests: int, count_after_s: float, answer_after_s: float, skew_s: float = 0.0
) -> SimulatedBraze:
    """Sends ``requests`` through the limiter with 128 at most in flight, in steps of 10 ms: Braze
    counts each ``count_after_s`` after it was sent and answers ``answer_after_s`` after."""
    braze = SimulatedBraze(150, 3.0, skew_s)
    limited = bucket(clocks, limit=150, window_s=3.0)
    clocks.advance(1.3)  # start in the middle of a window
    backlog = requests
    flights: list[Flight] = []
    count_ticks, answer_ticks = round(count_after_s * 100), round(answer_after_s * 100)
    tick = 0
    while backlog or flights:
        for flight in flights:
            if flight.answer is None and tick >= flight.counted_at:
                flight.answer = braze.count(clocks.wall)
        answered = [flight for flight in flights if tick >= flight.answered_at]
        flights = [flight for flight in flights if tick < flight.answered_at]
        for flight in answered:
            assert flight.answer is not None
            accepted, headers = flight.answer
            limited.observe(headers, flight.ticket)
            if not accepted:
                limited.penalize(headers)
                backlog += 1
        while backlog and len(flights) < 128:
            ticket = limited.admit(timeout_s=0.0)
            if ticket is None:
                break
            backlog -= 1
            flights.append(Flight(ticket, tick + count_ticks, tick + answer_ticks))
        tick += 1
        clocks.advance(0.01)
    assert clocks.waits == []
    return braze


def test_counted_at_the_end_of_its_latency_every_window_is_filled_and_none_refused(clocks: Clocks) -> None:
    # Like the emulator: a request is counted 300 ms after it was sent, just before its answer
    braze = simulate(clocks, requests=3000, count_after_s=0.3, answer_after_s=0.3)
    assert braze.refused == 0
    assert braze.inner_windows() == [150] * len(braze.inner_windows())
    assert len(braze.inner_windows()) >= 15


def test_counted_on_arrival_every_window_is_filled_and_none_refused(clocks: Clocks) -> None:
    # Like Braze: counted on arrival (10 ms), answered 300 ms after it was sent
    braze = simulate(clocks, requests=3000, count_after_s=0.01, answer_after_s=0.3)
    assert braze.refused == 0
    assert braze.inner_windows() == [150] * len(braze.inner_windows())


def test_a_braze_clock_ahead_of_ours_costs_nothing(clocks: Clocks) -> None:
    braze = simulate(clocks, requests=3000, count_after_s=0.01, answer_after_s=0.3, skew_s=0.7)
    assert braze.refused == 0
    assert braze.inner_windows() == [150] * len(braze.inner_windows())


@pytest.mark.parametrize("skew_s", [-0.3, -0.7, -1.6])
def test_a_braze_clock_behind_ours_is_learnt_from_a_few_refusals(clocks: Clocks, skew_s: float) -> None:
    braze = simulate(clocks, requests=3000, count_after_s=0.01, answer_after_s=0.3, skew_s=skew_s)
    assert braze.refused <= 3
    assert braze.inner_windows() == [150] * len(braze.inner_windows())
