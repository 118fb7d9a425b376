"""The DynamoDB proxy of the chaos run: which calls are checkpoint writes, and passing calls on."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import orjson
import pytest
import requests

from cdpbridge_local.chaos.checkpoint_proxy import CheckpointKillProxy, is_checkpoint_write

CHECKPOINT = orjson.dumps(
    {"TableName": "runs", "Item": {"pk": {"S": "run#r1"}, "sk": {"S": "part#0"}, "body": {"S": "{}"}}}
)
LEDGER = orjson.dumps({"TableName": "runs", "Item": {"pk": {"S": "ledger#x"}, "sk": {"S": "b#0"}}})


def test_only_a_put_of_a_runs_checkpoint_is_a_checkpoint_write() -> None:
    assert is_checkpoint_write("DynamoDB_20120810.PutItem", CHECKPOINT)
    assert not is_checkpoint_write("DynamoDB_20120810.PutItem", LEDGER)
    assert not is_checkpoint_write("DynamoDB_20120810.UpdateItem", CHECKPOINT)
    assert not is_checkpoint_write("DynamoDB_20120810.PutItem", b"not json")


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_calls_pass_through_and_a_checkpoint_write_asks_before_and_after(echo: str) -> None:
    asked: list[str] = []

    def never_kill(point: str) -> bool:
        asked.append(point)
        return False

    with CheckpointKillProxy(never_kill) as proxy:
        proxy.target = echo
        ledger = requests.post(
            proxy.url, data=LEDGER, headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"}, timeout=10
        )
        assert (ledger.status_code, ledger.content, asked) == (200, LEDGER, [])
        checkpoint = requests.post(
            proxy.url, data=CHECKPOINT, headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"}, timeout=10
        )
        assert checkpoint.content == CHECKPOINT
        assert asked == ["checkpoint_before_write", "checkpoint_after_write"]
        assert proxy.checkpoint_writes == 1


def test_a_kill_before_the_write_leaves_the_caller_without_an_answer(echo: str) -> None:
    with CheckpointKillProxy(lambda point: point == "checkpoint_before_write") as proxy:
        proxy.target = echo
        with pytest.raises(requests.ConnectionError):
            requests.post(
                proxy.url, data=CHECKPOINT, headers={"X-Amz-Target": "DynamoDB_20120810.PutItem"}, timeout=10
            )
