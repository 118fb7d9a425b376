"""The webhook's request handling: signature first, then size and shape, then queueing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from cdpbridge.integrations.segment.webhook import (
    MAX_CALL_DEPTH,
    MAX_LISTED_REJECTIONS,
    MAX_MESSAGE_BYTES,
    WebhookSettings,
    handle_request,
    pack_calls,
    parse_calls,
    sign,
    signature_valid,
    unpack_calls,
)

SECRET = b"shared-secret"


class CollectingSink:
    """Keeps what the webhook queued, so a test can read it back."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def send(self, messages: Sequence[bytes]) -> None:
        self.messages.extend(messages)


def event(
    body: bytes, signature: str | None = None, *, method: str = "POST", b64: bool = False
) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return {
        "version": "2.0",
        "headers": headers,
        "requestContext": {"http": {"method": method}},
        "body": base64.b64encode(body).decode() if b64 else body.decode(),
        "isBase64Encoded": b64,
    }


def handled(
    request: dict[str, Any], sink: CollectingSink | None = None, max_body: int = 10_000
) -> tuple[int, str]:
    reply = handle_request(request, secret=SECRET, max_body_bytes=max_body, sink=sink or CollectingSink())
    return reply.status, reply.message


CALL = orjson.dumps({"type": "track", "userId": "u1", "event": "E", "messageId": "m1"})


def test_the_signature_is_the_hex_hmac_sha1_of_the_raw_body() -> None:
    expected = hmac.new(SECRET, CALL, hashlib.sha1).hexdigest()
    assert sign(SECRET, CALL) == expected
    assert signature_valid(SECRET, CALL, expected)
    assert signature_valid(SECRET, CALL, expected.upper())  # hex digits in either case
    assert not signature_valid(SECRET, CALL, None)
    assert not signature_valid(SECRET, CALL, "")
    assert not signature_valid(SECRET, CALL + b" ", expected)
    assert not signature_valid(b"other", CALL, expected)


def test_a_signed_call_is_queued_as_one_message() -> None:
    sink = CollectingSink()
    reply = handle_request(event(CALL, sign(SECRET, CALL)), secret=SECRET, max_body_bytes=10_000, sink=sink)
    assert (reply.status, reply.calls) == (200, 1)
    assert [unpack_calls(message) for message in sink.messages] == [[orjson.loads(CALL)]]
    response = reply.function_url_response()
    assert response["statusCode"] == 200
    assert orjson.loads(response["body"]) == {"message": "queued", "accepted": 1}


def test_a_batch_is_queued_in_order() -> None:
    body = orjson.dumps([{"n": index} for index in range(5)])
    sink = CollectingSink()
    assert handled(event(body, sign(SECRET, body)), sink) == (200, "queued")
    assert [call["n"] for message in sink.messages for call in unpack_calls(message)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("signature", [None, "", "deadbeef", "0" * 40])
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_queued(signature: str | None) -> None:
    sink = CollectingSink()
    assert handled(event(CALL, signature), sink) == (401, "missing or wrong X-Signature")
    assert sink.messages == []


def test_a_wrong_signature_is_401_even_when_the_body_is_not_json() -> None:
    # The body is never parsed before the signature is checked.
    assert handled(event(b"{not json", "0" * 40))[0] == 401


def test_a_body_over_the_limit_is_413_before_anything_else() -> None:
    body = orjson.dumps([{"padding": "x" * 200}] * 100)
    assert handled(event(body, sign(SECRET, body)), max_body=1024) == (413, "body larger than 1024 bytes")


def test_a_base64_body_is_verified_on_its_decoded_bytes() -> None:
    assert handled(event(CALL, sign(SECRET, CALL), b64=True))[0] == 200
    broken = event(CALL, sign(SECRET, CALL))
    broken |= {"isBase64Encoded": True, "body": "%%%"}
    assert handled(broken) == (400, "the body is not valid base64")


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "the body is not JSON"), (b"[1, 2]", "call 0 is not a JSON object")],
)
def test_a_signed_body_that_is_not_calls_is_400(body: bytes, message: str) -> None:
    assert handled(event(body, sign(SECRET, body))) == (400, message)


def test_an_empty_batch_queues_nothing() -> None:
    sink = CollectingSink()
    assert handled(event(b"[]", sign(SECRET, b"[]")), sink) == (200, "no calls")
    assert sink.messages == []


def test_only_post_is_accepted() -> None:
    assert handled(event(CALL, sign(SECRET, CALL), method="GET"))[0] == 405


def test_calls_are_packed_into_messages_below_the_queue_limit() -> None:
    calls = parse_calls(orjson.dumps([{"text": "x" * 1000, "n": index} for index in range(500)]))
    messages = pack_calls(calls)
    assert len(messages) > 1
    assert all(len(message) <= MAX_MESSAGE_BYTES for message in messages)
    assert [call["n"] for message in messages for call in unpack_calls(message)] == list(range(500))
    with pytest.raises(ValueError, match="call 0 is larger than 100 bytes"):
        pack_calls([b"x" * 200], max_message_bytes=100)


def test_a_queue_message_that_is_not_an_array_of_calls_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON array of calls"):
        unpack_calls('{"type": "track"}')


