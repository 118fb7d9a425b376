"""Where the Braze REST API key comes from: given directly, or AWS Secrets Manager (cached).

The key itself never appears in a log line, an exception message or a repr.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from cdpbridge.braze.settings import BrazeSettings

logger = Logger(child=True)

# The JSON member that holds the key when the secret is a JSON object.
SECRET_JSON_FIELD = "api_key"  # nosec B105 # noqa: S105 - a member name, not a secret


class ApiKeyUnavailableError(RuntimeError):
    """No usable API key could be obtained (the message never contains the key)."""


@runtime_checkable
class ApiKeyProvider(Protocol):
    def current(self) -> str:
        """The key to send now."""
        ...

    def refresh_after_rejection(self, rejected_key: str) -> bool:
        """Called after Braze answered 401 to ``rejected_key``; True when a different key is now current."""
        ...


class StaticKeyProvider:
    """A key given directly (local use, tests); it cannot be refreshed."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        key = key.strip()
        if not key:
            raise ApiKeyUnavailableError("the Braze API key is empty")
        self._key = key

    def current(self) -> str:
        return self._key

    def refresh_after_rejection(self, rejected_key: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticKeyProvider(key=<redacted>)"


class SecretsManagerKeyProvider:
    """Reads the key from a Secrets Manager secret (name or ARN) and caches it for ``ttl_s`` seconds.

    The secret is either the plain key or JSON ``{"api_key": "..."}``. After a 401 the secret is read
    again once (the key may have been rotated); many threads hitting the same 401 cause one read.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        client: SecretsManagerClient | None = None,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_interval_s: float = 1.0,
    ) -> None:
        if not secret_id.strip():
            raise ValueError("the Secrets Manager secret id (name or ARN) is empty")
        self.secret_id = secret_id.strip()
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        # Stops a storm of 401s (e.g. a revoked key) from turning into a storm of GetSecretValue calls.
        self._min_refresh_interval_s = min_refresh_interval_s
        self._lock = threading.Lock()
        self._key: str | None = None
        self._fetched_at = 0.0
        self._fetches = 0
        self._last_rejection: tuple[str, float] | None = None

    @property
    def fetches(self) -> int:
        """How many times the secret was read (for tests and reports)."""
        return self._fetches

    def current(self) -> str:
        key = self._key
        if key is not None and self._clock() - self._fetched_at < self._ttl_s:
            return key  # fast path without the lock: attribute reads are atomic
        with self._lock:
            if self._key is None or self._clock() - self._fetched_at >= self._ttl_s:
                self._reload(keep_stale_on_error=True)
            assert self._key is not None
            return self._key

    def refresh_after_rejection(self, rejected_key: str) -> bool:
        with self._lock:
            if self._key is not None and self._key != rejected_key:
                return True  # another thread already picked up the rotated key
            last = self._last_rejection
            now = self._clock()
            if last is not None and last[0] == rejected_key and now - last[1] < self._min_refresh_interval_s:
                return False  # this very key was re-checked a moment ago and is still the current one
            self._last_rejection = (rejected_key, now)
            self._reload(keep_stale_on_error=False)
            changed = self._key != rejected_key
            logger.info(
                "Braze API key re-read after a 401",
                extra={"secret_id": self.secret_id, "key_changed": changed},
            )
            return changed

    def _reload(self, *, keep_stale_on_error: bool) -> None:
        try:
            key = self._fetch()
        except ApiKeyUnavailableError:
            if keep_stale_on_error and self._key is not None:
                # Secrets Manager hiccups must not stop a run that holds a working key.
                logger.warning(
                    "could not re-read the Braze API key secret; keeping the cached key",
                    extra={"secret_id": self.secret_id},
                )
                self._fetched_at = self._clock()
                return
            raise
        self._key = key
        self._fetched_at = self._clock()

    def _fetch(self) -> str:
        client = self._client
        if client is None:
            import boto3  # noqa: PLC0415 - boto3 is slow to import and only needed here

            client = self._client = boto3.client("secretsmanager")
        self._fetches += 1
        try:
            response = client.get_secret_value(SecretId=self.secret_id)
        except Exception as error:
            # The botocore message names the secret and the reason, never its value.
            raise ApiKeyUnavailableError(
                f"could not read the Braze API key from secret {self.secret_id!r}: {error}"
            ) from error
        return parse_secret_value(self.secret_id, response)

    def __repr__(self) -> str:
        return f"SecretsManagerKeyProvider(secret_id={self.secret_id!r})"


def parse_secret_value(secret_id: str, response: Any) -> str:
    """The key from a GetSecretValue response: a plain string or JSON {"api_key": "..."}."""
    text: str | None = response.get("SecretString")
    if text is None:
        binary = response.get("SecretBinary")
        if binary is None:
            raise ApiKeyUnavailableError(f"secret {secret_id!r} has neither SecretString nor SecretBinary")
        try:
            text = bytes(binary).decode("utf-8")
        except UnicodeDecodeError:
            raise ApiKeyUnavailableError(f"secret {secret_id!r}: SecretBinary is not UTF-8 text") from None
    text = text.strip()
    if text.startswith("{"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ApiKeyUnavailableError(
                f"secret {secret_id!r} looks like JSON but does not parse; store the plain key or"
                f' {{"{SECRET_JSON_FIELD}": "..."}}'
            ) from None
        if not isinstance(document, dict):
            raise ApiKeyUnavailableError(f"secret {secret_id!r}: the JSON must be an object")
        value = document.get(SECRET_JSON_FIELD)
        if not isinstance(value, str) or not value.strip():
            raise ApiKeyUnavailableError(
                f"secret {secret_id!r}: the JSON object has no non-empty string member {SECRET_JSON_FIELD!r}"
                f" (members: {', '.join(sorted(map(str, document))) or 'none'})"
            )
        return value.strip()
    if not text:
        raise ApiKeyUnavailableError(f"secret {secret_id!r} is empty")
    return text


def as_key_provider(api_key: ApiKeyProvider | str) -> ApiKeyProvider:
    return StaticKeyProvider(api_key) if isinstance(api_key, str) else api_key


def key_provider_from_settings(
    settings: BrazeSettings, *, client: SecretsManagerClient | None = None
) -> SecretsManagerKeyProvider:
    """The Secrets Manager provider the settings name (BRAZE_API_KEY_SECRET)."""
    if not settings.api_key_secret_id:
        raise ApiKeyUnavailableError(
            "no Braze API key secret configured: set BRAZE_API_KEY_SECRET to the secret's name or ARN"
        )
    return SecretsManagerKeyProvider(
        settings.api_key_secret_id, client=client, ttl_s=settings.api_key_cache_ttl_s
    )
