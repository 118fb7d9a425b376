"""Request-level refusals of the emulator's endpoints, turned into HTTP responses by the app."""

from __future__ import annotations


class ApiError(Exception):
    """A whole request is refused with ``status`` and Braze's ``{"message": ...}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # A body other than {"message": ...} (Braze's parse error carries "error" instead).
        self.body = body
        # Headers that replace the gate's (a second rate limit checked inside the endpoint).
        self.headers = headers


class BadRequest(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)
