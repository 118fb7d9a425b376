"""Client-side rate limiting: one token bucket per endpoint family, corrected by Braze's headers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from urllib3 import HTTPHeaderDict

from cdpbridge.braze.settings import RateLimit

# Values below this are read as "seconds from now" rather than epoch seconds (some proxies send that).
_EPOCH_THRESHOLD = 1_000_000_000
# Never trust a reset further away than this: a skewed clock or a bad header must not stall a run.
MAX_RESET_WAIT_S = 3600.0
# X-RateLimit-Reset has whole-second resolution: a reset "in the past" on a 429 still means "soon".
MIN_429_PENALTY_S = 0.5

# Float refill arithmetic can land a hair under a whole token after waiting exactly the computed time.
_ONE_TOKEN = 1.0 - 1e-9
_MIN_WAIT_S = 1e-6

Clock = Callable[[], float]
Waiter = Callable[[threading.Condition, float], object]


def _condition_wait(condition: threading.Condition, seconds: float) -> object:
    return condition.wait(seconds)


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What one response said about the rate limit; any member may be missing."""

    limit: int | None = None
    remaining: int | None = None
    reset_epoch_s: float | None = None
    retry_after_s: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str], *, wall_now: float) -> RateLimitHeaders:
        """Reads X-RateLimit-* and Retry-After whatever their case (HTTP/2 sends them lower-case)."""
        # urllib3's header mapping is already case-insensitive; copying it would cost every call.
        lowered = (
            headers if isinstance(headers, HTTPHeaderDict) else {k.lower(): v for k, v in headers.items()}
        )
        reset = _number(lowered.get("x-ratelimit-reset"))
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset = wall_now + max(reset, 0.0)
        limit = _number(lowered.get("x-ratelimit-limit"))
        remaining = _number(lowered.get("x-ratelimit-remaining"))
        return cls(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else max(int(remaining), 0),
            reset_epoch_s=reset,
            retry_after_s=_retry_after(lowered.get("retry-after"), wall_now),
        )

    def seconds_until_reset(self, wall_now: float) -> float | None:
        if self.reset_epoch_s is None:
            return None
        return min(max(self.reset_epoch_s - wall_now, 0.0), MAX_RESET_WAIT_S)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(text: str | None, wall_now: float) -> float | None:
    if text is None:
        return None
    seconds = _number(text)
    if seconds is None:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - wall_now
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), MAX_RESET_WAIT_S)


