"""The process one function runs in, like a warm Lambda execution environment.

Started by :class:`cdpbridge_local.stack.functions.FunctionWorker` as a script in isolated mode
(``python -I worker.py``), so that nothing but the standard library is imported before the handler.
It puts the function's code directory and its layers first on sys.path, imports the handler once
(the init phase), then serves invocations: one JSON line per request on ``--request-fd``, one JSON
line per reply on ``--reply-fd``. Everything the handler prints or logs is captured per invocation
and returned with the reply, as Lambda sends it to CloudWatch.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

# Lambda's runtime error types, so a local failure reads like the deployed one.
IMPORT_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MARSHAL_ERROR = "Runtime.MarshalError"


class CapturedOutput(io.TextIOBase):
    """Collects what is written between two ``take()`` calls; stands in for stdout and stderr."""

    encoding = "utf-8"

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text


class LocalLambdaContext:
    """The attributes and method of Lambda's Python context object."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name: str = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version: str = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # The Lambda runtime hands this over as the string from the environment.
        self.memory_limit_in_mb: str = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.aws_request_id: str = request["request_id"]
        self.log_group_name: str = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name: str = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_epoch_ms: int = int(request["deadline_epoch_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_epoch_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}


def _function_frames(error: BaseException) -> list[str]:
    """The traceback without the worker's and the import machinery's own frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename != __file__
        and not frame.filename.startswith("<frozen")
        and not frame.filename.endswith(("importlib/__init__.py",))
    ]
    return traceback.format_list(frames)


def _exception_error(error: BaseException) -> dict[str, Any]:
    return _error(type(error).__name__, str(error), _function_frames(error))


def _load_handler(handler: str) -> tuple[Callable[[Any, Any], Any] | None, dict[str, Any] | None]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        return None, _error(HANDLER_NOT_FOUND, f"Bad handler '{handler}': not a module.function name")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the init phase reports any import failure, as Lambda does
        message = f"Unable to import module '{module_name}': {error}"
        return None, _error(IMPORT_ERROR, message, _function_frames(error))
    function = getattr(module, function_name, None)
    if not callable(function):
        return None, _error(HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'")
    return function, None


def _send(reply: TextIO, message: dict[str, Any]) -> None:
    reply.write(json.dumps(message, separators=(",", ":")) + "\n")
    reply.flush()


def serve(code_dir: str, layer_dirs: list[str], handler: str, reply: TextIO, requests: TextIO) -> int:
    captured = CapturedOutput()
    sys.stdout = captured
    sys.stderr = captured
    # Lambda: the function's code first (LAMBDA_TASK_ROOT), then the layers (/opt/python).
    for directory in reversed([code_dir, *layer_dirs]):
        sys.path.insert(0, directory)
    os.chdir(code_dir)

    init_started = time.perf_counter()
    function, init_error = _load_handler(handler)
    init_ms = (time.perf_counter() - init_started) * 1000
    _send(reply, {"type": "init", "error": init_error, "init_ms": init_ms, "logs": captured.take()})
    if function is None:
        return 1

    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        context = LocalLambdaContext(request)
        started = time.perf_counter()
        payload: str | None = None
        error: dict[str, Any] | None = None
        try:
            result = function(request["event"], context)
        except Exception as raised:  # reported to the caller as a function error, as Lambda does
            error = _exception_error(raised)
        else:
            try:
                payload = json.dumps(result)
            except (TypeError, ValueError) as marshal_problem:
                error = _error(MARSHAL_ERROR, f"Unable to marshal response: {marshal_problem}")
        duration_ms = (time.perf_counter() - started) * 1000
        _send(
            reply,
            {
                "type": "result",
                "request_id": request["request_id"],
                "payload": payload,
                "error": error,
                "duration_ms": duration_ms,
                "logs": captured.take(),
            },
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runs one Lambda function handler for the local stack.")
    parser.add_argument("--request-fd", type=int, required=True)
    parser.add_argument("--reply-fd", type=int, required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--layer-dir", action="append", default=[])
    parser.add_argument("--handler", required=True)
    args = parser.parse_args(argv)
    with (
        os.fdopen(args.request_fd, "r", encoding="utf-8") as requests,
        os.fdopen(args.reply_fd, "w", encoding="utf-8") as reply,
    ):
        return serve(args.code_dir, args.layer_dir, args.handler, reply, requests)


if __name__ == "__main__":
    sys.exit(main())
