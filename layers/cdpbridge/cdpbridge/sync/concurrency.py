"""How many users.track requests the engine keeps in flight: a window that finds its own level.

Additive increase, multiplicative decrease, as congestion control does. The window starts small and
doubles every round trip (one more request per answer) until the first sign of congestion, then
grows by one request per window of answers. It grows only while it is what limits the engine (the
requests in flight filled it when the answered one was sent): an engine bound by its CPU never fills
the window, so it never grows it. It stops growing while answers take more than twice as long as
the fastest: Braze slowing down, or the client's rate limiter holding requests because Braze's
window is spent (X-RateLimit-Remaining at 0), which is the rate-limit bound reached; shrinking then
would only leave the next window unused (measured: at 300 ms a window shrunk on such waits fell to
a fifth of the bound), since the limiter already paces what is sent. It halves when Braze answered
429 or the client had to retry, at most once per round trip, as one burst shows in several answers.
The configured BRAZE_MAX_CONCURRENCY is the ceiling.

Parallel invocations sharing a workspace each run their own window; as each halves on the 429s the
shared limit causes, they converge on fair shares of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

INITIAL_WINDOW: Final = 16
# Answers slower than this many times the fastest one count as congestion.
LATENCY_RISE: Final = 2.0
# ... and by at least this much: scheduling noise on fast answers is no congestion.
MIN_LATENCY_RISE_S: Final = 0.05
BACKOFF_ON_RATE_LIMIT: Final = 0.5


@dataclass(slots=True)
class InFlightWindow:
    ceiling: int
    limit: float = 0.0
    slow_start: bool = True
    fastest_s: float | None = None
    last_decrease_at: float = field(default=float("-inf"))
    peak: int = 0

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

    def answered(self, *, latency_s: float, congested: bool, window_was_full: bool, now: float) -> None:
        """Adjusts the window to one answer: how long it took, whether Braze pushed back (429 or a
        retry), and whether the window was full when its request was sent."""
        fastest = self.fastest_s
        if fastest is None or latency_s < fastest:
            self.fastest_s = fastest = latency_s
        slowed = latency_s > LATENCY_RISE * fastest and latency_s - fastest > MIN_LATENCY_RISE_S
        if congested:
            if now - self.last_decrease_at >= latency_s:
                self.limit = max(1.0, self.limit * BACKOFF_ON_RATE_LIMIT)
                self.slow_start = False
                self.last_decrease_at = now
            return
        if slowed:
            # At the bound (or Braze slower): more in flight would only wait longer.
            self.slow_start = False
            return
        if not window_was_full:
            return
        self.limit = min(float(self.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))
        self.peak = max(self.peak, self.size)
