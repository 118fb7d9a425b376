"""Client-side rate limiting per endpoint family, following Braze's fixed windows as its headers report them.

Braze counts requests in fixed windows (users.track: 3,000 per 3 s per workspace, every client of the
workspace together) and says on every response how many more the window admits (X-RateLimit-Remaining)
and when it ends (X-RateLimit-Reset, epoch seconds). A token bucket paced at limit/window either
wastes the start of each window or, refilled while Braze's window is already spent, overshoots it.
So the limiter keeps Braze's windows instead:

* Remaining was counted when that request reached Braze. Requests sent after it had not been (or
  not yet), so the window admits ``Remaining`` minus the requests still unanswered that were sent
  after the reporting one. Requests sent before it were counted already and are not subtracted again.
* When the window ends a full one opens, less the requests still unanswered (they may land in it).
* Until the first header, and for a server that sends none, the configured limit per window holds.
  It always caps our own sends per window, so a limit set below Braze's is kept.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
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
# How far our idea of Braze's window ends may move later than its Reset says: the header's whole-second
# rounding plus this much clock skew. A larger skew falls back on the 429 handling.
MAX_CLOCK_SHIFT_S = 2.0
# When Braze counts a request in a window we thought over, the ends move past that request by this
# much more, so that one lesson usually suffices (whole-second rounding leaves up to 1 s to learn).
EARLY_MARGIN_S = 0.25
# Until a predicted window start has been seen to be on time, it opens with this many requests: the
# first answer says whether Braze has rolled over too, rather than a burst of 429s.
PROBE_REQUESTS = 1
# An unanswered request older than this stops being counted (its thread may have given up on it).
TICKET_TTL_S = 10.0

_MIN_WAIT_S = 1e-6
# Window ends recomputed from a header differ by microseconds (two clocks read): not a new alignment.
_REALIGN_S = 0.01

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


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted request: its place in sending order and when it was admitted (monotonic clock)."""

    seq: int
    sent_at: float