class TokenBucket:
    """A thread-safe token bucket for one endpoint family.

    Tokens refill at ``limit / window_s`` per second up to ``limit``. Braze's headers correct it:
    a lower X-RateLimit-Limit shrinks the bucket, and a lower X-RateLimit-Remaining caps what may be
    sent until X-RateLimit-Reset (Braze counts every client of the workspace, we only count ours).
    ``acquire`` sleeps on a condition variable until the next token is due, never spinning.
    """

    def __init__(
        self,
        family: str,
        limit: int,
        window_s: float,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        waiter: Waiter = _condition_wait,
    ) -> None:
        if limit <= 0 or window_s <= 0:
            raise ValueError(f"rate limit of {family!r} must be positive: {limit}/{window_s}s")
        self.family = family
        self.window_s = float(window_s)
        self._capacity = float(limit)
        self._rate = limit / window_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._waiter = waiter
        self._condition = threading.Condition(threading.Lock())
        self._tokens = float(limit)
        self._updated = clock()
        self._blocked_until = 0.0
        # Braze's own count for its current window: requests left and when (monotonic) the window ends.
        self._server_remaining: int | None = None
        self._server_window_end = 0.0
        self._server_reset_epoch = 0.0

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def rate_per_s(self) -> float:
        return self._rate

    def available(self) -> float:
        """Tokens that could be taken now (for tests and diagnostics)."""
        with self._condition:
            now = self._clock()
            self._refill(now)
            if now < self._blocked_until:
                return 0.0
            if self._server_remaining is not None and now < self._server_window_end:
                return min(self._tokens, float(self._server_remaining))
            return self._tokens

    def try_acquire(self) -> float:
        """Takes a token and returns 0.0, or takes nothing and returns the seconds until one is due."""
        with self._condition:
            return self._take(self._clock())

    def acquire(self, timeout_s: float | None = None) -> bool:
        """Blocks until a token is taken (True) or ``timeout_s`` cannot be met (False, nothing taken)."""
        with self._condition:
            now = self._clock()
            deadline = None if timeout_s is None else now + timeout_s
            while True:
                wait_s = self._take(now)
                if wait_s == 0.0:
                    return True
                # Headers only ever lengthen the wait, so a wait past the deadline is hopeless.
                if deadline is not None and now + wait_s > deadline:
                    return False
                self._waiter(self._condition, wait_s)
                now = self._clock()

    def observe(self, headers: RateLimitHeaders) -> None:
        """Corrects the bucket from a response's rate limit headers."""
        if headers.limit is None and headers.remaining is None:
            return
        with self._condition:
            now = self._clock()
            self._refill(now)
            if headers.limit is not None and 0 < headers.limit < self._capacity:
                self._capacity = float(headers.limit)
                self._rate = headers.limit / self.window_s
                self._tokens = min(self._tokens, self._capacity)
            if headers.remaining is not None and not self._is_stale(headers):
                self._tokens = min(self._tokens, float(headers.remaining))
                self._note_server_window(now, headers.remaining, headers)

    def penalize(self, headers: RateLimitHeaders) -> float:
        """After a 429: nothing is sent until Braze's reset. Returns the seconds blocked."""
        wall_now = self._wall_clock()
        delay = headers.seconds_until_reset(wall_now)
        if delay is None:
            delay = headers.retry_after_s
        if delay is None:
            delay = self.window_s / max(self._capacity, 1.0)
        delay = max(delay, MIN_429_PENALTY_S)
        with self._condition:
            now = self._clock()
            self._refill(now)
            self._blocked_until = max(self._blocked_until, now + delay)
            self._tokens = 0.0
            self._updated = max(self._updated, self._blocked_until)
            if headers.limit is not None and 0 < headers.limit < self._capacity:
                self._capacity = float(headers.limit)
                self._rate = headers.limit / self.window_s
        return delay

    # -- internals (called with the lock held) ---------------------------------------------------

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now

    def _take(self, now: float) -> float:
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._server_remaining is not None:
            if now >= self._server_window_end:
                self._server_remaining = None
            elif self._server_remaining <= 0:
                return self._server_window_end - now
        self._refill(now)
        if self._tokens >= _ONE_TOKEN:
            self._tokens = max(self._tokens - 1.0, 0.0)
            if self._server_remaining is not None:
                self._server_remaining -= 1
            return 0.0
        return max((1.0 - self._tokens) / self._rate, _MIN_WAIT_S)

    def _is_stale(self, headers: RateLimitHeaders) -> bool:
        """A slow response describing a window that has already ended."""
        reset = headers.reset_epoch_s
        if reset is None:
            return False
        return reset < self._server_reset_epoch or reset <= self._wall_clock() - 1.0

    def _note_server_window(self, now: float, remaining: int, headers: RateLimitHeaders) -> None:
        if headers.reset_epoch_s is None:
            return
        wall_now = self._wall_clock()
        until_reset = headers.seconds_until_reset(wall_now) or 0.0
        if headers.reset_epoch_s == self._server_reset_epoch and self._server_remaining is not None:
            # Same window: our count already includes requests sent after this response was counted.
            self._server_remaining = min(self._server_remaining, remaining)
        else:
            self._server_reset_epoch = headers.reset_epoch_s
            self._server_remaining = remaining
        self._server_window_end = now + until_reset


class RateLimiter:
    """The buckets of every endpoint family, created from the settings' limits."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        waiter: Waiter = _condition_wait,
    ) -> None:
        self._buckets = {
            family: TokenBucket(
                family, limit.limit, limit.window_s, clock=clock, wall_clock=wall_clock, waiter=waiter
            )
            for family, limit in limits.items()
        }
        self.wall_clock = wall_clock

    def bucket(self, family: str) -> TokenBucket:
        try:
            return self._buckets[family]
        except KeyError:
            raise ValueError(f"no rate limit configured for endpoint family {family!r}") from None

    def families(self) -> tuple[str, ...]:
        return tuple(self._buckets)
