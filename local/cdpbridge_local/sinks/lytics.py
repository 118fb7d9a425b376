"""A Lytics collect API on loopback: ``POST /collect/json/<stream>`` with the account's API token.

It keeps every batch it accepted (stream, query and events) for tests and the local stack to read,
refuses a missing or wrong token with 401 as Lytics does, a body that is not a JSON object or
array of objects with 400, and can be told to answer the next requests with an error status
(``fail_next``, ``fail_after``), so that retries and resumption are tested over real HTTP.

    GET  /_sink/received   every accepted batch, as JSON
    POST /_sink/reset      forgets them
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class LyticsBatch:
    stream: str
    query: dict[str, str]
    events: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "query": self.query, "events": self.events}


@dataclass
class LyticsSink:
    """What the sink accepted and how it answers; shared by the server thread and its callers."""

    token: str
    batches: list[LyticsBatch] = field(default_factory=list)
    # Every collect request, accepted or not, and those refused for their token.
    requests: int = 0
    refused: int = 0
    _failures: list[int] = field(default_factory=list)
    # After this many more accepted batches every request fails with _outage_status (None: never).
    _accept_budget: int | None = None
    _outage_status: int = 503
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next ``count`` well-authenticated requests get ``status`` instead of being accepted."""
        with self._lock:
            self._failures.extend([status] * count)

    def fail_after(self, batches: int, status: int = 503) -> None:
        """Accepts ``batches`` more batches, then answers every request with ``status`` (an outage)."""
        with self._lock:
            self._accept_budget = batches
            self._outage_status = status

    def events(self, stream: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                event for batch in self.batches if stream in (None, batch.stream) for event in batch.events
            ]

    def reset(self) -> None:
        with self._lock:
            self.batches.clear()
            self._failures.clear()
            self._accept_budget = None
            self.requests = 0
            self.refused = 0

    def _next_failure(self) -> int | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            if self._accept_budget is not None:
                if self._accept_budget <= 0:
                    return self._outage_status
                self._accept_budget -= 1
            return None

    def _accept(self, batch: LyticsBatch) -> None:
        with self._lock:
            self.batches.append(batch)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message}, status=status)


def build_app(sink: LyticsSink) -> web.Application:
    async def collect(request: web.Request) -> web.Response:
        sink.requests += 1
        if request.headers.get("Authorization", "") != sink.token:
            sink.refused += 1
            return _error(401, "Unauthorized: invalid or missing API token")
        failure = sink._next_failure()
        if failure is not None:
            return _error(failure, "injected failure")
        try:
            loaded = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        events = loaded if isinstance(loaded, list) else [loaded]
        if not events or not all(isinstance(event, dict) for event in events):
            return _error(400, "body must be a JSON object or a non-empty array of objects")
        sink._accept(LyticsBatch(request.match_info["stream"], dict(request.query), events))
        return web.json_response({"status": 200, "message": "success", "data": {"count": len(events)}})

    async def received(_: web.Request) -> web.Response:
        body = orjson.dumps([batch.to_dict() for batch in list(sink.batches)])
        return web.Response(body=body, content_type="application/json")

    async def reset(_: web.Request) -> web.Response:
        sink.reset()
        return web.json_response({"reset": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/collect/json/{stream}", collect)
    app.router.add_get("/_sink/received", received)
    app.router.add_post("/_sink/reset", reset)
    return app


class LyticsSinkServer:
    """The sink on its own event loop in a daemon thread; ``url`` is known once ``start()`` returns."""

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sink = LyticsSink(token)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the Lytics sink is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    async def _start(self) -> None:
        runner = web.AppRunner(build_app(self.sink), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        for candidate in runner.sites:
            server = getattr(candidate, "_server", None)
            for sock in getattr(server, "sockets", None) or ():
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    self.port = sock.getsockname()[1]

    def start(self) -> LyticsSinkServer:
        if self._thread is not None:
            raise RuntimeError("the Lytics sink is already running")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as error:  # reported to the caller of start()
                failure.append(error)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="lytics-sink", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the Lytics sink did not start within {START_TIMEOUT_S} s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            with contextlib.suppress(Exception):
                future.result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> LyticsSinkServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
