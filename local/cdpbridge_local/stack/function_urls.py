"""Lambda Function URLs on loopback: one HTTP listener per function with a ``FunctionUrlConfig``.

Each request becomes the event Lambda sends a function behind a URL (payload format 2.0) and is
invoked in the function's worker like any other invocation; the function's answer becomes the
HTTP response as Lambda would shape it (a dict with ``statusCode``, or any JSON value as a 200).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

# Content types Lambda passes as text; any other body arrives base64-encoded.
_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES: Final = ("+json", "+xml", "x-www-form-urlencoded")
# Lambda's own limit on a Function URL request body.
MAX_REQUEST_BYTES: Final = 6 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FunctionUrlSpec:
    """A function's ``FunctionUrlConfig``."""

    auth_type: str = "NONE"  # NONE or AWS_IAM
    invoke_mode: str = "BUFFERED"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str  # path and query string as received
    headers: dict[str, str]
    body: bytes
    source_ip: str


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(_TEXT_TYPES) or kind.endswith(_TEXT_SUFFIXES)


def function_url_event(request: HttpRequest, url_id: str, region: str) -> dict[str, Any]:
    """The payload format 2.0 event of one request."""
    parts = urlsplit(request.target)
    headers = {name.lower(): value for name, value in request.headers.items()}
    is_text = _is_text(headers.get("content-type", "text/plain"))
    try:
        body_text = request.body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        body_text = None
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.{region}.on.aws",
            "domainPrefix": url_id,
            "http": {
                "method": request.method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": body_text is None,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cookie" in headers:
        event["cookies"] = [cookie.strip() for cookie in headers["cookie"].split(";") if cookie.strip()]
    if request.body:
        event["body"] = body_text if body_text is not None else base64.b64encode(request.body).decode()
    return event


def http_response(response: Any, error: dict[str, Any] | None) -> HttpResponse:
    """What Lambda answers for a function's result: its statusCode/headers/body, or a JSON 200."""
    if error is not None:
        return _json_response(HTTPStatus.BAD_GATEWAY, {"Message": "Internal Server Error"})
    if isinstance(response, dict) and "statusCode" in response:
        headers = {str(name): str(value) for name, value in (response.get("headers") or {}).items()}
        body = response.get("body")
        if body is None:
            data = b""
        elif response.get("isBase64Encoded"):
            data = base64.b64decode(str(body))
        else:
            data = str(body).encode("utf-8")
        for cookie in response.get("cookies") or []:
            headers.setdefault("set-cookie", str(cookie))
        return HttpResponse(int(response["statusCode"]), headers, data)
    return _json_response(HTTPStatus.OK, response)


def _json_response(status: int, value: Any) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(value).encode("utf-8"))


Invoker = Callable[[dict[str, Any]], tuple[Any, dict[str, Any] | None]]


class FunctionUrlServer:
    """Serves one function's URL on ``host`` (an ephemeral port) until stopped."""

    def __init__(self, function_id: str, spec: FunctionUrlSpec, invoke: Invoker, *, host: str, region: str):
        self.function_id = function_id
        self.spec = spec
        self._invoke = invoke
        self._region = region
        self.url_id = uuid.uuid5(uuid.NAMESPACE_URL, function_id).hex
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"function-url-{function_id}", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def handle(self, request: HttpRequest) -> HttpResponse:
        if len(request.body) > MAX_REQUEST_BYTES:
            return _json_response(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"Message": "Request must be smaller than 6291456 bytes"}
            )
        if self.spec.auth_type == "AWS_IAM" and "authorization" not in {k.lower() for k in request.headers}:
            # SigV4 cannot be checked locally; an unsigned request is refused as Lambda would.
            return _json_response(HTTPStatus.FORBIDDEN, {"Message": "Forbidden"})
        response, error = self._invoke(function_url_event(request, self.url_id, self._region))
        return http_response(response, error)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = HttpRequest(
                    self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
                )
                try:
                    response = server.handle(request)
                except Exception:
                    logger.exception("%s: the Function URL request failed", server.function_id)
                    response = _json_response(HTTPStatus.BAD_GATEWAY, {"Message": "Internal Server Error"})
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("%s: " + format, server.function_id, *args)

        return Handler


__all__ = [
    "FunctionUrlServer",
    "FunctionUrlSpec",
    "HttpRequest",
    "HttpResponse",
    "function_url_event",
    "http_response",
]
