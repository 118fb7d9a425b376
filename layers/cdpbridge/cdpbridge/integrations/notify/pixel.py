"""The tracking pixel: a signed, expiring token per (program, user, send) in a 1x1 GIF's URL.

Token: ``<payload>.<signature>``, both base64url without padding. The payload is compact JSON:
``p`` program, ``u`` external_id, ``s`` send id, ``t`` the slot (epoch s), ``o`` the user's UTC
offset at the slot in minutes (so the open gets a local hour without a zone lookup), ``e`` expiry
(epoch s). The signature is HMAC-SHA256 of the payload text under the pixel key (a Secrets
Manager secret), compared in constant time.

Every request gets the same GIF, whatever the token: a bad, forged or expired token records
nothing and tells the caller nothing either. A good one records an e-mail open in the engagement
profile store, unless it comes within a minute of the send (a mail client fetching images on
delivery, not a person).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

import orjson

from cdpbridge.engagement import EngagementKind, EngagementStore, Observation

# A transparent 1x1 GIF (GIF89a, one colour, one transparent pixel).
PIXEL_GIF: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
TOKEN_PARAMETER: Final = "t"  # noqa: S105 - a query parameter name, not a secret
DEFAULT_TOKEN_DAYS: Final = 30
# An open this soon after the send is a mail client's prefetch (see optin.MACHINE_OPEN_WINDOW_S).
MACHINE_OPEN_WINDOW_S: Final = 60
# A token longer than this is not ours: refused before any decoding.
_MAX_TOKEN_CHARS: Final = 2048


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class PixelClaim:
    """What a token says: whose open of which send, and until when it counts."""

    program: str
    external_id: str
    send_id: str
    sent_at: int
    utc_offset_minutes: int
    expires_at: int


def _signature(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def mint_token(key: bytes, claim: PixelClaim) -> str:
    if not key:
        raise ValueError("the pixel key is empty")
    body = {
        "p": claim.program,
        "u": claim.external_id,
        "s": claim.send_id,
        "t": claim.sent_at,
        "o": claim.utc_offset_minutes,
        "e": claim.expires_at,
    }
    payload = _b64encode(orjson.dumps(body))
    return f"{payload}.{_signature(key, payload)}"


class PixelRefusal(StrEnum):
    """Why a token records nothing (an outcome's reason; the caller gets the GIF whatever it is)."""

    MISSING = "no token"
    TOO_LONG = f"token longer than {_MAX_TOKEN_CHARS} characters"
    MALFORMED = "token is not <payload>.<signature>"
    FORGED = "token signature does not match"
    UNREADABLE = "signed token payload is not a claim"
    EXPIRED = "token expired"
    NO_USER = "token names no user"


MACHINE_OPEN: Final = "machine open"
# A UTC offset is less than a day either way (datetime.timezone refuses anything else).
_MAX_OFFSET_MINUTES: Final = 24 * 60 - 1


def check_token(key: bytes, token: str | None, now: int) -> PixelClaim | PixelRefusal:
    """The token's claim when it is signed with ``key`` and not expired; else why not.

    The signature is checked before the payload is decoded, so only a payload this key signed is
    ever parsed; the length is checked before anything else.
    """
    if not token:
        return PixelRefusal.MISSING
    if len(token) > _MAX_TOKEN_CHARS:
        return PixelRefusal.TOO_LONG
    if not key:
        return PixelRefusal.FORGED
    if token.count(".") != 1:
        return PixelRefusal.MALFORMED
    payload, signature = token.split(".")
    if not payload or not signature:
        return PixelRefusal.MALFORMED
    try:
        expected = _signature(key, payload)
    except UnicodeEncodeError:
        return PixelRefusal.MALFORMED
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        return PixelRefusal.FORGED
    try:
        body = orjson.loads(_b64decode(payload))
        claim = PixelClaim(
            program=str(body["p"]),
            external_id=str(body["u"]),
            send_id=str(body["s"]),
            sent_at=int(body["t"]),
            utc_offset_minutes=int(body["o"]),
            expires_at=int(body["e"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError, orjson.JSONDecodeError):
        return PixelRefusal.UNREADABLE
    if abs(claim.utc_offset_minutes) > _MAX_OFFSET_MINUTES or claim.sent_at < 0:
        return PixelRefusal.UNREADABLE
    if claim.expires_at <= now:
        return PixelRefusal.EXPIRED
    if not claim.external_id:
        return PixelRefusal.NO_USER
    return claim


def verify_token(key: bytes, token: str, now: int) -> PixelClaim | None:
    """The token's claim when it is signed with ``key`` and not expired; else None."""
    checked = check_token(key, token, now)
    return checked if isinstance(checked, PixelClaim) else None


def pixel_url(base_url: str, token: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{TOKEN_PARAMETER}={quote(token, safe='')}"


def claim_for_slot(
    program: str, external_id: str, send_id: str, local_time: str, *, valid_days: int = DEFAULT_TOKEN_DAYS
) -> PixelClaim:
    """The claim of one planned send; ``local_time`` is the plan's (ISO-8601 with the user's offset)."""
    local = datetime.fromisoformat(local_time)
    offset = local.utcoffset() or timedelta(0)
    sent_at = int(local.timestamp())
    return PixelClaim(
        program,
        external_id,
        send_id,
        sent_at,
        int(offset.total_seconds() // 60),
        sent_at + valid_days * 86_400,
    )


def open_observation(claim: PixelClaim, opened_at: int, token: str) -> Observation | None:
    """The open as an engagement observation; None for a machine open (right after the send)."""
    if opened_at - claim.sent_at < MACHINE_OPEN_WINDOW_S:
        return None
    local = datetime.fromtimestamp(opened_at, timezone(timedelta(minutes=claim.utc_offset_minutes)))
    # Hour of week counts from Monday 00:00 local, as everywhere in the engagement profiles.
    hour = local.weekday() * 24 + local.hour
    # One tag per token: the same send opened twice in the same second is one observation.
    tag = zlib.crc32(f"{token}@{opened_at}".encode())
    return Observation(opened_at, hour, EngagementKind.EMAIL_OPEN, tag)


@dataclass(frozen=True, slots=True)
class PixelOutcome:
    recorded: bool
    reason: str


def record_open(
    key: bytes, token: str | None, store: EngagementStore, now: datetime | None = None
) -> PixelOutcome:
    """Checks the token and records the open; never raises for a bad token."""
    opened_at = int((now or datetime.now(UTC)).timestamp())
    claim = check_token(key, token, opened_at)
    if not isinstance(claim, PixelClaim):
        return PixelOutcome(False, claim)
    assert token is not None  # a claim comes only from a token
    observation = open_observation(claim, opened_at, token)
    if observation is None:
        return PixelOutcome(False, MACHINE_OPEN)
    store.record({claim.external_id: [observation]})
    return PixelOutcome(True, "open recorded")


def gif_response() -> dict[str, Any]:
    """A Function URL (payload 2.0) answer carrying the GIF; never cached, so every open arrives."""
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "image/gif",
            "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
            "Content-Length": str(len(PIXEL_GIF)),
        },
        "body": base64.b64encode(PIXEL_GIF).decode("ascii"),
        "isBase64Encoded": True,
    }


def token_of_request(event: Mapping[str, Any]) -> str | None:
    """The token of a Function URL request (payload 2.0): the ``t`` query parameter."""
    parameters = event.get("queryStringParameters")
    if isinstance(parameters, Mapping):
        value = parameters.get(TOKEN_PARAMETER)
        if isinstance(value, str):
            return value
    return None


__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "MACHINE_OPEN",
    "PIXEL_GIF",
    "PixelClaim",
    "PixelOutcome",
    "PixelRefusal",
    "check_token",
    "claim_for_slot",
    "gif_response",
    "mint_token",
    "open_observation",
    "pixel_url",
    "record_open",
    "token_of_request",
    "verify_token",
]
