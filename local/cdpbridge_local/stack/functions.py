"""Functions of the local stack: what the template says about them, and the worker process each runs in."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdpbridge_local.stack import worker as worker_module
from cdpbridge_local.stack.function_urls import FunctionUrlSpec

# How long a function's init phase (importing the handler) may take, as in Lambda.
INIT_TIMEOUT_S = 10.0
# A reply may arrive slightly after the deadline because of pipe and scheduling latency.
_REPLY_GRACE_S = 0.5


@dataclass(frozen=True, slots=True)
class SqsTrigger:
    """An SQS event source mapping (an ``Events`` entry of ``Type: SQS``)."""

    function_id: str
    event_name: str
    queue_id: str
    queue_arn: str
    queue_url: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True
    maximum_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """An EventBridge rule (``Schedule``) or EventBridge Scheduler schedule (``ScheduleV2``)."""

    function_id: str
    event_name: str
    kind: str
    expression: str
    name: str
    arn: str
    input: str | None = None
    enabled: bool = True
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function as deployed: resolved from the template with Globals merged in."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    layer_dirs: tuple[Path, ...]
    environment: Mapping[str, str]
    log_group: str
    sqs_triggers: tuple[SqsTrigger, ...] = ()
    schedule_triggers: tuple[ScheduleTrigger, ...] = ()
    on_failure_destination: str | None = None
    maximum_retry_attempts: int = 2
    # Events of types the local stack does not deliver (e.g. Api); the function can still be invoked.
    unsupported_events: tuple[str, ...] = ()
    # FunctionUrlConfig: the stack serves the function's URL on loopback.
    function_url: FunctionUrlSpec | None = None


@dataclass(slots=True)
class InvocationRecord:
    """One invocation: what went in, what came out, and what the function logged."""

    function_id: str
    function_name: str
    request_id: str
    trigger: str  # "direct", "sqs" or "schedule"
    event: Any
    response: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    init_ms: float | None = None  # set on a cold start
    logs: str = ""
    source: str | None = None  # the queue or schedule ARN
    message_ids: tuple[str, ...] = ()
    failed_message_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed_message_ids


class FunctionError(RuntimeError):
    """The function raised (or timed out, or could not start); ``record.error`` has Lambda's error body."""

    def __init__(self, record: InvocationRecord) -> None:
        error = record.error or {}
        super().__init__(
            f"{record.function_id} failed: {error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        )
        self.record = record


@dataclass(slots=True)
class WorkerReply:
    payload: str | None
    error: dict[str, Any] | None
    duration_ms: float
    logs: str
    init_ms: float | None = None


class _LineReader:
    """Reads newline-terminated messages from a pipe, waiting at most until a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        # The writer closed the pipe (the process exited): told apart from a deadline passing.
        self.closed = False

    def read_line(self, deadline: float) -> bytes | None:
        """A line without its newline; None if the deadline passed or the writer closed the pipe."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.closed = True
                return None
            self._buffer += chunk


@dataclass(slots=True)
class _Process:
    popen: subprocess.Popen[bytes]
    requests: Any  # a binary file object writing to the worker
    replies: _LineReader
    reply_fd: int
    log_stream: str
    init_ms: float | None = None
    init_logs: str = ""


class FunctionWorker:
    """Runs one function in its own process, kept warm between invocations like a Lambda container."""

    def __init__(
        self, spec: FunctionSpec, environment: Mapping[str, str], python: str = sys.executable
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.python = python
        self._process: _Process | None = None
        self._lock = threading.Lock()
        # The process running an invocation right now (read without the lock by kill_if_busy).
        self._busy: subprocess.Popen[bytes] | None = None

    def invoke(self, event: Any, request_id: str | None = None) -> tuple[str, WorkerReply]:
        """Runs the handler once; starts (cold) or reuses (warm) the worker process."""
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            init_ms: float | None = None
            init_logs = ""
            if self._process is None or self._process.popen.poll() is not None:
                self._discard()
                started = self._start()
                if isinstance(started, WorkerReply):
                    return request_id, started
                init_ms, init_logs = started.init_ms, started.init_logs
            process = self._process
            assert process is not None
            deadline_epoch_ms = int(time.time() * 1000) + self.spec.timeout_s * 1000
            request = {
                "request_id": request_id,
                "event": event,
                "deadline_epoch_ms": deadline_epoch_ms,
                "invoked_function_arn": self.spec.arn,
            }
            try:
                process.requests.write(json.dumps(request).encode("utf-8") + b"\n")
                process.requests.flush()
            except BrokenPipeError:
                self._discard()
                return request_id, self._exit_error(init_ms, init_logs)
            self._busy = process.popen
            try:
                line = process.replies.read_line(time.monotonic() + self.spec.timeout_s + _REPLY_GRACE_S)
            finally:
                self._busy = None
            if line is None:
                # Not popen.poll(): it answers None while another thread waits on the process
                # (kill_if_busy), which would report a crash as a timeout.
                timed_out = not process.replies.closed
                self._discard()
                if not timed_out:
                    return request_id, self._exit_error(init_ms, init_logs)
                message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
                return request_id, WorkerReply(None, error, self.spec.timeout_s * 1000.0, init_logs, init_ms)
            reply = json.loads(line)
            return request_id, WorkerReply(
                payload=reply["payload"],
                error=reply["error"],
                duration_ms=float(reply["duration_ms"]),
                # Import-time output belongs to the first invocation's log, as in CloudWatch.
                logs=init_logs + reply["logs"],
                init_ms=init_ms,
            )

    def kill_if_busy(self) -> bool:
        """SIGKILLs the process if it is running an invocation, and waits until it is gone: the
        invocation then fails as a crashed Lambda does (Runtime.ExitError) and the next one starts
        a new process. Safe from any thread; a no-op (False) between invocations."""
        popen = self._busy
        if popen is None or popen.poll() is not None:
            return False
        popen.kill()
        popen.wait()
        return True

    @staticmethod
    def _exit_error(init_ms: float | None, logs: str) -> WorkerReply:
        error = {
            "errorType": "Runtime.ExitError",
            "errorMessage": "the function's process exited unexpectedly",
        }
        return WorkerReply(None, error, 0.0, logs, init_ms)

    def _start(self) -> _Process | WorkerReply:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        environment = {**self.environment, "AWS_LAMBDA_LOG_STREAM_NAME": log_stream}
        command = [
            self.python,
            "-I",  # isolated: nothing on sys.path but what the worker puts there
            str(Path(worker_module.__file__).resolve()),
            "--request-fd",
            str(request_read),
            "--reply-fd",
            str(reply_write),
            "--code-dir",
            str(self.spec.code_dir),
            "--handler",
            self.spec.handler,
        ]
        for layer_dir in self.spec.layer_dirs:
            command += ["--layer-dir", str(layer_dir)]
        started = time.perf_counter()
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                # Writes that bypass sys.stdout (native code) end up on the stack's stderr.
                stdout=sys.__stderr__ if sys.__stderr__ is not None else subprocess.DEVNULL,
                stderr=sys.__stderr__ if sys.__stderr__ is not None else subprocess.DEVNULL,
                env=environment,
                cwd=str(self.spec.code_dir),
                pass_fds=(request_read, reply_write),
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        replies = _LineReader(reply_read)
        process = _Process(popen, os.fdopen(request_write, "wb"), replies, reply_read, log_stream)
        self._process = process
        line = replies.read_line(time.monotonic() + INIT_TIMEOUT_S)
        if line is None:
            self._discard()
            error = {
                "errorType": "Runtime.InitError",
                "errorMessage": f"the init phase did not finish within {INIT_TIMEOUT_S:.0f} seconds",
            }
            return WorkerReply(None, error, 0.0, "", (time.perf_counter() - started) * 1000)
        init = json.loads(line)
        if init["error"] is not None:
            self._discard()
            return WorkerReply(None, init["error"], 0.0, init["logs"], float(init["init_ms"]))
        process.init_ms = float(init["init_ms"])
        process.init_logs = init["logs"]
        return process

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.requests.close()
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.wait()
        os.close(process.reply_fd)

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            with contextlib.suppress(OSError):
                process.requests.close()  # the worker's read loop ends: a clean exit
            try:
                process.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            os.close(process.reply_fd)


def reply_to_record(
    spec: FunctionSpec,
    request_id: str,
    reply: WorkerReply,
    *,
    trigger: str,
    event: Any,
    source: str | None = None,
) -> InvocationRecord:
    response = json.loads(reply.payload) if reply.payload is not None else None
    return InvocationRecord(
        function_id=spec.logical_id,
        function_name=spec.name,
        request_id=request_id,
        trigger=trigger,
        event=event,
        response=response,
        error=reply.error,
        duration_ms=reply.duration_ms,
        init_ms=reply.init_ms,
        logs=reply.logs,
        source=source,
    )