def test_settings_name_their_variables() -> None:
    settings = WebhookSettings.from_env(
        {"SEGMENT_WEBHOOK_SECRET": "arn:s", "SEGMENT_CALLS_QUEUE_URL": "http://q"}
    )
    assert settings.max_body_bytes == 512 * 1024
    with pytest.raises(ValueError, match="SEGMENT_CALLS_QUEUE_URL: Field required"):
        WebhookSettings.from_env({"SEGMENT_WEBHOOK_SECRET": "arn:s"})


def test_a_mixed_batch_queues_its_good_calls_and_lists_the_bad_ones_by_place() -> None:
    # Given a batch whose second and fourth items are not call objects
    body = orjson.dumps([{"n": 0}, 7, {"n": 2}, ["x"], {"n": 4}])
    sink = CollectingSink()

    # When it is handled
    reply = handle_request(event(body, sign(SECRET, body)), secret=SECRET, max_body_bytes=10_000, sink=sink)

    # Then the three calls are queued in order and the answer lists the two others
    assert [call["n"] for message in sink.messages for call in unpack_calls(message)] == [0, 2, 4]
    assert orjson.loads(reply.function_url_response()["body"]) == {
        "message": "queued",
        "accepted": 3,
        "rejected": 2,
        "rejections": [
            {"call": 1, "reason": "is not a JSON object"},
            {"call": 3, "reason": "is not a JSON object"},
        ],
    }


def test_a_call_too_large_for_a_queue_message_leaves_the_others_queued() -> None:
    body = orjson.dumps([{"n": 0}, {"pad": "x" * MAX_MESSAGE_BYTES}])
    sink = CollectingSink()
    reply = handle_request(event(body, sign(SECRET, body)), secret=SECRET, max_body_bytes=10**6, sink=sink)
    assert (reply.status, reply.calls) == (200, 1)
    assert [str(item) for item in reply.rejected] == [f"call 1 is larger than {MAX_MESSAGE_BYTES} bytes"]
    alone = orjson.dumps({"pad": "x" * MAX_MESSAGE_BYTES})
    assert handled(event(alone, sign(SECRET, alone)), max_body=10**6) == (
        413,
        f"call 0 is larger than {MAX_MESSAGE_BYTES} bytes",
    )


def test_a_call_nested_deeper_than_orjson_writes_is_400_not_a_crash() -> None:
    # orjson reads 1024 levels but writes 254: re-encoding such a call raised TypeError (a 503, and
    # Segment sending the call again and again).
    body = b'{"a":' * (MAX_CALL_DEPTH + 1) + b"1" + b"}" * (MAX_CALL_DEPTH + 1)
    assert handled(event(body, sign(SECRET, body))) == (
        400,
        f"call 0 is nested deeper than {MAX_CALL_DEPTH} levels",
    )
    batch = b'[{"n":0},' + body + b"]"
    sink = CollectingSink()
    reply = handle_request(event(batch, sign(SECRET, batch)), secret=SECRET, max_body_bytes=10_000, sink=sink)
    assert (reply.status, reply.calls, [item.index for item in reply.rejected]) == (200, 1, [1])


def test_a_text_body_with_a_lone_surrogate_is_refused_not_a_crash() -> None:
    # Encoding such a body raised UnicodeEncodeError (a 503 and a traceback in the log).
    request = event(b"", "0" * 40) | {"body": '{"type": "identify", "x": "\ud800"}'}
    assert handled(request) == (401, "missing or wrong X-Signature")


def test_a_signed_body_that_is_not_utf8_is_400_naming_the_byte() -> None:
    body = b'{"type": "identify", "x": "\xff"}'
    reply = handle_request(
        event(body, sign(SECRET, body), b64=True), secret=SECRET, max_body_bytes=10_000, sink=CollectingSink()
    )
    assert (reply.status, reply.message, reply.detail) == (
        400,
        "the body is not UTF-8",
        "invalid start byte at byte 27",
    )


def test_a_body_that_is_not_json_says_where() -> None:
    body = b"[" * 2000 + b"]" * 2000
    response = handle_request(
        event(body, sign(SECRET, body)), secret=SECRET, max_body_bytes=10_000, sink=CollectingSink()
    ).function_url_response()
    assert orjson.loads(response["body"]) == {
        "message": "the body is not JSON",
        "detail": "depth limit exceeded: line 1 column 1026 (char 1025)",
    }


def test_the_signature_header_twice_is_401_whichever_comes_first() -> None:
    request = event(CALL) | {"headers": {"x-signature": sign(SECRET, CALL), "X-Signature": "0" * 40}}
    reply = handle_request(request, secret=SECRET, max_body_bytes=10_000, sink=CollectingSink())
    assert (reply.status, reply.detail) == (401, "X-Signature given more than once")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_the_content_type_does_not_decide(content_type: str | None) -> None:
    request = event(CALL, sign(SECRET, CALL))
    if content_type is None:
        del request["headers"]["content-type"]
    else:
        request["headers"]["content-type"] = content_type
    assert handled(request) == (200, "queued")


def test_an_answer_lists_at_most_twenty_rejections_and_counts_them_all() -> None:
    body = orjson.dumps([{"n": 0}, *range(500)])
    response = handle_request(
        event(body, sign(SECRET, body)), secret=SECRET, max_body_bytes=10_000, sink=CollectingSink()
    ).function_url_response()
    answer = orjson.loads(response["body"])
    assert (answer["accepted"], answer["rejected"], len(answer["rejections"])) == (
        1,
        500,
        MAX_LISTED_REJECTIONS,
    )
