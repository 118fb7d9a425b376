"""How many users.track requests the engine keeps in flight: a window that finds its own level.

Additive increase, multiplicative decrease, as congestion control does. The window starts small and
doubles every round trip (one more request per answer) until the first sign of congestion, then
grows by one request per window of answers. The configured BRAZE_MAX_CONCURRENCY is the ceiling.

It grows only while answers stay fast (an answer slower than the latency threshold below stops
the growth), Braze's X-RateLimit-* headers show room and the window is what limits the engine. It
shrinks on three signals:
- **429s**: Braze answered 429 or the client had to retry. The window halves, at most once per
  round trip, as one burst shows in several answers.
- **Rising latency**: Braze answers much more slowly than the run's base latency (TCP Vegas, BBR
  and Netflix's gradient limiter compare the same two). The base is the fastest answer of the last
  10 to 20 s, so a Braze that is slower for good is taken as it is. What is compared with it is the
  fastest answer of each round trip (at least four answers; the round trip is the smoothed answer
  time, TCP's 1/8 gain): when even that one is more than twice the base, Braze itself is slower,
  while one slow outlier, or the last answers of a burst that wait for the engine's busy threads
  (measured at 1,000 ms on a loaded machine: the smoothed answer time of such bursts reached 2 s
  while their fastest answers took 1 s), move nothing; nor does the constant latency of a Braze
  that is not congested. The window then shrinks by the ratio of the
  threshold to that answer time (at least 10%, at most half), at most once per round trip.
- **A busy CPU**: the engine did not fill the window for a whole round trip, its CPU (or the
  machine's, shared with other work) being what limits it. The window then stops growing and
  shrinks halfway down to the requests actually in flight, remembering three quarters of its
  level to double back to when the CPU frees up (TCP's window validation, RFC 7661).
The latency is Braze's answer time, not the time a request waited in the client's rate limiter:
a request held there for longer than a round trip (X-RateLimit-Remaining at 0, the rate-limit bound
reached) shows no room, so the window stops growing but does not shrink: the limiter already paces
what is sent, and a window shrunk on such waits left the next rate-limit window unused (measured:
at 300 ms it fell to a fifth of the bound). Shorter waits are the limiter spreading a burst: the
window must still grow to cover a whole rate-limit window at long latencies.

Parallel invocations sharing a workspace each run their own window; as each halves on the 429s the
shared limit causes, they converge on fair shares of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

INITIAL_WINDOW: Final = 16
# A round trip's fastest answer is congestion above this many times the base latency ...
LATENCY_RISE: Final = 2.0
# ... and above it by at least this much: scheduling noise on fast answers is no congestion.
MIN_LATENCY_RISE_S: Final = 0.05
# Gain of the smoothed answer time, the length of a round trip (TCP's SRTT gain).
SMOOTHING: Final = 0.125
# Answers a round trip needs before its fastest one counts.
ROUND_TRIP_ANSWERS: Final = 4
# The base latency is the fastest answer of the current and the previous period.
BASE_PERIOD_S: Final = 10.0
BACKOFF_ON_RATE_LIMIT: Final = 0.5
# Bounds of the factor a rise in latency shrinks the window by, once per round trip.
LATENCY_BACKOFF_MIN: Final = 0.5
LATENCY_BACKOFF_MAX: Final = 0.9
# A request held by the client's rate limiter longer than this and than the base latency (a round
# trip) means the window already holds more than Braze's rate-limit window lets through.
HELD_S: Final = 0.05


@dataclass(slots=True)
class InFlightWindow:
    ceiling: int
    limit: float = 0.0
    # Below this level the window grows by one request per answer, above it by one per window.
    threshold: float = math.inf
    base_s: float | None = None
    smoothed_s: float | None = None
    last_decrease_at: float = field(default=float("-inf"))
    peak: int = 0
    # The windowed minimum behind base_s: the fastest answer of the previous and current periods.
    _period_started_at: float | None = None
    _previous_fastest_s: float = math.inf
    _current_fastest_s: float = math.inf
    # The current round trip: when it began, its answers and the fastest of them, whether any of
    # their requests found the window full, and the most requests in flight when one was sent.
    _trip_started_at: float | None = None
    _trip_answers: int = 0
    _trip_fastest_s: float = math.inf
    _trip_full: bool = False
    _trip_used: int = 0

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError(f"the ceiling of requests in flight must be at least 1, got {self.ceiling}")
        if not self.limit:
            self.limit = float(min(INITIAL_WINDOW, self.ceiling))
        self.peak = self.size

    @property
    def size(self) -> int:
        """Requests that may be in flight now."""
        return max(1, min(self.ceiling, int(self.limit)))

    @property
    def slow_start(self) -> bool:
        """True while the window doubles every round trip."""
        return self.limit < self.threshold

    @property
    def latency_threshold_s(self) -> float | None:
        """The answer time above which Braze counts as slower (None before any answer)."""
        if self.base_s is None:
            return None
        return max(LATENCY_RISE * self.base_s, self.base_s + MIN_LATENCY_RISE_S)

    def answered(
        self,
        *,
        latency_s: float,
        congested: bool,
        window_was_full: bool,
        now: float,
        held_s: float = 0.0,
        in_flight: int | None = None,
    ) -> None:
        """Adjusts the window to one answer: how long Braze took to give it, whether Braze pushed back
        (429 or a retry), whether the window was full when its request was sent and how many
        requests were in flight then (itself included), and how long the client's rate limiter held
        it before sending."""
        self._note_latency(latency_s, now)
        round_trip_s = self.smoothed_s or latency_s
        if congested:
            self._decrease(BACKOFF_ON_RATE_LIMIT, now, round_trip_s)
            return
        if self._round_trip_shrank(latency_s, window_was_full, in_flight, now, round_trip_s):
            return
        threshold_s = self.latency_threshold_s
        held_long = held_s > max(HELD_S, self.base_s or 0.0)
        if held_long or (threshold_s is not None and latency_s > threshold_s):
            # No room left in Braze's window (more in flight would only wait in the rate limiter),
            # or a slow answer: no sign of congestion on its own, but no reason to grow either.
            self.threshold = min(self.threshold, self.limit)
            return
        if not window_was_full:
            return
        self.limit = min(float(self.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))
        self.peak = max(self.peak, self.size)

    def _note_latency(self, latency_s: float, now: float) -> None:
        if self._period_started_at is None:
            self._period_started_at = now
        elif now - self._period_started_at >= BASE_PERIOD_S:
            self._previous_fastest_s = self._current_fastest_s
            self._current_fastest_s = math.inf
            self._period_started_at = now
        self._current_fastest_s = min(self._current_fastest_s, latency_s)
        self.base_s = min(self._previous_fastest_s, self._current_fastest_s)
        smoothed = self.smoothed_s
        self.smoothed_s = latency_s if smoothed is None else smoothed + SMOOTHING * (latency_s - smoothed)

    def _round_trip_shrank(
        self, latency_s: float, window_was_full: bool, in_flight: int | None, now: float, round_trip_s: float
    ) -> bool:
        """Adds an answer to the current round trip; at its end, shrinks the window when even its
        fastest answer was slow, or when none of its requests found the window full (the engine's
        CPU is what limits it). True when the window shrank."""
        if self._trip_started_at is None:
            self._start_trip(now)
        self._trip_answers += 1
        self._trip_fastest_s = min(self._trip_fastest_s, latency_s)
        self._trip_full = self._trip_full or window_was_full
        if in_flight is not None:
            self._trip_used = max(self._trip_used, in_flight)
        assert self._trip_started_at is not None
        if self._trip_answers < ROUND_TRIP_ANSWERS or now - self._trip_started_at < round_trip_s:
            return False
        fastest_s, full, used = self._trip_fastest_s, self._trip_full, self._trip_used
        self._start_trip(now)
        threshold_s = self.latency_threshold_s
        if threshold_s is not None and fastest_s > threshold_s:
            factor = min(LATENCY_BACKOFF_MAX, max(LATENCY_BACKOFF_MIN, threshold_s / fastest_s))
            return self._decrease(factor, now, round_trip_s)
        if in_flight is not None and not full and used < self.limit:
            self.threshold = max(self.threshold, 0.75 * self.limit)
            self.limit = max(1.0, float(used), (self.limit + used) / 2)
            return True
        return False

    def _start_trip(self, now: float) -> None:
        self._trip_started_at = now
        self._trip_answers = 0
        self._trip_fastest_s = math.inf
        self._trip_full = False
        self._trip_used = 0

    def _decrease(self, factor: float, now: float, round_trip_s: float) -> bool:
        # One congestion event shows in every answer of a round trip: it counts once.
        if now - self.last_decrease_at < round_trip_s:
            return False
        self.limit = max(1.0, self.limit * factor)
        self.threshold = self.limit
        self.last_decrease_at = now
        self._start_trip(now)
        return True
