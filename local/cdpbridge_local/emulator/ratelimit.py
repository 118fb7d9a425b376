"""Rate limits per endpoint family: fixed windows aligned to the epoch, as Braze's headers describe."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cdpbridge_local.emulator.config import RateLimitSetting


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    # UTC epoch seconds at which the current window ends (X-RateLimit-Reset).
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


@dataclass(slots=True)
class _Window:
    start: float
    used: int


class RateLimiter:
    """Counts requests per family in the current window; a refused request does not count."""

    def __init__(self, settings: dict[str, RateLimitSetting], clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._settings = dict(settings)
        self._windows: dict[str, _Window] = {}

    def configure(self, settings: dict[str, RateLimitSetting]) -> None:
        """Adopt new limits; a family whose setting changed starts a fresh window."""
        for family, setting in settings.items():
            if self._settings.get(family) != setting:
                self._windows.pop(family, None)
        self._settings = dict(settings)

    def reset(self) -> None:
        self._windows.clear()

    def _window(self, family: str, setting: RateLimitSetting, now: float) -> _Window:
        start = now - (now % setting.window_s)
        window = self._windows.get(family)
        if window is None or window.start != start:
            window = _Window(start=start, used=0)
            self._windows[family] = window
        return window

    def check(self, family: str, consume: bool = True) -> RateLimitDecision:
        """Admit one request of ``family`` (counting it when ``consume``) or refuse it."""
        setting = self._settings[family]
        now = self._clock()
        window = self._window(family, setting, now)
        reset = math.ceil(window.start + setting.window_s)
        if window.used >= setting.limit:
            return RateLimitDecision(False, setting.limit, 0, reset)
        if consume:
            window.used += 1
        return RateLimitDecision(True, setting.limit, setting.limit - window.used, reset)
