"""The endpoint of Segment's Webhooks destination: verify the signature, bound the size, queue.

Segment signs each request body with the destination's shared secret: ``X-Signature`` is the hex
HMAC-SHA1 of the raw body. The signature is checked before the body is parsed, in constant time,
so an unsigned request costs a hash and nothing else and learns nothing from the timing. Accepted
calls go to the relay queue and the answer follows at once: Braze's speed never reaches Segment,
which would retry (and send the calls again) on a slow answer.

Each refusal names its reason (status and message, and a ``detail`` where there is more to say).
A batch is taken call by call: the calls that are JSON objects of a queueable size are queued, the
others are listed in the answer by their place in the batch, with a reason that never shows a value
(calls carry personal data). The content type is not read: the signature proves the body came from
Segment, and the body itself says whether it is JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Protocol

import orjson
from pydantic import Field

from cdpbridge.environment import EnvironmentSettings

SIGNATURE_HEADER: Final = "x-signature"
# SQS takes 256 KiB a message; calls are packed into JSON arrays below this, leaving room for the
# message attributes and the batch request around them.
MAX_MESSAGE_BYTES: Final = 200 * 1024
# The deepest nesting of a call that orjson writes (it reads up to 1024 levels).
MAX_CALL_DEPTH: Final = 254
# Lambda Function URLs accept request bodies up to 6 MB.
MAX_FUNCTION_URL_BODY: Final = 6 * 1024 * 1024


class WebhookSettings(EnvironmentSettings):
    """The Segment webhook function's environment."""

    secret_id: str = Field(min_length=1, alias="SEGMENT_WEBHOOK_SECRET")
    queue_url: str = Field(min_length=1, alias="SEGMENT_CALLS_QUEUE_URL")
    max_body_bytes: int = Field(
        default=512 * 1024, ge=1024, le=MAX_FUNCTION_URL_BODY, alias="SEGMENT_WEBHOOK_MAX_BODY_BYTES"
    )
    # How long the shared secret is cached: a rotation is picked up within this time.
    secret_ttl_s: float = Field(default=300.0, ge=0, alias="SEGMENT_WEBHOOK_SECRET_TTL_S")


class CallSink(Protocol):
    """Where accepted calls go (the relay queue); raises when it cannot take them."""

    def send(self, messages: Sequence[bytes]) -> None: ...


# The refused calls an answer lists; the rest are counted (a 6 MB body of refused calls must not
# make an answer larger than a Function URL can return).
MAX_LISTED_REJECTIONS: Final = 20


@dataclass(frozen=True, slots=True)
class RejectedCall:
    """A call of a batch that was not queued: its place in the batch and why (never its value)."""

    index: int
    reason: str

    def __str__(self) -> str:
        return f"call {self.index} {self.reason}"


@dataclass(frozen=True, slots=True)
class WebhookReply:
    status: int
    message: str
    calls: int = 0
    rejected: tuple[RejectedCall, ...] = ()
    detail: str | None = None

    def function_url_response(self) -> dict[str, Any]:
        """The Lambda Function URL response (payload format 2.0)."""
        body: dict[str, Any] = {"message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.status == HTTPStatus.OK:
            body["accepted"] = self.calls
        if self.rejected:
            body["rejected"] = len(self.rejected)
            body["rejections"] = [
                {"call": item.index, "reason": item.reason} for item in self.rejected[:MAX_LISTED_REJECTIONS]
            ]
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": orjson.dumps(body).decode(),
            "isBase64Encoded": False,
        }


