"""The two HTTP endpoints under generated hostile requests, called as their Function URLs call them.

The Segment webhook: random bytes, huge and deeply nested bodies, wrong content types, missing,
wrong, repeated and oddly spelled X-Signature headers, bodies that are not UTF-8, and batches mixing
good calls with bad ones. The handler never raises (a raise is a 503 with a traceback, and Segment
sends the calls again), an unsigned body is 401 and queues nothing, every refusal names its reason,
and of a signed batch exactly the good calls are queued, in order, the bad ones listed by place.

The Notify pixel: tokens truncated, tampered with, in the wrong base64, expired, replayed,
oversized, or signed over payloads that are not claims. Every request gets the GIF (a 4xx would
show a broken image in the reader's mail, and tell a forger which tokens are good; docs/notify.md);
the reason a token recorded nothing is the outcome's, and only a good token records an open, once
per second however often it is replayed.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cdpbridge.engagement import SqliteEngagementStore
from cdpbridge.integrations.notify import runtime as notify_runtime
from cdpbridge.integrations.notify.pixel import (
    PIXEL_GIF,
    PixelClaim,
    PixelRefusal,
    check_token,
    mint_token,
    record_open,
)
from cdpbridge.integrations.segment import webhook_runtime
from cdpbridge.integrations.segment.webhook import (
    MAX_CALL_DEPTH,
    MAX_MESSAGE_BYTES,
    WebhookSettings,
    handle_request,
    sign,
    unpack_calls,
)
from tests.fuzz.hostile import fuzz_settings

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(120)]

EVENTS = Path(__file__).resolve().parents[2] / "events"
SECRET = "fuzz-webhook-secret"
MAX_BODY = 64 * 1024
REFUSALS = {400, 401, 405, 413}
PIXEL_KEY = b"fuzz-pixel-key-0123456789abcdef"
SENT_AT = int(datetime(2026, 12, 8, 9, 0, tzinfo=UTC).timestamp())
CLAIM = PixelClaim("morning", "reader-001", "notify-morning-20261208T090000Z", SENT_AT, 60, SENT_AT + 86_400)
OPENED = SENT_AT + 2 * 3600


# ------------------------------------------------------------------------------------------ webhook


class CollectingSink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def send(self, messages: Sequence[bytes]) -> None:
        self.messages.extend(messages)


class FixedSecret:
    def current(self) -> str:
        return SECRET


def webhook_event(
    body: bytes,
    headers: dict[str, str],
    *,
    b64: bool = False,
    method: str = "POST",
) -> dict[str, Any]:
    """The sample Function URL event (events/) with this body, these headers and this method."""
    event: dict[str, Any] = copy.deepcopy(SAMPLE_WEBHOOK_EVENT)
    event["headers"] = {"host": event["headers"]["host"], "user-agent": "Segment.io/1.0", **headers}
    event["requestContext"]["http"]["method"] = method
    event["body"] = base64.b64encode(body).decode() if b64 else body.decode("utf-8", "surrogateescape")
    event["isBase64Encoded"] = b64
    return event


SAMPLE_WEBHOOK_EVENT = json.loads((EVENTS / "segment_webhook_function_url.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def webhook() -> Iterator[CollectingSink]:
    """The webhook function's own entry point, its secret and queue stood in for by local objects."""
    sink = CollectingSink()
    settings = WebhookSettings.from_env(
        {
            "SEGMENT_WEBHOOK_SECRET": "arn:aws:secretsmanager:us-east-1:1:secret:hook",
            "SEGMENT_CALLS_QUEUE_URL": "http://127.0.0.1/queue",
            "SEGMENT_WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
        }
    )
    runtime = webhook_runtime.WebhookRuntime(settings, FixedSecret(), sink)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webhook_runtime, "webhook_runtime", lambda: runtime)
        yield sink


def answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = webhook_runtime.handle_webhook_event(event)
    assert response["headers"] == {"content-type": "application/json"}
    body = orjson.loads(response["body"])
    assert isinstance(body["message"], str) and body["message"]
    return int(response["statusCode"]), body


