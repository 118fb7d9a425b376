"""`cdpbridge local up`: the template's stack on this machine (moto, the Braze emulator, the functions)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from cdpbridge_local.commands._stack_options import (
    add_stack_arguments,
    configuration_errors,
    describe_invocation,
    report_configuration_error,
    start_stack,
)

if TYPE_CHECKING:
    from cdpbridge_local.stack import InvocationRecord, LocalStack


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run the stack locally without Docker", description=__doc__)
    actions = parser.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up",
        help="start the stack, print its endpoints and deliver events until Ctrl-C",
        description="Starts moto and the Braze emulator, creates the template's resources, then delivers "
        "S3 notifications, queue messages and schedules to the functions as Lambda would, until Ctrl-C.",
    )
    add_stack_arguments(up)
    up.add_argument("--no-schedules", action="store_true", help="do not fire schedules on their clock")
    up.add_argument("--logs", action="store_true", help="print each invocation's function logs")
    up.add_argument(
        "--failed-message-visibility",
        type=int,
        metavar="SECONDS",
        help="retry failed queue messages after this long instead of the queue's visibility timeout",
    )
    up.set_defaults(handler=up_command)


def print_endpoints(stack: LocalStack) -> None:
    print(f"Local stack {stack.stack_name} is up ({stack.template.path.name}).")
    print(f"  AWS (moto):        {stack.moto_url}")
    if stack.emulator is not None:
        print(f"  Braze emulator:    {stack.emulator.url}")
    print(f"  Drop bucket:       s3://{stack.drop_bucket}/")
    for spec in stack.functions.values():
        triggers = [f"SQS {trigger.queue_url.rsplit('/', 1)[-1]}" for trigger in spec.sqs_triggers]
        triggers += [f"{trigger.kind} {trigger.expression}" for trigger in spec.schedule_triggers]
        print(f"  Function {spec.logical_id}: {', '.join(triggers) or 'invoke only'}")
    for name, value in stack.outputs().items():
        print(f"  Output {name}: {value}")
    print("Use it with the AWS CLI:")
    print(
        f"  AWS_ENDPOINT_URL={stack.moto_url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"AWS_DEFAULT_REGION={stack.region} aws s3 cp FILE s3://{stack.drop_bucket}/inbound/generic/"
    )
    print("Press Ctrl-C to stop.", flush=True)


def up_command(args: argparse.Namespace) -> int:
    show_logs: bool = args.logs

    def on_invocation(record: InvocationRecord) -> None:
        print(describe_invocation(record), flush=True)
        if show_logs and record.logs:
            sys.stdout.write(record.logs if record.logs.endswith("\n") else record.logs + "\n")
            sys.stdout.flush()

    try:
        stack = start_stack(
            args, on_invocation=on_invocation, failed_message_visibility_s=args.failed_message_visibility
        )
    except configuration_errors() as error:
        return report_configuration_error("local up", error)
    stop_requested = threading.Event()

    def request_stop(signal_number: int, _frame: object) -> None:
        stop_requested.set()

    # Ctrl-C and a plain `kill` both stop the stack cleanly (workers, emulator, moto).
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with stack:
        print_endpoints(stack)
        stack.start_background(dispatch=True, clock=not args.no_schedules)
        stop_requested.wait()
        print("\nStopping the local stack.", flush=True)
    return 0
