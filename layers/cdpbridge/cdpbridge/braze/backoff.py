"""Retry delays: full-jitter exponential backoff that never retries earlier than Braze asked."""

from __future__ import annotations

import random
from collections.abc import Callable

from cdpbridge.braze.settings import RetryPolicy


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    server_hint_s: float | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Full jitter (a uniform draw between 0 and the capped exponential) spreads the retries of many
    threads. When Braze names a time (X-RateLimit-Reset, Retry-After) the delay is at least that, plus
    a small jitter so that every waiting thread does not fire in the same millisecond.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(attempt - 1, 30))
    jittered = uniform(0.0, ceiling)
    if server_hint_s is None:
        return jittered
    return max(jittered, server_hint_s + uniform(0.0, min(policy.base_delay_s, 1.0)))
