"""Running the emulator: in a background thread for tests (EmulatorServer) or in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from aiohttp import web

from cdpbridge_local.emulator.app import build_app
from cdpbridge_local.emulator.config import EmulatorConfig
from cdpbridge_local.emulator.core import CallerHook, Emulator

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or ():
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                port: int = sock.getsockname()[1]
                return port
    raise RuntimeError("the emulator is not listening on a TCP socket")


async def _start(emulator: Emulator, host: str, port: int) -> tuple[web.AppRunner, int]:
    # No access log: at thousands of requests a second it would cost more than the endpoint.
    runner = web.AppRunner(build_app(emulator), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner, _bound_port(runner)


class EmulatorServer:
    """The emulator on its own event loop in a daemon thread.

    ``start()`` returns once the socket listens; ``url`` is then known (port 0 picks a free port).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: EmulatorConfig | None = None) -> None:
        self.host = host
        self.port = port
        self._emulator = Emulator(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def set_caller_hook(self, hook: CallerHook | None) -> None:
        """Installs (or with None removes) the hook asked about each request's caller; see
        :class:`cdpbridge_local.emulator.core.CallerHook`. Only for a harness in this process."""
        self._emulator.caller_hook = hook

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        started = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(
                    _start(self._emulator, self.host, self.port)
                )
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
        self._thread = threading.Thread(target=run, name="braze-emulator", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the emulator did not start within {START_TIMEOUT_S} s")
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
                future.result(STOP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def _serve(
    host: str, port: int, config: EmulatorConfig | None, announce: Callable[[str], None]
) -> None:
    runner, bound_port = await _start(Emulator(config), host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopping.set)
    display_host = f"[{host}]" if ":" in host else host
    announce(f"http://{display_host}:{bound_port}")
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def serve_forever(
    host: str, port: int, config: EmulatorConfig | None = None, out: TextIO | None = None
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM; prints the URL once listening."""
    stream = out or sys.stdout

    def announce(url: str) -> None:
        print(url, file=stream, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, port, config, announce))
