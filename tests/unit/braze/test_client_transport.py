"""The client's HTTP transport against a scripted server on loopback: what goes on the wire, how
answers are read, and which counter each kind of broken connection lands in."""

from __future__ import annotations

import gzip
import ipaddress
import queue
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import orjson
import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cdpbridge.braze import (
    BrazeClient,
    BrazePermanentError,
    BrazeSettings,
    ExportInProgress,
    TrackCap,
    TrackRequest,
    TrackRequestBuilder,
)
from cdpbridge.braze.client import new_pool
from cdpbridge.braze.ratelimit import RateLimiter, RateLimitHeaders
from cdpbridge.braze.settings import USERS_TRACK, RateLimit

CREATED = b'{"message":"success","attributes_processed":1}'


class ThenClose(bytes):
    """Bytes to send before closing the connection."""


# What the server does with one request: answer with these bytes, or break the connection.
Action = bytes | str
CLOSE = "close"  # close the connection without answering
HANG = "hang"  # keep the connection open and never answer


def answer(status: str, body: bytes, *, content_type: str = "application/json", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode("latin-1") + body


@dataclass
class Received:
    request_line: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class ScriptedServer:
    """Answers requests with the scripted actions in order, then with 201s."""

    actions: queue.Queue[Action] = field(default_factory=queue.Queue)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def script(self, *actions: Action) -> None:
        for action in actions:
            self.actions.put(action)

    def next_action(self) -> Action:
        try:
            return self.actions.get_nowait()
        except queue.Empty:
            return answer("201 Created", CREATED)


def serve(server: ScriptedServer, reader: Any, writer: Any) -> None:
    with server.lock:
        server.connections += 1
        number = server.connections
        server.open_now += 1
        server.most_open = max(server.most_open, server.open_now)
    try:
        while True:
            request_line = reader.readline().decode("latin-1").strip()
            if not request_line:
                return
            headers: dict[str, str] = {}
            while (line := reader.readline().decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0")))
            with server.lock:
                server.received.append(Received(request_line, headers, body, number))
            action = server.next_action()
            if action == CLOSE:
                return
            if action == HANG:
                server.stop.wait()
                return
            assert isinstance(action, bytes)
            writer.write(action)
            writer.flush()
            if isinstance(action, ThenClose):
                return
    finally:
        with server.lock:
            server.open_now -= 1


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            serve(scripted, self.rfile, self.wfile)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True  # a kept-alive connection must not hold up the teardown

    with Server(("127.0.0.1", 0), Handler) as tcp:
        scripted.url = f"http://127.0.0.1:{tcp.server_address[1]}"
        thread = threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield scripted
        scripted.stop.set()
        tcp.shutdown()


def settings(url: str, **overrides: Any) -> BrazeSettings:
    values: dict[str, Any] = {
        "rest_endpoint": url,
        "timeout_s": 5.0,
        "connect_timeout_s": 2.0,
        "retry": {"max_attempts": 3, "max_elapsed_s": 30.0, "base_delay_s": 0.001, "max_delay_s": 0.001},
    }
    values.update(overrides)
    return BrazeSettings.model_validate(values)


@pytest.fixture
def make_client() -> Iterator[Any]:
    made: list[BrazeClient] = []

    def factory(url: str, **overrides: Any) -> BrazeClient:
        client = BrazeClient(settings(url, **overrides), "the-key", sleep=lambda _: None)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


def one_user(external_id: str = "u1") -> TrackRequest:
    builder = TrackRequestBuilder(TrackCap())
    builder.add("attributes", {"external_id": external_id, "plan": "gold"}, external_id)
    request = builder.flush()
    assert request is not None
    return request


def test_a_track_call_sends_the_body_and_headers_braze_expects(
    server: ScriptedServer, make_client: Any
) -> None:
    client = make_client(server.url)
    request = one_user()
    outcome = client.track(request)
    assert outcome.status == "accepted" and outcome.http_status == 201
    [sent] = server.received
    assert sent.request_line == "POST /users/track HTTP/1.1"
    assert sent.body == request.to_body()
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == "Bearer the-key"
    assert sent.headers["user-agent"] == "braze-cdp-bridge"
    assert sent.headers["accept"] == "application/json"
    assert "gzip" in sent.headers["accept-encoding"]
    assert sent.headers["content-length"] == str(len(sent.body))


def test_query_parameters_go_on_the_url_under_the_endpoints_path(
    server: ScriptedServer, make_client: Any
) -> None:
    # Given a REST endpoint behind a path prefix
    client = make_client(server.url + "/braze")
    server.script(answer("200 OK", b'{"message":"success","name":"Spring sale"}'))
    # When a GET with a parameter that needs encoding is made
    details = client.campaign_details("c 1&x")
    # Then the prefix is kept and the parameter is encoded on the URL, with no body
    assert details.name == "Spring sale"
    [sent] = server.received
    assert sent.request_line == "GET /braze/campaigns/details?campaign_id=c+1%26x HTTP/1.1"
    assert sent.body == b""


def test_a_gzip_answer_is_decoded(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    body = b'{"message":"success","name":"Zipped"}'
    server.script(answer("200 OK", gzip.compress(body), extra="Content-Encoding: gzip\r\n"))
    assert client.campaign_details("c1").name == "Zipped"


def test_a_gzip_answer_that_does_not_decode_is_a_connection_error(
    server: ScriptedServer, make_client: Any
) -> None:
    client = make_client(server.url)
    server.script(answer("201 Created", b"not gzip at all", extra="Content-Encoding: gzip\r\n"))
    outcome = client.track(one_user())
    assert outcome.status == "accepted" and outcome.attempts == 2
    stats = client.snapshot()["users.track"]
    assert stats.connection_errors == 1 and stats.timeouts == 0 and stats.retries == 1


def test_a_connection_dropped_before_the_answer_is_a_connection_error_and_is_retried(
    server: ScriptedServer, make_client: Any
) -> None:
    client = make_client(server.url)
    server.script(CLOSE)
    outcome = client.track(one_user())
    assert outcome.status == "accepted" and outcome.attempts == 2
    stats = client.snapshot()["users.track"]
    assert stats.requests == 2 and stats.connection_errors == 1 and stats.timeouts == 0
    # ... and urllib3 did not retry on its own: the server saw exactly the client's two attempts
    assert len(server.received) == 2


def test_an_answer_cut_short_is_a_connection_error(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    # Content-Length promises more than is sent before the connection closes.
    server.script(ThenClose(answer("201 Created", CREATED)[:-10]))
    outcome = client.track(one_user())
    assert outcome.status == "accepted"
    stats = client.snapshot()["users.track"]
    assert stats.connection_errors == 1 and stats.timeouts == 0


def test_a_refused_connection_is_a_connection_error_not_a_timeout(make_client: Any) -> None:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: it must not count as slowness.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}")
    outcome = client.track(one_user())
    assert outcome.status == "retries_exhausted" and outcome.attempts == 3
    assert "connection failed (NewConnectionError)" in outcome.message
    stats = client.snapshot()["users.track"]
    assert stats.connection_errors == 3 and stats.timeouts == 0 and stats.exhausted == 1


def test_no_answer_within_the_read_timeout_is_a_timeout(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url, timeout_s=0.2, retry={"max_attempts": 1})
    server.script(HANG)
    outcome = client.track(one_user())
    assert outcome.status == "retries_exhausted" and "no answer within 0.2s" in outcome.message
    stats = client.snapshot()["users.track"]
    assert stats.timeouts == 1 and stats.connection_errors == 0


def test_a_redirect_is_an_answer_not_followed(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    server.script(answer("302 Found", b"", extra="Location: http://elsewhere.invalid/users/track\r\n"))
    outcome = client.track(one_user())
    assert outcome.status == "permanent_failure" and outcome.http_status == 302
    assert len(server.received) == 1


def test_rate_limit_headers_are_read_whatever_their_case() -> None:
    # urllib3's header mapping is passed as is (no lower-cased copy): its look-ups ignore case.
    headers = urllib3.HTTPHeaderDict(
        {"x-ratelimit-limit": "7", "X-RATELIMIT-REMAINING": "0", "Retry-After": "2"}
    )
    parsed = RateLimitHeaders.parse(headers, wall_now=1_700_000_000.0)
    assert (parsed.limit, parsed.remaining, parsed.retry_after_s) == (7, 0, 2.0)


def test_connections_are_kept_alive_and_reused(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    for n in range(5):
        assert client.track(one_user(f"u{n}")).status == "accepted"
    assert server.connections == 1
    assert {sent.connection for sent in server.received} == {1}


def test_more_threads_than_connections_wait_for_one(server: ScriptedServer, make_client: Any) -> None:
    # Given a client allowed 2 connections and 8 threads sending at once
    client = make_client(server.url, max_concurrency=2)
    threads = [
        threading.Thread(target=lambda n=n: [client.track(one_user(f"t{n}-{i}")) for i in range(5)])
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every request arrived and never more than 2 connections were opened
    assert len(server.received) == 40
    assert server.connections <= 2 and server.most_open <= 2
    assert client.total_stats().connection_errors == 0


def test_https_is_verified_against_certifis_bundle() -> None:
    pool = new_pool(settings("https://rest.iad-01.braze.com", max_concurrency=12))
    assert isinstance(pool, urllib3.HTTPSConnectionPool)
    assert pool.cert_reqs == "CERT_REQUIRED"
    assert pool.ca_certs == certifi.where()
    assert pool.host == "rest.iad-01.braze.com"
    assert pool.proxy is None
    assert pool.pool is not None and pool.pool.maxsize == 12 and pool.block
    pool.close()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_a_certificate_no_trusted_ca_signed_is_refused_as_a_connection_error(
    tmp_path: Path, make_client: Any
) -> None:
    # Given an HTTPS server on 127.0.0.1 with a valid but self-signed certificate for that address
    cert_path, key_path = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    handshakes: list[str] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve_tls() -> None:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    try:
                        with context.wrap_socket(conn, server_side=True) as tls:
                            tls.recv(4096)
                            handshakes.append("completed")
                    except (ssl.SSLError, OSError):
                        handshakes.append("refused")

        thread = threading.Thread(target=serve_tls, daemon=True)
        thread.start()
        # When the client calls it
        client = make_client(f"https://127.0.0.1:{port}", retry={"max_attempts": 2})
        outcome = client.track(one_user())
        thread.join(timeout=10)
    # Then the client refused the certificate, both attempts counted as broken connections
    assert outcome.status == "retries_exhausted"
    assert "connection failed (SSLError)" in outcome.message
    assert handshakes == ["refused", "refused"]
    stats = client.snapshot()["users.track"]
    assert stats.connection_errors == 2 and stats.timeouts == 0


# -- Braze's documented answers the client must read -------------------------------------------------

MAX_INPUT = answer("400 Bad Request", b'{"message":"Max Input Length Exceeded","errors":[]}')
CREATED_ANSWER = answer("201 Created", CREATED)
UNAVAILABLE = answer("503 Service Unavailable", b'{"message":"Service Unavailable"}')


def users(count: int) -> TrackRequest:
    builder = TrackRequestBuilder(TrackCap(limit=1000))
    for n in range(count):
        builder.add("attributes", {"external_id": f"u{n}"}, f"u{n}")
    request = builder.flush()
    assert request is not None
    return request


def test_max_input_length_resends_the_request_in_two_halves(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    server.script(MAX_INPUT)
    outcome = client.track(users(10))
    assert outcome.status == "accepted" and outcome.requests == 3
    assert [len(orjson.loads(sent.body)["attributes"]) for sent in server.received] == [10, 5, 5]
    assert client.track_cap.lowered_to == 5


def test_a_half_that_cannot_be_sent_is_reported_unsent_not_failed(
    server: ScriptedServer, make_client: Any
) -> None:
    # Given the first half is taken and the second meets a Braze that stays unavailable
    client = make_client(server.url)
    server.script(MAX_INPUT, CREATED_ANSWER, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    outcome = client.track(users(4))
    # Then the first half counts as processed and the second is to be sent again, not rejected
    assert outcome.status == "partial" and outcome.errors == []
    assert outcome.unsent == ["u2", "u3"]


def test_a_body_with_only_an_error_field_gives_its_text(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    parse_error = b'{"error":"Error while parsing request body. Please check your syntax."}'
    server.script(answer("400 Bad Request", parse_error))
    with pytest.raises(BrazePermanentError, match="Error while parsing request body"):
        client.campaign_details("c1")


@pytest.mark.parametrize("text", [b'{"message":"Export already running"}', b"{}", b'{"message":"Too many"}'])
def test_a_429_with_room_left_in_the_window_is_an_export_already_running(
    server: ScriptedServer, make_client: Any, text: bytes
) -> None:
    client = make_client(server.url)
    server.script(answer("429 Too Many Requests", text, extra="X-RateLimit-Remaining: 240\r\n"))
    with pytest.raises(ExportInProgress):
        client.export_segment("s1", ["external_id"])
    assert len(server.received) == 1


def test_a_429_with_the_window_spent_is_a_rate_limit_and_is_retried(
    server: ScriptedServer, make_client: Any
) -> None:
    client = make_client(server.url)
    spent = "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 0\r\n"
    server.script(answer("429 Too Many Requests", b'{"message":"API rate limit exceeded"}', extra=spent))
    server.script(answer("201 Created", b'{"message":"success","object_prefix":"p-1","url":null}'))
    assert client.export_segment("s1", ["external_id"]).object_prefix == "p-1"
    assert len(server.received) == 2


@pytest.mark.parametrize("status", ["200 OK", "201 Created", "202 Accepted"])
def test_delete_and_export_ids_take_any_success_status(
    server: ScriptedServer, make_client: Any, status: str
) -> None:
    # Braze does not document which 2xx these two answer: every one is a success
    client = make_client(server.url)
    server.script(answer(status, b'{"deleted":1,"message":"success"}'))
    assert client.delete_users(external_ids=["u1"]).deleted == 1
    server.script(answer(status, b'{"users":[{"external_id":"u1"}],"message":"success"}'))
    assert client.export_ids(external_ids=["u1"], fields_to_export=["external_id"]).users == [
        {"external_id": "u1"}
    ]


def test_a_track_outcome_tells_braze_answer_time_from_the_rate_limit_wait(server: ScriptedServer) -> None:
    """The window of requests in flight shrinks on Braze's latency, not on the client's own pacing."""
    now = [100.0]
    waits = [0]

    def clock() -> float:
        # Each answer the server gave took Braze 0.3 s (the clock is read before and after it).
        return now[0] + 0.3 * len(server.received)

    def waiter(condition: threading.Condition, seconds: float) -> bool:
        now[0] += seconds
        waits[0] += 1
        return False

    limiter = RateLimiter(
        {USERS_TRACK: RateLimit(limit=1, window_s=3.0)}, clock=clock, wall_clock=clock, waiter=waiter
    )
    client = BrazeClient(
        settings(server.url), "the-key", rate_limiter=limiter, clock=clock, sleep=lambda _: None
    )
    try:
        first = client.track(one_user("u1"))
        second = client.track(one_user("u2"))
    finally:
        client.close()
    assert first.answer_s == pytest.approx(0.3) and first.held_s == 0.0
    # The second request waited for the next rate-limit window: held, yet answered as fast
    assert second.answer_s == pytest.approx(0.3)
    assert second.held_s > 2.0 and waits[0] >= 1