def signature_valid(secret: bytes, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA1 of ``body`` under ``secret`` (constant time)."""
    if not signature or not isinstance(signature, str):
        return False
    expected = hmac.new(secret, body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def sign(secret: bytes, body: bytes) -> str:
    """The X-Signature Segment sends for ``body`` (used by tests and the local demo)."""
    return hmac.new(secret, body, hashlib.sha1).hexdigest()


def request_body(event: Mapping[str, Any]) -> bytes | None:
    """The raw body as Segment sent it (Function URLs base64-encode bodies that are not text);
    None when the event says base64 and the body is not."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    # A lone surrogate cannot come from a Function URL, but must not raise either: its bytes fail
    # the signature, or the UTF-8 check after it.
    return body.encode("utf-8", "surrogatepass")


def _signatures(event: Mapping[str, Any]) -> list[str]:
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return []
    return [value for name, value in headers.items() if str(name).lower() == SIGNATURE_HEADER]


def handle_request(
    event: Mapping[str, Any], *, secret: bytes, max_body_bytes: int, sink: CallSink
) -> WebhookReply:
    """One Function URL request: 405, 413, 401, 400, 503 or 200 with the number of calls queued."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    if method != "POST":
        return WebhookReply(405, "only POST is accepted")
    body = request_body(event)
    if body is None:
        return WebhookReply(400, "the body is not valid base64")
    if len(body) > max_body_bytes:
        return WebhookReply(413, f"body larger than {max_body_bytes} bytes")
    signatures = _signatures(event)
    if len(signatures) > 1:
        # Function URLs join a repeated header into one value; two spellings of the name in one
        # event would be two claims, and which one counts must not depend on their order.
        return WebhookReply(401, "missing or wrong X-Signature", detail="X-Signature given more than once")
    if not signature_valid(secret, body, signatures[0] if signatures else None):
        return WebhookReply(401, "missing or wrong X-Signature")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return WebhookReply(400, "the body is not UTF-8", detail=f"{error.reason} at byte {error.start}")
    try:
        calls, rejected = split_calls(body)
    except ValueError as error:
        return WebhookReply(400, "the body is not JSON", detail=str(error.__cause__ or error))
    if not calls and not rejected:
        return WebhookReply(200, "no calls")
    if not calls:
        too_large = all(item.reason.startswith("is larger than") for item in rejected)
        status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if too_large else HTTPStatus.BAD_REQUEST
        return WebhookReply(int(status), str(rejected[0]), rejected=tuple(rejected))
    sink.send(pack_calls(calls))
    return WebhookReply(200, "queued", len(calls), tuple(rejected))


def split_calls(
    body: bytes, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[list[bytes], list[RejectedCall]]:
    """The queueable calls of a body (one call object, or a JSON array of them), each re-encoded
    compactly and in order, and the calls that are not (not an object, nested too deeply to be
    written again, or too large for a queue message); ValueError (caused by orjson's error) when
    the body is not JSON."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValueError("the body is not JSON") from error
    items = payload if isinstance(payload, list) else [payload]
    calls: list[bytes] = []
    rejected: list[RejectedCall] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(RejectedCall(index, "is not a JSON object"))
            continue
        try:
            call = orjson.dumps(item)
        except TypeError:
            # orjson writes 254 levels of nesting where it reads 1024: a call it cannot write again
            # could not be queued, nor sent on to Braze.
            rejected.append(RejectedCall(index, f"is nested deeper than {MAX_CALL_DEPTH} levels"))
            continue
        if len(call) + 2 > max_message_bytes:
            rejected.append(RejectedCall(index, f"is larger than {max_message_bytes} bytes"))
            continue
        calls.append(call)
    return calls, rejected


def parse_calls(body: bytes) -> list[bytes]:
    """The calls of a body (one call object, or a JSON array of them), each re-encoded compactly;
    ValueError naming the first call that is not a JSON object."""
    calls, rejected = split_calls(body, max_message_bytes=MAX_FUNCTION_URL_BODY * 2)
    if rejected:
        raise ValueError(str(rejected[0]))
    return calls


def pack_calls(calls: Sequence[bytes], max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """Calls packed into as few JSON-array messages as fit, in order (each call whole)."""
    messages: list[bytes] = []
    current: list[bytes] = []
    size = 2
    for index, call in enumerate(calls):
        if len(call) + 2 > max_message_bytes:
            raise ValueError(f"call {index} is larger than {max_message_bytes} bytes")
        if current and size + len(call) + 1 > max_message_bytes:
            messages.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(call)
        size += len(call) + 1
    if current:
        messages.append(b"[" + b",".join(current) + b"]")
    return messages


def unpack_calls(message: str | bytes) -> list[dict[str, Any]]:
    """The calls of one queue message (``pack_calls`` output); ValueError when it is not that."""
    try:
        payload = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise ValueError("the queue message is not JSON") from None
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        raise ValueError("the queue message is not a JSON array of calls")
    return payload


class SqsCallSink:
    """Sends packed calls to the relay queue, ten messages a request; raises if any is refused."""

    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, messages: Sequence[bytes]) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(number), "MessageBody": message.decode()}
                for number, message in enumerate(messages[start : start + 10])
            ]
            response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                retried = [entry for entry in entries if entry["Id"] in {item["Id"] for item in failed}]
                again = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=retried)
                if again.get("Failed"):
                    codes = sorted({item.get("Code", "?") for item in again["Failed"]})
                    raise RuntimeError(f"the relay queue refused {len(again['Failed'])} messages ({codes})")


__all__ = [
    "MAX_CALL_DEPTH",
    "MAX_LISTED_REJECTIONS",
    "MAX_MESSAGE_BYTES",
    "SIGNATURE_HEADER",
    "CallSink",
    "RejectedCall",
    "SqsCallSink",
    "WebhookReply",
    "WebhookSettings",
    "handle_request",
    "pack_calls",
    "parse_calls",
    "request_body",
    "sign",
    "signature_valid",
    "split_calls",
    "unpack_calls",
]
