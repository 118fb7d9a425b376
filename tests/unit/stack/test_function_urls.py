"""Function URLs on loopback: requests into payload format 2.0 events, answers into HTTP responses."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from cdpbridge_local.stack.function_urls import (
    FunctionUrlServer,
    FunctionUrlSpec,
    HttpRequest,
    function_url_event,
    http_response,
)


def request(body: bytes, content_type: str = "application/json", target: str = "/hook?a=1") -> HttpRequest:
    headers = {"Content-Type": content_type, "X-Signature": "abc", "Cookie": "c1=1; c2=2"}
    return HttpRequest("POST", target, headers, body, "127.0.0.1")


def test_a_json_request_becomes_a_version_2_event_with_a_text_body() -> None:
    event = function_url_event(request(b'{"a": 1}'), "urlid", "eu-west-1")
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/hook", "a=1")
    assert event["queryStringParameters"] == {"a": "1"}
    assert event["headers"]["x-signature"] == "abc"  # header names lower-cased, as Lambda does
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainName"] == "urlid.lambda-url.eu-west-1.on.aws"
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)


def test_a_binary_request_body_arrives_base64_encoded() -> None:
    event = function_url_event(request(b"\x00\x01", "application/octet-stream"), "urlid", "us-east-1")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01"


def test_the_functions_answer_becomes_the_http_response() -> None:
    shaped = http_response(
        {"statusCode": 401, "headers": {"content-type": "application/json"}, "body": "{}"}, None
    )
    assert (shaped.status, shaped.headers, shaped.body) == (401, {"content-type": "application/json"}, b"{}")
    plain = http_response({"ok": True}, None)
    assert (plain.status, plain.body) == (200, b'{"ok": true}')
    encoded = http_response(
        {"statusCode": 200, "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True}, None
    )
    assert encoded.body == b"\xff"
    failed = http_response(None, {"errorType": "Boom"})
    assert failed.status == 502


@pytest.mark.parametrize(("auth_type", "status"), [("NONE", 200), ("AWS_IAM", 403)])
def test_the_server_invokes_the_function_for_each_request(auth_type: str, status: int) -> None:
    seen: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        seen.append(event)
        return {"statusCode": 200, "body": event["body"]}, None

    server = FunctionUrlServer(
        "Hook", FunctionUrlSpec(auth_type), invoke, host="127.0.0.1", region="us-east-1"
    )
    server.start()
    try:
        response = requests.post(server.url + "path", data=b'{"x": 1}', timeout=10)
    finally:
        server.stop()
    assert response.status_code == status
    if status == 200:
        assert response.content == b'{"x": 1}'
        assert seen[0]["rawPath"] == "/path"
    else:
        assert seen == []  # an unsigned request never reaches an AWS_IAM function
