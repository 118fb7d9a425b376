"""Lytics collect API client: events posted as JSON arrays to ``POST /collect/json/<stream>``.

Lytics takes its API token as the raw ``Authorization`` header value (no "Bearer"). 429, 5xx and
connection errors are retried with full-jitter backoff (Retry-After honoured); 400, 401, 403 and
404 are permanent: retrying cannot fix a wrong token or stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import orjson
import urllib3
from aws_lambda_powertools import Logger

from cdpbridge.braze.backoff import backoff_delay
from cdpbridge.braze.settings import RetryPolicy
from cdpbridge.currents.config import LyticsRoute

logger = Logger(child=True)

DEFAULT_LYTICS_URL: Final = "https://api.lytics.io"
_RETRIED: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class LyticsError(Exception):
    """Lytics refused a batch (or kept failing); the message says the stream, status and why."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


@dataclass(slots=True)
class LyticsStats:
    requests: int = 0
    events: int = 0
    retries: int = 0


@dataclass
class LyticsClient:
    """Posts event batches to one Lytics account; ``base_url`` is the API root."""

    token: str = field(repr=False)
    base_url: str = DEFAULT_LYTICS_URL
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=6, max_elapsed_s=60.0))
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    stats: LyticsStats = field(default_factory=LyticsStats)
    _pool: urllib3.PoolManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("a Lytics API token is required")
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False)

    def collect(
        self, stream: str, events: Sequence[dict[str, Any]], *, timestamp_field: str = "time"
    ) -> None:
        """Posts ``events`` to ``stream`` in one request; raises LyticsError when it cannot."""
        if not events:
            return
        url = (
            f"{self.base_url.rstrip('/')}/collect/json/{quote(stream, safe='')}"
            f"?timestamp_field={quote(timestamp_field, safe='')}"
        )
        body = orjson.dumps(events)
        headers = {"Authorization": self.token, "Content-Type": "application/json"}
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            status, detail, hint = self._post(url, body, headers)
            self.stats.requests += 1
            if status is not None and 200 <= status < 300:
                self.stats.events += len(events)
                return
            retriable = status is None or status in _RETRIED
            elapsed = time.monotonic() - started
            if not retriable or attempt >= self.retry.max_attempts or elapsed >= self.retry.max_elapsed_s:
                raise LyticsError(
                    f"Lytics stream {stream}: {len(events)} events refused after {attempt} attempt(s): "
                    f"{'HTTP ' + str(status) if status else 'no response'}: {detail}",
                    status=status,
                    permanent=not retriable,
                )
            self.stats.retries += 1
            delay = backoff_delay(self.retry, attempt, server_hint_s=hint)
            logger.warning(
                "Lytics collect retried",
                extra={"stream": stream, "status": status, "delay_s": round(delay, 3)},
            )
            self.sleep(delay)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, float | None]:
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=headers, timeout=self.timeout_s, preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300], None
        hint: float | None = None
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                hint = float(retry_after)
            except ValueError:
                hint = None
        return response.status, response.data[:300].decode("utf-8", "replace"), hint

    def close(self) -> None:
        self._pool.clear()


def lytics_client(token: str, base_url: str, route: LyticsRoute) -> LyticsClient:
    """A client for the lytics route as configured (attempts and timeout from the config)."""
    retry = RetryPolicy(max_attempts=route.max_attempts, max_elapsed_s=120.0)
    return LyticsClient(token, base_url, retry=retry, timeout_s=route.timeout_s)
