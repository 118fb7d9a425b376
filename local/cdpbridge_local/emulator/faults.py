"""Injected faults, drawn from a seeded random.Random so that a run can be replayed exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from cdpbridge_local.emulator.config import FaultSettings


class FaultKind(StrEnum):
    STATUS_429 = "status_429"
    STATUS_500 = "status_500"
    STATUS_502_HTML = "status_502_html"
    STATUS_503 = "status_503"
    DROP_CONNECTION = "drop_connection"
    # The request is applied, then the connection is closed without an answer: the one window in
    # which a client cannot know that Braze took its request (counted as applied but unanswered).
    APPLY_THEN_DROP = "apply_then_drop"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What happens to one request: an optional failure and an optional delay before answering."""

    failure: FaultKind | None
    delay_s: float
    queued: bool = False


NO_FAULT = FaultDecision(None, 0.0)


class FaultInjector:
    """Decides per request. Every request draws exactly three numbers, whatever the settings, so the
    sequence of decisions depends only on the seed and the order of requests."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.settings = settings
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._random = random.Random(seed)

    def decide(self) -> FaultDecision:
        settings = self.settings
        failure_draw = self._random.random()
        slow_draw = self._random.random()
        queued_draw = self._random.random()
        if not settings.failure_probability() and not settings.slow_p and not settings.queued_202:
            return NO_FAULT
        failure: FaultKind | None = None
        threshold = 0.0
        for kind, probability in (
            (FaultKind.STATUS_429, settings.status_429),
            (FaultKind.STATUS_500, settings.status_500),
            (FaultKind.STATUS_502_HTML, settings.status_502_html),
            (FaultKind.STATUS_503, settings.status_503),
            (FaultKind.DROP_CONNECTION, settings.drop_connection),
            (FaultKind.APPLY_THEN_DROP, settings.apply_then_drop),
        ):
            threshold += probability
            if failure_draw < threshold:
                failure = kind
                break
        delay_s = settings.slow_ms / 1000.0 if slow_draw < settings.slow_p else 0.0
        return FaultDecision(failure, delay_s, queued=failure is None and queued_draw < settings.queued_202)
