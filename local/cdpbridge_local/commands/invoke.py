"""`cdpbridge invoke FUNCTION -e EVENT.json`: invokes one function of the template once, without Docker.

Starts what the function needs (moto with the template's resources, the Braze emulator), invokes it
like `sam local invoke`, prints the function's logs on stderr and its response on stdout, then stops.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cdpbridge_local.commands._stack_options import (
    add_stack_arguments,
    configuration_errors,
    report_configuration_error,
    start_stack,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="invoke one function of the template once (a Docker-free sam local invoke)",
        description=__doc__,
    )
    parser.add_argument(
        "function", metavar="FUNCTION", help="the function's logical id, e.g. GenericImportFunction"
    )
    parser.add_argument("-e", "--event", help="event JSON file, or - for stdin (default: {})")
    parser.add_argument(
        "--put",
        action="append",
        default=[],
        metavar="KEY=FILE",
        help="put FILE into the drop bucket under KEY before invoking (repeatable), e.g. the file an "
        "S3 notification names and its mapping config",
    )
    add_stack_arguments(parser)
    parser.set_defaults(handler=invoke_command)


def read_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{source}: the event is not valid JSON: {error}") from error


def parse_puts(items: list[str]) -> list[tuple[str, Path]]:
    puts: list[tuple[str, Path]] = []
    for item in items:
        key, separator, file = item.partition("=")
        if not separator or not key or not file:
            raise ValueError(f"--put {item!r}: expected KEY=FILE")
        if not Path(file).is_file():
            raise ValueError(f"--put {item!r}: {file} is not a file")
        puts.append((key, Path(file)))
    return puts


def invoke_command(args: argparse.Namespace) -> int:
    try:
        event = read_event(args.event)
        puts = parse_puts(args.put)
        stack = start_stack(args)
    except configuration_errors() as error:
        return report_configuration_error("invoke", error)
    with stack:
        # Only the given event is delivered: the notifications these files raise stay queued.
        for key, file in puts:
            stack.put_object(key, file.read_bytes())
        try:
            record = stack.invoke_record(args.function, event)
        except configuration_errors() as error:
            return report_configuration_error("invoke", error)
    if record.logs:
        sys.stderr.write(record.logs if record.logs.endswith("\n") else record.logs + "\n")
    start = f", init {record.init_ms:.0f} ms" if record.init_ms is not None else ""
    print(
        f"REPORT RequestId: {record.request_id} Duration: {record.duration_ms:.2f} ms{start}", file=sys.stderr
    )
    if record.error is not None:
        print(json.dumps(record.error, indent=2))
        return 1
    print(json.dumps(record.response, indent=2))
    return 0
