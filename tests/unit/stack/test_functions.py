"""A function's worker process behaves like a Lambda execution environment."""

import json
import os
import sys
from pathlib import Path

import pytest

from cdpbridge_local.stack.functions import FunctionSpec, FunctionWorker

HANDLER_SOURCE = """
import os
import sys
import time

from shared_layer_module import LAYER_VALUE

INVOCATIONS = 0
print("init output")


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if event.get("raise"):
        raise ValueError("bad input in field x")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("unserialisable"):
        return {"value": object()}
    print("in handler")
    return {
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "mine": os.environ.get("ONLY_MINE"),
        "parent_marker": os.environ.get("CDPBRIDGE_PARENT_MARKER"),
        "cwd": os.getcwd(),
        "path_head": sys.path[:2],
        "layer": LAYER_VALUE,
    }
"""


@pytest.fixture
def function_dirs(tmp_path: Path) -> tuple[Path, Path]:
    code_dir = tmp_path / "function"
    layer_dir = tmp_path / "layer"
    code_dir.mkdir()
    layer_dir.mkdir()
    (code_dir / "app.py").write_text(HANDLER_SOURCE, encoding="utf-8")
    (layer_dir / "shared_layer_module.py").write_text('LAYER_VALUE = "from the layer"\n', encoding="utf-8")
    return code_dir, layer_dir


def make_worker(dirs: tuple[Path, Path], handler: str = "app.handler", timeout_s: int = 5) -> FunctionWorker:
    code_dir, layer_dir = dirs
    spec = FunctionSpec(
        logical_id="TestFunction",
        name="stack-TestFunction",
        arn="arn:aws:lambda:us-east-1:123456789012:function:stack-TestFunction",
        code_dir=code_dir,
        handler=handler,
        runtime="python3.12",
        timeout_s=timeout_s,
        memory_mb=256,
        layer_dirs=(layer_dir,),
        environment={},
        log_group="/aws/lambda/stack-TestFunction",
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "ONLY_MINE": "set-for-this-function",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
    }
    return FunctionWorker(spec, environment, python=sys.executable)


def test_first_invocation_is_cold_and_the_next_is_warm_in_the_same_process(function_dirs, monkeypatch):
    # Given a worker, and a variable in the parent's environment that Lambda would not have
    monkeypatch.setenv("CDPBRIDGE_PARENT_MARKER", "parent-only")
    worker = make_worker(function_dirs)
    try:
        # When it is invoked twice
        first_id, first = worker.invoke({})
        _, second = worker.invoke({})
    finally:
        worker.stop()

    # Then the first ran the init phase (its output is in the first log), the second reused it
    assert first.error is None
    assert first.init_ms is not None
    assert first.logs == "init output\nin handler\n"
    assert second.init_ms is None
    assert second.logs == "in handler\n"
    first_response = json.loads(first.payload)
    second_response = json.loads(second.payload)
    assert (first_response["invocations"], second_response["invocations"]) == (1, 2)
    assert first_response["pid"] == second_response["pid"] != os.getpid()
    # And the handler saw Lambda's context and only its own environment
    code_dir, layer_dir = function_dirs
    assert first_response["request_id"] == first_id
    assert first_response["memory"] == "256"
    assert first_response["name"] == "stack-TestFunction"
    assert first_response["arn"].endswith(":function:stack-TestFunction")
    assert 0 < first_response["remaining_ms"] <= 5000
    assert first_response["mine"] == "set-for-this-function"
    assert first_response["parent_marker"] is None
    assert first_response["cwd"] == str(code_dir)
    assert first_response["path_head"] == [str(code_dir), str(layer_dir)]
    assert first_response["layer"] == "from the layer"


def test_a_raised_exception_is_a_function_error_with_the_handlers_frames(function_dirs):
    worker = make_worker(function_dirs)
    try:
        _, reply = worker.invoke({"raise": True})
        _, after = worker.invoke({})
    finally:
        worker.stop()

    assert reply.payload is None
    assert reply.error is not None
    assert reply.error["errorType"] == "ValueError"
    assert reply.error["errorMessage"] == "bad input in field x"
    assert any("app.py" in frame for frame in reply.error["stackTrace"])
    assert not any("worker.py" in frame for frame in reply.error["stackTrace"])
    # And the environment stays warm after a handler error, as in Lambda
    assert after.error is None
    assert after.init_ms is None


def test_an_unserialisable_response_is_a_marshal_error(function_dirs):
    worker = make_worker(function_dirs)
    try:
        _, reply = worker.invoke({"unserialisable": True})
    finally:
        worker.stop()
    assert reply.error is not None
    assert reply.error["errorType"] == "Runtime.MarshalError"


def test_a_handler_running_past_its_timeout_is_stopped_and_the_next_start_is_cold(function_dirs):
    # Given a one-second timeout
    worker = make_worker(function_dirs, timeout_s=1)
    try:
        # When the handler sleeps longer
        _, timed_out = worker.invoke({"sleep": 5})
        _, next_reply = worker.invoke({})
    finally:
        worker.stop()

    # Then Lambda's timeout error is returned and a fresh environment serves the next call
    assert timed_out.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
    }
    assert next_reply.error is None
    assert next_reply.init_ms is not None


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("missing_module.handler", "Runtime.ImportModuleError", "Unable to import module 'missing_module'"),
        ("app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
        ("nodots", "Runtime.HandlerNotFound", "Bad handler 'nodots'"),
    ],
)
def test_a_handler_that_cannot_be_loaded_fails_every_invocation_like_lambda(
    function_dirs, handler, error_type, message
):
    worker = make_worker(function_dirs, handler=handler)
    try:
        _, reply = worker.invoke({})
    finally:
        worker.stop()
    assert reply.error is not None
    assert reply.error["errorType"] == error_type
    assert message in reply.error["errorMessage"]
