"""How many users.track requests the engine keeps in flight: a window that finds its own level.

Additive increase, multiplicative decrease, as congestion control does. The window starts small and
doubles every round trip (one more request per answer) until the first sign of congestion, then
grows by one request per window of answers. The configured BRAZE_MAX_CONCURRENCY is the ceiling.

It grows only while answers stay fast (an answer slower than the latency threshold below stops
the growth), Braze's X-RateLimit-* headers show room and the window is what limits the engine. It
shrinks on three signals:
- **429s**: Braze answered 429 or the client had to retry. The window halves, at most once per
  round trip, as one burst shows in several answers.
- **Rising latency**: Braze's answers take much longer than the run's base latency (TCP Vegas, BBR
  and Netflix's gradient limiter compare the same two). The base is the fastest answer of the last
  10 to 20 s, so a Braze that is slower for good is taken as it is; the measure compared with it is
  a smoothed average of the answers (TCP's 1/8 gain) in which each answer counts for at most 1.5
  times the threshold, so one slow outlier never shrinks the window (six in a row at least do),
  and the constant latency of a Braze that is not congested never does. The window then shrinks
  by the ratio of the threshold to the smoothed latency (at least 10%, at most half), at most
  once per round trip.
- **A busy CPU**: the engine did not fill the window for a whole round trip, its CPU (or the
  machine's, shared with other work) being what limits it. The window then stops growing and
  shrinks halfway down to the requests actually in flight, remembering three quarters of its
  level to double back to when the CPU frees up (TCP's window validation, RFC 7661). A busy CPU
  also delays answers as the engine's threads see them, which the latency signal sees.
The latency is Braze's answer time, not the time a request waited in the client's rate limiter:
a request held there (X-RateLimit-Remaining at 0, the rate-limit bound reached) shows no room, so
the window stops growing but does not shrink: the limiter already paces what is sent, and a window
shrunk on such waits left the next rate-limit window unused (measured: at 300 ms it fell to a
fifth of the bound).

Parallel invocations sharing a workspace each run their own window; as each halves on the 429s the
shared limit causes, they converge on fair shares of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

INITIAL_WINDOW: Final = 16
# The smoothed answer time is congestion above this many times the base latency ...
LATENCY_RISE: Final = 2.0
# ... and above it by at least this much: scheduling noise on fast answers is no congestion.
MIN_LATENCY_RISE_S: Final = 0.05
# Gain of the smoothed answer time (TCP's SRTT), and the most one answer counts for, in thresholds.
SMOOTHING: Final = 0.125
OUTLIER_CLIP: Final = 1.5
# The base latency is the fastest answer of the current and the previous period.
BASE_PERIOD_S: Final = 10.0
BACKOFF_ON_RATE_LIMIT: Final = 0.5
# Bounds of the factor a rise in latency shrinks the window by, once per round trip.
LATENCY_BACKOFF_MIN: Final = 0.5
LATENCY_BACKOFF_MAX: Final = 0.9
# A request held this long by the client's rate limiter means Braze's window had no room.
HELD_S: Final = 0.01


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
    # The current round trip (for the busy-CPU signal): when it began, whether any answer's request
    # found the window full, and the most requests in flight when one was sent.
    _round_started_at: float | None = None
    _round_full: bool = False
    _round_used: int = 0

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
        """The smoothed answer time above which the window shrinks (None before any answer)."""
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
        threshold_s = self.latency_threshold_s
        smoothed_s = self.smoothed_s
        if threshold_s is not None and smoothed_s is not None and smoothed_s > threshold_s:
            factor = min(LATENCY_BACKOFF_MAX, max(LATENCY_BACKOFF_MIN, threshold_s / smoothed_s))
            self._decrease(factor, now, round_trip_s)
            return
        if held_s > HELD_S or (threshold_s is not None and latency_s > threshold_s):
            # No room left in Braze's window (more in flight would only wait in the rate limiter),
            # or a slow answer: not yet a rise, but no reason to grow either.
            self.threshold = min(self.threshold, self.limit)
            return
        if self._cpu_bound(window_was_full, in_flight, now, round_trip_s) or not window_was_full:
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
        threshold_s = self.latency_threshold_s
        assert threshold_s is not None
        sample = min(latency_s, OUTLIER_CLIP * threshold_s)
        smoothed = self.smoothed_s
        self.smoothed_s = sample if smoothed is None else smoothed + SMOOTHING * (sample - smoothed)

    def _decrease(self, factor: float, now: float, round_trip_s: float) -> None:
        # One congestion event shows in every answer of a round trip: it counts once.
        if now - self.last_decrease_at < round_trip_s:
            return
        self.limit = max(1.0, self.limit * factor)
        self.threshold = self.limit
        self.last_decrease_at = now
        self._round_started_at = None

    def _cpu_bound(
        self, window_was_full: bool, in_flight: int | None, now: float, round_trip_s: float
    ) -> bool:
        """Tracks the round trip; at its end, when no request of it found the window full, shrinks
        the window halfway down to what was in flight and says so."""
        if in_flight is None:
            return False
        if self._round_started_at is None:
            self._round_started_at = now
            self._round_full = window_was_full
            self._round_used = in_flight
            return False
        self._round_full = self._round_full or window_was_full
        self._round_used = max(self._round_used, in_flight)
        if now - self._round_started_at < round_trip_s:
            return False
        shrink = not self._round_full and self._round_used < self.limit
        if shrink:
            self.threshold = max(self.threshold, 0.75 * self.limit)
            self.limit = max(1.0, float(self._round_used), (self.limit + self._round_used) / 2)
        self._round_started_at = now
        self._round_full = window_was_full
        self._round_used = in_flight
        return shrink