def good_call(index: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"fuzz-{index}",
        "userId": f"u-{index}",
        "timestamp": "2026-12-01T09:00:00.000Z",
        "traits": {"email": f"reader{index}@example.org", "phone": "+49 151 1234 5678"},
    }


def writable(call: dict[str, Any]) -> bool:
    try:
        orjson.dumps(call)
    except TypeError:
        return False
    return True


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what JSON writers put in a body (orjson writes no more)
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
signature_headers = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"x-signature": st.text(max_size=60)}),
    st.fixed_dictionaries({"X-Signature": st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)}),
    st.fixed_dictionaries(
        {"x-signature": st.text(max_size=50), "X-SIGNATURE": st.text(max_size=50)}
    ),  # the same header twice, spelled two ways
)
content_types = st.sampled_from(
    ("application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "")
)


@fuzz_settings(150)
@given(
    body=st.binary(max_size=2048)
    | st.text(max_size=512).map(lambda text: text.encode("utf-8", "surrogatepass")),
    headers=signature_headers,
    content_type=content_types,
    b64=st.booleans(),
    method=st.sampled_from(("POST", "POST", "GET", "PUT", "OPTIONS")),
)
def test_an_unsigned_request_is_refused_with_its_reason_and_queues_nothing(
    webhook: CollectingSink,
    body: bytes,
    headers: dict[str, str],
    content_type: str,
    b64: bool,
    method: str,
) -> None:
    assume(not any(value.strip().lower() == sign(SECRET.encode(), body) for value in headers.values()))
    webhook.messages.clear()
    status, reply = answer(
        webhook_event(body, {"content-type": content_type, **headers}, b64=b64, method=method)
    )
    if method == "POST":
        assert (status, reply["message"]) == (401, "missing or wrong X-Signature")
    else:
        assert (status, reply["message"]) == (405, "only POST is accepted")
    assert webhook.messages == []


@fuzz_settings(150)
@given(
    body=st.one_of(
        st.binary(max_size=2048),
        json_values.map(orjson.dumps),
        st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    ),
    content_type=content_types,
    b64=st.booleans(),
)
def test_a_signed_body_is_queued_or_refused_with_its_reason(
    webhook: CollectingSink, body: bytes, content_type: str, b64: bool
) -> None:
    webhook.messages.clear()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        b64 = True  # a Function URL base64-encodes a body that is not text
    headers = {"content-type": content_type, "x-signature": sign(SECRET.encode(), body)}
    status, reply = answer(webhook_event(body, headers, b64=b64))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
        assert status == 400 and reply["message"] in ("the body is not JSON", "the body is not UTF-8")
        assert reply["detail"]
        assert webhook.messages == []
        return
    items = payload if isinstance(payload, list) else [payload]
    objects = [item for item in items if isinstance(item, dict) and writable(item)]
    queued = [call for message in webhook.messages for call in unpack_calls(message)]
    # The content type never changes the answer: the signature and the body decide.
    assert queued == objects
    if objects:
        assert status == 200 and reply["accepted"] == len(objects)
    elif items:
        assert status == 400
        assert reply["message"].endswith(
            ("is not a JSON object", f"is nested deeper than {MAX_CALL_DEPTH} levels")
        )
    else:
        assert (status, reply["message"]) == (200, "no calls")
    assert reply.get("rejected", 0) == len(items) - len(objects)


# A good call, or one that is not a call object, or one too large for a queue message.
batch_items = st.one_of(
    st.integers(0, 10_000).map(lambda index: ("good", good_call(index))),
    json_scalars.map(lambda value: ("not_object", value)),
    st.lists(json_scalars, max_size=3).map(lambda value: ("not_object", value)),
    st.integers(0, 10).map(lambda index: ("too_large", {**good_call(index), "pad": "x" * MAX_MESSAGE_BYTES})),
)


@fuzz_settings(60)
@given(items=st.lists(batch_items, min_size=1, max_size=30))
def test_a_mixed_batch_queues_its_good_calls_in_order_and_lists_the_bad_ones(
    items: list[tuple[str, Any]],
) -> None:
    # Given a batch of good calls and bad ones, signed (the body limit at a Function URL's 6 MB)
    body = orjson.dumps([value for _, value in items])
    sink = CollectingSink()
    request = webhook_event(
        body, {"content-type": "application/json", "x-signature": sign(SECRET.encode(), body)}
    )

    # When it is handled
    reply = handle_request(request, secret=SECRET.encode(), max_body_bytes=6 * 1024 * 1024, sink=sink)

    # Then the good calls are queued in order, in messages a queue takes, and each bad one is listed
    # by its place with its reason, never its value
    good = [value for kind, value in items if kind == "good"]
    queued = [call for message in sink.messages for call in unpack_calls(message)]
    assert queued == good
    assert all(len(message) <= MAX_MESSAGE_BYTES for message in sink.messages)
    bad = [(index, kind) for index, (kind, _) in enumerate(items) if kind != "good"]
    assert [item.index for item in reply.rejected] == [index for index, _ in bad]
    for item, (_, kind) in zip(reply.rejected, bad, strict=True):
        expected = (
            "is not a JSON object" if kind == "not_object" else f"is larger than {MAX_MESSAGE_BYTES} bytes"
        )
        assert item.reason == expected
    response = orjson.loads(reply.function_url_response()["body"])
    assert "@" not in orjson.dumps(response).decode()
    if good:
        assert (reply.status, response["accepted"]) == (200, len(good))
    else:
        assert reply.status == (413 if all(kind == "too_large" for _, kind in bad) else 400)
        assert reply.message == f"call {bad[0][0]} {reply.rejected[0].reason}"
    assert response.get("rejected", 0) == len(bad)


@fuzz_settings(40)
@given(extra=st.integers(1, 4 * MAX_BODY), b64=st.booleans(), signed=st.booleans())
def test_a_body_over_the_limit_is_413_whatever_it_holds(
    webhook: CollectingSink, extra: int, b64: bool, signed: bool
) -> None:
    body = b"[" + b'"x",' * ((MAX_BODY + extra) // 4) + b'"x"]'
    headers = {"x-signature": sign(SECRET.encode(), body) if signed else "0" * 40}
    status, reply = answer(webhook_event(body, headers, b64=b64))
    assert (status, reply["message"]) == (413, f"body larger than {MAX_BODY} bytes")
    assert webhook.messages == []


# -------------------------------------------------------------------------------------------- pixel


class PixelStores:
    """A fresh engagement store per example, behind the pixel function's own entry point."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.store = self.fresh()

    def fresh(self) -> SqliteEngagementStore:
        self.count += 1
        self.store = SqliteEngagementStore(self.directory / f"engagement-{self.count}.sqlite3")
        return self.store

    def runtime(self) -> notify_runtime.PixelRuntime:
        return notify_runtime.PixelRuntime(PIXEL_KEY, self.store)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pixel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PixelStores]:
    stores = PixelStores(tmp_path_factory.mktemp("pixel"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(notify_runtime, "_pixel_runtime", stores.runtime)
        yield stores


SAMPLE_PIXEL_EVENT = json.loads((EVENTS / "notify_pixel_function_url.json").read_text(encoding="utf-8"))


def pixel_event(token: str | None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(SAMPLE_PIXEL_EVENT)
    if token is None:
        event.pop("queryStringParameters")
        event["rawQueryString"] = ""
    else:
        event["queryStringParameters"] = {"t": token}
        event["rawQueryString"] = f"t={token}"
    return event


def is_gif(response: dict[str, Any]) -> bool:
    return (
        response["statusCode"] == 200
        and response["headers"]["Content-Type"] == "image/gif"
        and base64.b64decode(response["body"]) == PIXEL_GIF
    )


GOOD_TOKEN = mint_token(PIXEL_KEY, CLAIM)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _tampered(token: str, position: int, character: str) -> str:
    position %= len(token)
    return token[:position] + character + token[position + 1 :]


hostile_tokens = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.text(alphabet=B64URL + ".=+/%", max_size=400),
    st.integers(0, len(GOOD_TOKEN) - 1).map(lambda end: GOOD_TOKEN[:end]),  # truncated
    st.tuples(st.integers(0, 10_000), st.sampled_from(B64URL + "=+/.")).map(
        lambda change: _tampered(GOOD_TOKEN, *change)
    ),
    st.just(GOOD_TOKEN.replace("-", "+").replace("_", "/") + "=="),  # standard base64, padded
    st.integers(2049, 50_000).map(lambda size: "A" * size + "." + "B" * 43),  # oversized
    st.just(GOOD_TOKEN + "," + GOOD_TOKEN),  # the parameter twice, as a Function URL joins it
)


@fuzz_settings(200)
@given(token=hostile_tokens)
def test_a_hostile_token_gets_the_gif_and_records_nothing_with_its_reason(
    pixel: PixelStores, token: str | None
) -> None:
    assume(token != GOOD_TOKEN)
    store = pixel.store
    outcome = record_open(PIXEL_KEY, token, store, datetime.fromtimestamp(OPENED, UTC))
    assert not outcome.recorded
    assert outcome.reason in set(PixelRefusal)
    assert is_gif(notify_runtime.handle_pixel_request(pixel_event(token)))
    assert store.profiles([CLAIM.external_id]) == {}


def json_bytes(value: Any) -> bytes:
    """JSON as any writer may produce it: integers past 64 bits and Infinity included."""
    return json.dumps(value).encode()


signed_payloads = st.one_of(
    json_values.map(json_bytes),
    st.binary(max_size=64),
    st.fixed_dictionaries(
        {
            "p": json_values,
            "u": json_values,
            "s": json_values,
            "t": json_values,
            "o": json_values,
            "e": json_values,
        }
    ).map(json_bytes),
    st.fixed_dictionaries(
        {
            "p": st.just("morning"),
            "u": st.text(max_size=10),
            "s": st.just("s-1"),
            "t": st.integers(-(2**70), 2**70) | st.floats(allow_nan=False),
            "o": st.integers(-(2**40), 2**40),
            "e": st.integers(-(2**70), 2**70),
        }
    ).map(json_bytes),
)


@fuzz_settings(150)
@given(payload=signed_payloads)
def test_a_signed_payload_that_is_not_a_good_claim_never_raises(pixel: PixelStores, payload: bytes) -> None:
    # What only a holder of the key could send: the payload is parsed after the signature matched.
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    assume(encoded)
    from cdpbridge.integrations.notify.pixel import _signature  # noqa: PLC0415 - the signer itself

    token = f"{encoded}.{_signature(PIXEL_KEY, encoded)}"
    checked = check_token(PIXEL_KEY, token, OPENED)
    outcome = record_open(PIXEL_KEY, token, pixel.store, datetime.fromtimestamp(OPENED, UTC))
    if isinstance(checked, PixelClaim):
        assert outcome.reason in ("open recorded", "machine open")
    else:
        assert (outcome.recorded, outcome.reason) == (False, checked)
    assert is_gif(notify_runtime.handle_pixel_request(pixel_event(token)))


@fuzz_settings(40)
@given(replays=st.integers(1, 5), expired_by=st.integers(0, 10**9))
def test_a_replayed_token_is_one_open_per_second_and_an_expired_one_none(
    pixel: PixelStores, replays: int, expired_by: int
) -> None:
    store = pixel.fresh()
    opened = datetime.fromtimestamp(OPENED, UTC)
    outcomes = [record_open(PIXEL_KEY, GOOD_TOKEN, store, opened) for _ in range(replays)]
    assert all(outcome.recorded for outcome in outcomes)
    assert store.profiles([CLAIM.external_id])[CLAIM.external_id].by_kind == {"email_open": 1}
    late = datetime.fromtimestamp(CLAIM.expires_at + expired_by, UTC)
    assert record_open(PIXEL_KEY, GOOD_TOKEN, store, late).reason == PixelRefusal.EXPIRED
    assert store.profiles([CLAIM.external_id])[CLAIM.external_id].by_kind == {"email_open": 1}
