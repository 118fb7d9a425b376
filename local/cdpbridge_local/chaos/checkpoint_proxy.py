"""A loopback proxy in front of moto's DynamoDB that can kill the function while it writes a checkpoint.

The functions reach DynamoDB through it (AWS_ENDPOINT_URL_DYNAMODB); every call is passed on to moto
unchanged, except that a checkpoint write (PutItem of a ``run#`` item on the run-state table) or a
Currents commit (the BatchWriteItem marking events routed, or the PutItem of a file's progress on
the Currents state table) may meet a kill of the function's process: before the write reaches moto
(not written) or after it (written, but the function never learns it). Either way the message comes
back and the run must resume from what the store holds.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import requests

# Told whether to kill at a point ("checkpoint_before_write", "currents_commit_after_write", ...);
# True: killed.
KillDecision = Callable[[str], bool]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def is_checkpoint_write(target: str, body: bytes) -> bool:
    """A PutItem of a run's checkpoint (cdpbridge.state.DynamoDbCheckpointStore.save)."""
    if not target.endswith(".PutItem"):
        return False
    try:
        item = orjson.loads(body).get("Item", {})
    except (orjson.JSONDecodeError, AttributeError):
        return False
    key = item.get("pk", {}).get("S", "") if isinstance(item, dict) else ""
    return isinstance(key, str) and key.startswith("run#") and "body" in item


def _is_currents_key(attribute: object) -> bool:
    """A Currents state key: binary (cdpbridge.currents.state), an event's digest or a progress key."""
    return isinstance(attribute, dict) and isinstance(attribute.get("B"), str)


def is_currents_commit(target: str, body: bytes) -> bool:
    """A write of a Currents commit (cdpbridge.currents.state.DynamoDbCurrentsState.commit): the
    BatchWriteItem marking events routed, or the PutItem of a file's progress (key b"\\x00f...")."""
    if not target.endswith((".PutItem", ".BatchWriteItem")):
        return False
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(request, dict):
        return False
    if target.endswith(".PutItem"):
        key = request.get("Item", {}).get("pk") if isinstance(request.get("Item"), dict) else None
        if not _is_currents_key(key):
            return False
        assert isinstance(key, dict)
        return base64.b64decode(key["B"]).startswith(b"\x00f")
    for writes in (request.get("RequestItems") or {}).values():
        for write in writes if isinstance(writes, list) else ():
            item = (write.get("PutRequest") or {}).get("Item") if isinstance(write, dict) else None
            if isinstance(item, dict) and _is_currents_key(item.get("pk")) and set(item) <= {"pk", "x", "s"}:
                return True
    return False


def write_point(target: str, body: bytes) -> str | None:
    """The kill point a DynamoDB call is ("checkpoint", "currents_commit"), or None."""
    if is_checkpoint_write(target, body):
        return "checkpoint"
    if is_currents_commit(target, body):
        return "currents_commit"
    return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A caller killed mid-request resets its connection: expected here, not worth a trace."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class CheckpointKillProxy:
    """Started before the stack (its URL goes into the functions' environment); ``target`` (moto's
    URL) is set once the stack runs, before any function calls DynamoDB."""

    def __init__(self, decide: KillDecision, host: str = "127.0.0.1") -> None:
        self.target = ""
        self.decide = decide
        self.checkpoint_writes = 0
        self._in_flight = 0
        self._counter_lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.count_in_flight(1)
                try:
                    self._relay()
                except (OSError, requests.RequestException):
                    # The function was killed while we read or answered: nobody waits any more.
                    self.close_connection = True
                finally:
                    proxy.count_in_flight(-1)

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the caller died while sending: nothing to pass on
                    self.close_connection = True
                    return
                target = self.headers.get("X-Amz-Target", "")
                point = write_point(target, body)
                if point is not None:
                    proxy.checkpoint_writes += 1
                    if proxy.decide(f"{point}_before_write"):
                        self.close_connection = True
                        return
                headers = {
                    name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
                }
                answer = requests.post(proxy.target + self.path, data=body, headers=headers, timeout=60)
                if point is not None and proxy.decide(f"{point}_after_write"):
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = _QuietServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="checkpoint-proxy", daemon=True
        )

    def count_in_flight(self, change: int) -> None:
        with self._counter_lock:
            self._in_flight += change

    def wait_idle(self, timeout_s: float) -> None:
        """Waits until no DynamoDB call is in flight (e.g. ledger writes of answers already given)."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.005)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CheckpointKillProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
