"""`cdpbridge local up`: the template's stack on this machine (moto, the Braze emulator, the functions,
and a Lytics sink in place of Lytics when Currents is on)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdpbridge_local.commands._stack_options import (
    add_stack_arguments,
    configuration_errors,
    describe_invocation,
    parse_parameter_overrides,
    report_configuration_error,
    start_stack,
)

if TYPE_CHECKING:
    from cdpbridge_local.sinks import LyticsSinkServer
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
    up.add_argument(
        "--sam-env-vars",
        type=Path,
        metavar="PATH",
        help="write the `sam local invoke/start-lambda --env-vars` file that points the functions SAM CLI "
        "runs in Docker at this stack (through --sam-host)",
    )
    up.add_argument(
        "--sam-host",
        metavar="HOST",
        help="how SAM CLI's containers reach this machine, in --sam-env-vars (host.docker.internal)",
    )
    up.add_argument(
        "--endpoints-file",
        type=Path,
        metavar="PATH",
        help='write {"braze_url", "s3_endpoint", "bucket", "function_urls": {"<LogicalId>": url}} as JSON '
        "once the stack is up, so a script can drive it",
    )
    up.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address moto and the emulator listen on (127.0.0.1; 0.0.0.0 lets containers reach them "
        "where host.docker.internal is not the loopback, as on Linux Docker Engine)",
    )
    up.add_argument(
        "--no-lytics-sink",
        action="store_true",
        help="with EnableCurrents=true, do not start the local Lytics sink that stands in for Lytics",
    )
    up.set_defaults(handler=up_command)


# Secrets the stack creates whose local value may come from the environment (logical id -> variable):
# a script that signs webhook requests needs to know the secret the webhook checks.
SECRETS_FROM_ENVIRONMENT: dict[str, str] = {"SegmentWebhookSecret": "SEGMENT_WEBHOOK_SECRET"}


def secret_values_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        logical_id: environ[variable]
        for logical_id, variable in SECRETS_FROM_ENVIRONMENT.items()
        if environ.get(variable)
    }


def endpoints(stack: LocalStack) -> dict[str, Any]:
    """What a script needs to drive the running stack."""
    return {
        "braze_url": stack.emulator.url if stack.emulator is not None else None,
        "s3_endpoint": stack.moto_url,
        "bucket": stack.drop_bucket,
        "function_urls": stack.function_urls,
    }


def lytics_sink_wanted(args: argparse.Namespace) -> bool:
    """Currents is on and its Lytics API and token are left to the stack: a local sink stands in
    for Lytics, so that the lytics route can be tried (real Lytics is not reachable locally)."""
    if args.no_lytics_sink:
        return False
    from cdpbridge_local.stack import SamTemplate  # noqa: PLC0415 - loaded with the stack

    overrides = parse_parameter_overrides(args.parameter_overrides)
    if "LyticsUrl" in overrides or overrides.get("LyticsTokenSecret"):
        return False
    values = SamTemplate.load(args.template).parameter_values(overrides)
    return str(values.get("EnableCurrents", "false")) == "true"


def start_lytics_sink(host: str) -> LyticsSinkServer:
    """A Lytics collect API on loopback with a fresh token (the stack's created secret holds it)."""
    from cdpbridge_local.sinks import LyticsSinkServer  # noqa: PLC0415

    return LyticsSinkServer(secrets.token_urlsafe(24), host=host).start()


def write_json_file(path: Path, document: Any) -> None:
    """Written whole then renamed, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def write_sam_env_vars(stack: LocalStack, path: Path, host: str) -> None:
    """Writes the --env-vars file."""
    write_json_file(path, stack.sam_env_vars(host))


def print_endpoints(stack: LocalStack, lytics_sink: LyticsSinkServer | None = None) -> None:
    print(f"Local stack {stack.stack_name} is up ({stack.template.path.name}).")
    print(f"  AWS (moto):        {stack.moto_url}")
    if stack.emulator is not None:
        print(f"  Braze emulator:    {stack.emulator.url}")
    if lytics_sink is not None:
        print(
            f"  Lytics sink:       {lytics_sink.url} (Currents' lytics route posts here with the token "
            f"in LyticsTokenSecretResource; GET {lytics_sink.url}/_sink/received lists what came)"
        )
    print(f"  Drop bucket:       s3://{stack.drop_bucket}/")
    for spec in stack.functions.values():
        triggers = [f"SQS {trigger.queue_url.rsplit('/', 1)[-1]}" for trigger in spec.sqs_triggers]
        triggers += [f"{trigger.kind} {trigger.expression}" for trigger in spec.schedule_triggers]
        print(f"  Function {spec.logical_id}: {', '.join(triggers) or 'invoke only'}")
    for logical_id, url in stack.function_urls.items():
        print(f"  Function URL {logical_id}: {url}")
    for name, value in stack.outputs().items():
        print(f"  Output {name}: {value}")
    print("Use it with the AWS CLI:")
    print(
        f"  AWS_ENDPOINT_URL={stack.moto_url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        f"AWS_DEFAULT_REGION={stack.region} aws s3 cp FILE s3://{stack.drop_bucket}/inbound/generic/"
    )
    print("Press Ctrl-C to stop.", flush=True)


def print_sam_commands(stack: LocalStack, env_vars_path: Path) -> None:
    print(f"SAM CLI environment file: {env_vars_path} (after `sam build`, with Docker):")
    print(
        "  sam local invoke GenericImportFunction -e events/generic_import_s3_sqs.json "
        f"--env-vars {env_vars_path} --region {stack.region}"
    )
    print(f"  sam local start-lambda --env-vars {env_vars_path} --region {stack.region}")


def up_command(args: argparse.Namespace) -> int:
    show_logs: bool = args.logs

    def on_invocation(record: InvocationRecord) -> None:
        print(describe_invocation(record), flush=True)
        if show_logs and record.logs:
            sys.stdout.write(record.logs if record.logs.endswith("\n") else record.logs + "\n")
            sys.stdout.flush()

    lytics_sink: LyticsSinkServer | None = None
    try:
        sink_parameters: dict[str, str] = {}
        sink_secrets: dict[str, str] = {}
        if lytics_sink_wanted(args):
            lytics_sink = start_lytics_sink(args.bind)
            sink_parameters = {"LyticsUrl": lytics_sink.url}
            sink_secrets = {"LyticsTokenSecretResource": lytics_sink.sink.token}
        stack = start_stack(
            args,
            default_parameters=sink_parameters,
            secret_values={**sink_secrets, **secret_values_from_environment(os.environ)},
            on_invocation=on_invocation,
            failed_message_visibility_s=args.failed_message_visibility,
            host=args.bind,
        )
    except configuration_errors() as error:
        if lytics_sink is not None:
            lytics_sink.stop()
        return report_configuration_error("local up", error)
    from cdpbridge_local.stack import DOCKER_HOST_ALIAS  # noqa: PLC0415 - loaded with the stack

    try:
        if args.sam_env_vars is not None:
            write_sam_env_vars(stack, args.sam_env_vars, args.sam_host or DOCKER_HOST_ALIAS)
        if args.endpoints_file is not None:
            write_json_file(args.endpoints_file, endpoints(stack))
    except OSError as error:
        stack.stop()
        if lytics_sink is not None:
            lytics_sink.stop()
        return report_configuration_error("local up", error)
    stop_requested = threading.Event()

    def request_stop(signal_number: int, _frame: object) -> None:
        stop_requested.set()

    # Ctrl-C and a plain `kill` both stop the stack cleanly (workers, emulator, moto).
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with stack:
        print_endpoints(stack, lytics_sink)
        if args.sam_env_vars is not None:
            print_sam_commands(stack, args.sam_env_vars)
        stack.start_background(dispatch=True, clock=not args.no_schedules)
        stop_requested.wait()
        print("\nStopping the local stack.", flush=True)
    if lytics_sink is not None:
        lytics_sink.stop()
    return 0