class WindowLimiter:
    """The rate limit of one endpoint family, thread-safe.

    Two limits hold together:

    * our own: at most ``limit`` sends per window of ``window_s``, counted by send time. The windows
      line up with Braze's once a Reset is known, otherwise they start with the first request.
    * Braze's: what the headers say the current window still admits, less our requests that it has
      not counted yet. Each request gets a ``Ticket`` (a sequence number and a send time); the answer
      to it is matched to it, so that only the requests sent after the reporting one are subtracted.

    ``acquire``/``observe`` match a request to its answer through the calling thread (the client
    sends and reads an answer in the thread that acquired); ``admit``/``observe(ticket=...)`` do it
    explicitly. Waiting threads sleep on a condition variable until a window opens or an answer makes
    room, never spinning.
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
        self._limit = int(limit)
        self._clock = clock
        self._wall_clock = wall_clock
        self._waiter = waiter
        self._condition = threading.Condition(threading.Lock())
        self._thread = threading.local()
        self._blocked_until = 0.0
        # Every admitted request whose count Braze has not reported yet, in sending order, and when
        # each was sent. Those that ended without a Remaining header (a timeout, a dropped connection,
        # a proxy's error page) stay: Braze may have counted them. They are "unanswered".
        self._next_seq = 0
        self._pending: list[int] = []
        self._pending_sent_at: dict[int, float] = {}
        self._unanswered: set[int] = set()
        # Our own count of the current window (monotonic end), and the send times of the last window's
        # length, to recount when the windows are lined up anew with Braze's.
        self._own_end: float | None = None
        self._own_count = 0
        self._recent: deque[float] = deque()
        # Braze's window: its end on our monotonic clock (None until a header told us), the Reset that
        # named it, and whether the current window is the one Braze reported (confirmed) or the one we
        # expect to follow it. For a confirmed window: the lowest Remaining and the ticket it came with.
        self._server_limit: int | None = None
        self._server_end: float | None = None
        self._server_reset = -math.inf
        self._confirmed = False
        self._remaining = 0
        self._remaining_seq = -1
        # The first ticket sent in the expected window, and whether expected windows have been seen
        # to start on time (else they open with a probe).
        self._rolled_at_seq = 0
        self._trusted = False
        # Seconds Braze's windows end later than their Reset read on our clock says (skew, rounding).
        self._shift = 0.0

    @property
    def capacity(self) -> int:
        """Requests per window: the configured limit, or Braze's X-RateLimit-Limit if lower."""
        return self._limit

    @property
    def rate_per_s(self) -> float:
        return self._limit / self.window_s

    @property
    def clock_shift_s(self) -> float:
        """How much later than their Reset says Braze's windows were seen to end (for diagnostics)."""
        return self._shift

    def available(self) -> int:
        """Requests that could be admitted now (for tests and diagnostics)."""
        with self._condition:
            now = self._clock()
            if now < self._blocked_until:
                return 0
            self._advance(now)
            return max(self._room(), 0)

    # -- admitting requests ------------------------------------------------------------------------

    def try_acquire(self) -> float:
        """Admits a request and returns 0.0, or admits nothing and returns the seconds until a
        window opens (an answer to a request in flight may make room sooner)."""
        finished = self._take_thread_ticket()
        with self._condition:
            if finished is not None:
                self._forget(finished.seq)
            taken = self._take(self._clock())
            if isinstance(taken, Ticket):
                self._thread.ticket = taken
                return 0.0
            return taken[0]

    def acquire(self, timeout_s: float | None = None) -> bool:
        """Blocks until a request is admitted (True) or ``timeout_s`` cannot be met (False).

        The ticket belongs to the calling thread until its ``observe``; a thread that acquires again
        without one (its request failed without an answer) no longer has that request in flight.
        """
        finished = self._take_thread_ticket()
        ticket = self._admit(timeout_s, finished)
        self._thread.ticket = ticket
        return ticket is not None

    def admit(self, timeout_s: float | None = None) -> Ticket | None:
        """``acquire`` with the ticket handed over, for callers that pass it to ``observe`` themselves."""
        return self._admit(timeout_s, None)

    def forget(self, ticket: Ticket) -> None:
        """The request of ``ticket`` ended without an answer. Braze may have counted it, so it still
        counts against the window it was sent in, but no answer to it is waited for."""
        with self._condition:
            self._forget(ticket.seq)

    # -- what Braze said ---------------------------------------------------------------------------

    def observe(self, headers: RateLimitHeaders, ticket: Ticket | None = None) -> None:
        """Takes in an answer's rate limit headers. ``ticket`` is the answered request's (by default
        the one the calling thread acquired); without one the answer is matched to no request and
        every request in flight is taken as not counted yet."""
        if ticket is None:
            ticket = self._take_thread_ticket()
        wall_now = self._wall_clock()
        with self._condition:
            now = self._clock()
            if ticket is not None:
                if headers.remaining is None:
                    self._forget(ticket.seq)
                else:
                    self._settle(ticket.seq)
            self._learn_limit(headers)
            if headers.remaining is not None:
                if headers.reset_epoch_s is not None:
                    self._note_window(now, wall_now, headers.remaining, headers.reset_epoch_s, ticket)
                else:
                    self._note_remaining(headers.remaining, ticket)
            if now >= self._blocked_until:
                self._advance(now)
                room = self._room()
                if room >= 1:
                    self._condition.notify(room)

    def penalize(self, headers: RateLimitHeaders) -> float:
        """After a 429: nothing is sent until Braze's reset (and Retry-After). Returns the seconds blocked."""
        wall_now = self._wall_clock()
        with self._condition:
            now = self._clock()
            delays = []
            # On the server's clock, as far as the skew learnt so far tells.
            until_reset = headers.seconds_until_reset(wall_now - self._shift)
            if until_reset is not None:
                delays.append(until_reset)
            if headers.retry_after_s is not None:
                delays.append(headers.retry_after_s)
            delay = max(delays) if delays else self.window_s / self._limit
            delay = max(delay, MIN_429_PENALTY_S)
            self._blocked_until = max(self._blocked_until, now + delay)
            self._learn_limit(headers)
        return delay

    # -- internals (called with the lock held, except _take_thread_ticket) ---------------------------

    def _learn_limit(self, headers: RateLimitHeaders) -> None:
        if headers.limit is not None and headers.limit > 0:
            self._server_limit = headers.limit
            # A higher limit than configured is not believed: the configured one may be a share.
            self._limit = min(self._limit, headers.limit)

    def _take_thread_ticket(self) -> Ticket | None:
        ticket: Ticket | None = getattr(self._thread, "ticket", None)
        self._thread.ticket = None
        return ticket

    def _admit(self, timeout_s: float | None, finished: Ticket | None) -> Ticket | None:
        with self._condition:
            if finished is not None:
                self._forget(finished.seq)
            now = self._clock()
            deadline = None if timeout_s is None else now + timeout_s
            while True:
                taken = self._take(now)
                if isinstance(taken, Ticket):
                    return taken
                wait_s, may_open_sooner = taken
                if deadline is not None:
                    left = deadline - now
                    if wait_s > left:
                        # Only an answer can make room before the window opens; without one in flight
                        # the wait is hopeless, so nothing is waited for.
                        if not may_open_sooner or left <= 0:
                            return None
                        wait_s = left
                self._waiter(self._condition, wait_s)
                now = self._clock()

    def _take(self, now: float) -> Ticket | tuple[float, bool]:
        """A ticket, or the seconds until a window opens and whether an answer may make room sooner."""
        if now < self._blocked_until:
            return self._blocked_until - now, False
        self._advance(now)
        own = self._limit - self._own_count
        server = self._server_room()
        if own >= 1 and (server is None or server >= 1):
            seq = self._next_seq
            self._next_seq += 1
            self._pending.append(seq)
            self._pending_sent_at[seq] = now
            self._own_count += 1
            recent = self._recent
            recent.append(now)
            while recent[0] < now - self.window_s:
                recent.popleft()
            return Ticket(seq, now)
        assert self._own_end is not None  # set by _advance
        wait_s = self._own_end - now if own < 1 else 0.0
        may_open_sooner = False
        if server is not None and server < 1:
            assert self._server_end is not None
            wait_s = max(wait_s, self._server_end - now)
            may_open_sooner = own >= 1 and len(self._pending) > len(self._unanswered)
        return max(wait_s, _MIN_WAIT_S), may_open_sooner

    def _room(self) -> int:
        server = self._server_room()
        own = self._limit - self._own_count
        return own if server is None else min(own, server)

    def _server_room(self) -> int | None:
        """What Braze's current window still admits from us; None before any header."""
        if self._server_end is None:
            return None
        if self._confirmed:
            return self._remaining - self._pending_after(self._remaining_seq)
        if not self._trusted:
            return PROBE_REQUESTS - self._pending_from(self._rolled_at_seq)
        # A fresh window, less what is in flight: sent late in the last window, it may be counted here.
        return (self._server_limit or self._limit) - len(self._pending)

    def _advance(self, now: float) -> None:
        """Moves past windows that have ended."""
        window = self.window_s
        if self._server_end is not None and now >= self._server_end:
            self._server_end += window * (math.floor((now - self._server_end) / window) + 1)
            self._confirmed = False
            self._rolled_at_seq = self._next_seq
            self._expire(now, self._server_end - 2 * window)
        elif self._server_end is None and self._own_end is not None and now >= self._own_end:
            self._expire(now, now - 2 * window)
        if self._own_end is None:
            if self._server_end is not None:
                self._align_own(now)
            else:
                self._own_end = now + window
                self._own_count = 0
        elif now >= self._own_end:
            self._own_end += window * (math.floor((now - self._own_end) / window) + 1)
            self._own_count = 0

    def _align_own(self, now: float) -> None:
        """Lines our own windows up with Braze's: one of them ends where Braze's current one does."""
        assert self._server_end is not None
        window = self.window_s
        own_end = self._server_end + window * (math.floor((now - self._server_end) / window) + 1)
        if self._own_end is not None and abs(own_end - self._own_end) <= _REALIGN_S:
            return
        self._own_end = own_end
        start = own_end - window
        self._own_count = sum(1 for sent_at in self._recent if sent_at >= start)

    def _note_window(
        self, now: float, wall_now: float, remaining: int, reset: float, ticket: Ticket | None
    ) -> None:
        until = min(max(reset - wall_now, -MAX_RESET_WAIT_S), MAX_RESET_WAIT_S)
        end = now + until + self._shift
        if ticket is not None and ticket.sent_at >= end:
            # Braze counted this request in a window that, by our clock, had ended before it was sent:
            # its clock is behind ours or its Reset rounds down. Every window end moves later, and
            # expected window starts are probed again.
            grow = min(ticket.sent_at - end + EARLY_MARGIN_S, MAX_CLOCK_SHIFT_S - self._shift)
            if grow > 0:
                self._shift += grow
                end += grow
                if self._server_end is not None:
                    self._server_end += grow
                if self._own_end is not None:
                    self._own_end += grow
            self._trusted = False
        tolerance = min(0.5, self.window_s / 2)
        if reset < self._server_reset - tolerance:
            return  # a slow answer from a window that has ended
        if reset <= self._server_reset + tolerance:
            if self._confirmed:
                if remaining < self._remaining:
                    self._remaining = remaining
                    self._remaining_seq = -1 if ticket is None else ticket.seq
                return
            if end <= now:
                return  # the window we have moved on from
            # Braze still counts in the window we moved on from: back to it (the shift above moved it).
        elif (
            self._server_end is not None
            and not self._confirmed
            and ticket is not None
            and ticket.seq >= self._rolled_at_seq
        ):
            # A request sent after we expected a new window was counted in a new window: on time.
            self._trusted = True
        self._server_reset = reset
        self._server_end = end
        self._confirmed = True
        self._remaining = remaining
        self._remaining_seq = -1 if ticket is None else ticket.seq
        self._align_own(now)

    def _note_remaining(self, remaining: int, ticket: Ticket | None) -> None:
        """Remaining without a Reset: it applies to whatever window is current."""
        seq = -1 if ticket is None else ticket.seq
        if self._confirmed:
            if remaining < self._remaining:
                self._remaining = remaining
                self._remaining_seq = seq
            return
        self._own_count = max(self._own_count, self._limit - remaining + self._pending_after(seq))

    def _pending_after(self, seq: int) -> int:
        return len(self._pending) - bisect.bisect_right(self._pending, seq)

    def _pending_from(self, seq: int) -> int:
        return len(self._pending) - bisect.bisect_left(self._pending, seq)

    def _settle(self, seq: int) -> None:
        """Braze reported the count with this request's answer: it is no longer pending."""
        if self._pending_sent_at.pop(seq, None) is None:
            return
        self._unanswered.discard(seq)
        pending = self._pending
        del pending[bisect.bisect_left(pending, seq)]

    def _forget(self, seq: int) -> None:
        if seq in self._pending_sent_at:
            self._unanswered.add(seq)

    def _expire(self, now: float, unanswered_before: float) -> None:
        """Stops counting requests that can no longer land in the current window: unanswered ones sent
        before ``unanswered_before``, the start of the previous window (a request lands in the window
        it was sent in or, sent late, the next one), and any sent so long ago that their threads have
        surely given up on them."""
        if not self._pending:
            return
        in_flight_before = now - max(TICKET_TTL_S, 2 * self.window_s)
        sent_at = self._pending_sent_at
        unanswered = self._unanswered
        kept: list[int] = []
        for seq in self._pending:
            when = sent_at[seq]
            if when < in_flight_before or (when < unanswered_before and seq in unanswered):
                del sent_at[seq]
                unanswered.discard(seq)
            else:
                kept.append(seq)
        self._pending = kept


class RateLimiter:
    """The limiters of every endpoint family, created from the settings' limits."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        waiter: Waiter = _condition_wait,
    ) -> None:
        self._limiters = {
            family: WindowLimiter(
                family, limit.limit, limit.window_s, clock=clock, wall_clock=wall_clock, waiter=waiter
            )
            for family, limit in limits.items()
        }
        self.wall_clock = wall_clock

    def for_family(self, family: str) -> WindowLimiter:
        try:
            return self._limiters[family]
        except KeyError:
            raise ValueError(f"no rate limit configured for endpoint family {family!r}") from None

    def families(self) -> tuple[str, ...]:
        return tuple(self._limiters)
