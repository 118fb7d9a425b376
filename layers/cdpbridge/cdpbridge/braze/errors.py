"""Errors raised by the Braze client. Messages carry Braze's words and never an API key."""

from __future__ import annotations

from typing import Any


class BrazeError(Exception):
    """Base of everything the Braze client raises about a call."""


class BrazeRequestError(BrazeError, ValueError):
    """The call was refused before anything was sent (a limit or rule Braze would refuse too)."""


class BrazePermanentError(BrazeError):
    """Braze refused the request in a way a retry cannot fix (400, 401, 403, 404 and other 4xx)."""

    def __init__(
        self, status: int, message: str, errors: list[Any] | None = None, *, endpoint: str = ""
    ) -> None:
        self.status = status
        self.message = message
        self.errors: list[Any] = list(errors or [])
        self.endpoint = endpoint
        where = f" {endpoint}" if endpoint else ""
        super().__init__(f"Braze{where} answered {status}: {message}")


class BrazeUnavailableError(BrazeError):
    """Retries ran out (attempts or elapsed time) on 429s, 5xx, timeouts or dropped connections."""

    def __init__(self, endpoint: str, attempts: int, last_status: int | None, message: str) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        self.last_status = last_status
        self.message = message
        super().__init__(f"Braze {endpoint} unavailable after {attempts} attempt(s): {message}")


class BrazeResponseError(BrazeError):
    """Braze answered success with a body this client cannot read (e.g. a field changed type)."""

    def __init__(self, endpoint: str, status: int, reason: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        super().__init__(f"Braze {endpoint} answered {status} with an unreadable body: {reason}")


class ExportInProgress(BrazeError):
    """A segment export was refused because another export of the same segment is still running."""

    def __init__(self, segment_id: str, message: str) -> None:
        self.segment_id = segment_id
        self.message = message
        super().__init__(f"an export of segment {segment_id!r} is already in progress: {message}")
