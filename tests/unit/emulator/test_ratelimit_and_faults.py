"""Rate-limit windows and fault decisions, checked without HTTP."""

from __future__ import annotations

from collections import Counter

from cdpbridge_local.emulator.config import FaultSettings, RateLimitSetting
from cdpbridge_local.emulator.faults import FaultInjector, FaultKind
from cdpbridge_local.emulator.ratelimit import RateLimiter


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_is_aligned_to_the_epoch_and_reset_names_its_end() -> None:
    # Given a limit of 2 per 3 s and a clock 1 s into a window
    clock = FakeClock(3000.0 + 1.0)
    limiter = RateLimiter({"users.track": RateLimitSetting(limit=2, window_s=3)}, clock)
    # Then two requests pass, the third is refused, all announcing the window end
    decisions = [limiter.check("users.track") for _ in range(3)]
    assert [(d.allowed, d.remaining, d.reset) for d in decisions] == [
        (True, 1, 3003),
        (True, 0, 3003),
        (False, 0, 3003),
    ]
    # When the next window starts, requests pass again
    clock.now = 3003.0
    assert limiter.check("users.track").allowed


def test_a_peek_does_not_consume() -> None:
    limiter = RateLimiter({"lists": RateLimitSetting(limit=1, window_s=60)}, FakeClock(0.0))
    assert limiter.check("lists", consume=False).remaining == 1
    assert limiter.check("lists").remaining == 0


def test_changing_a_limit_starts_a_fresh_window() -> None:
    limiter = RateLimiter({"lists": RateLimitSetting(limit=1, window_s=60)}, FakeClock(0.0))
    limiter.check("lists")
    assert not limiter.check("lists").allowed
    limiter.configure({"lists": RateLimitSetting(limit=5, window_s=60)})
    assert limiter.check("lists").remaining == 4


def test_headers_are_strings_braze_names() -> None:
    limiter = RateLimiter({"lists": RateLimitSetting(limit=10, window_s=60)}, FakeClock(59.5))
    assert limiter.check("lists").headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "9",
        "X-RateLimit-Reset": "60",
    }


def test_no_faults_configured_means_no_faults() -> None:
    injector = FaultInjector(FaultSettings(), seed=1)
    assert all(injector.decide().failure is None for _ in range(1000))


def test_fault_frequencies_follow_the_probabilities_and_the_seed() -> None:
    settings = FaultSettings(status_429=0.1, status_500=0.2, drop_connection=0.05, slow_p=0.5, slow_ms=10)
    first = FaultInjector(settings, seed=42)
    decisions = [first.decide() for _ in range(10_000)]
    counts = Counter(decision.failure for decision in decisions)
    assert 800 < counts[FaultKind.STATUS_429] < 1200
    assert 1700 < counts[FaultKind.STATUS_500] < 2300
    assert 350 < counts[FaultKind.DROP_CONNECTION] < 650
    assert counts[FaultKind.STATUS_503] == 0
    assert 4500 < sum(decision.delay_s == 0.01 for decision in decisions) < 5500
    # And the same seed replays the same decisions
    second = FaultInjector(settings, seed=42)
    assert [second.decide() for _ in range(10_000)] == decisions


def test_every_request_draws_the_same_amount_so_settings_do_not_shift_the_sequence() -> None:
    # Given two injectors with the same seed, one of them without faults for a while
    quiet = FaultInjector(FaultSettings(), seed=5)
    noisy = FaultInjector(FaultSettings(status_500=0.5), seed=5)
    for _ in range(10):
        quiet.decide()
        noisy.decide()
    # When faults are switched on in the quiet one
    quiet.settings = FaultSettings(status_500=0.5)
    # Then both continue with identical decisions
    assert [quiet.decide() for _ in range(100)] == [noisy.decide() for _ in range(100)]
