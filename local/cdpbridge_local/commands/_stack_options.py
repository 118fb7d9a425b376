"""Options shared by `cdpbridge local up` and `cdpbridge invoke`: which template, which parameters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdpbridge_local.stack import InvocationRecord, LocalStack

# The stack package (boto3, moto) is imported when a command runs, so that `cdpbridge --help` is quick.


def configuration_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the template or the options are wrong": one line on stderr, exit code 2."""
    from cdpbridge_local.stack import (  # noqa: PLC0415
        LocalStackError,
        TemplateParameterError,
        TemplateResolutionError,
        TemplateRuleError,
        UnroutableEventError,
    )

    return (
        LocalStackError,
        TemplateParameterError,
        TemplateResolutionError,
        TemplateRuleError,
        UnroutableEventError,
        ValueError,
        OSError,
    )


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t", "--template", type=Path, default=Path("template.yaml"), help="SAM template (template.yaml)"
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, e.g. BrazeInstance=EU-01 DropBucketName=my-drop",
    )
    parser.add_argument("--stack-name", default="cdpbridge-local", help="names resources (cdpbridge-local)")
    parser.add_argument(
        "--env-vars", type=Path, help='JSON {"Parameters": {...}, "<Function>": {...}} (sam style)'
    )
    parser.add_argument("--no-emulator", action="store_true", help="do not start the Braze emulator")


def parse_parameter_overrides(items: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"--parameter-overrides: {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


def start_stack(
    args: argparse.Namespace, *, default_parameters: Mapping[str, str] | None = None, **options: Any
) -> LocalStack:
    """The stack of the command's options; ``default_parameters`` yield to --parameter-overrides."""
    from cdpbridge_local.stack import LocalStack, read_env_vars_file  # noqa: PLC0415

    env_vars = read_env_vars_file(args.env_vars) if args.env_vars else None
    return LocalStack.start(
        args.template,
        {**(default_parameters or {}), **parse_parameter_overrides(args.parameter_overrides)},
        stack_name=args.stack_name,
        with_emulator=not args.no_emulator,
        env_vars=env_vars,
        **options,
    )


def report_configuration_error(command: str, error: BaseException) -> int:
    print(f"cdpbridge {command}: {error}", file=sys.stderr)
    return 2


def describe_invocation(record: InvocationRecord) -> str:
    """One line per invocation, as `local up` prints it."""
    start = "cold" if record.init_ms is not None else "warm"
    if record.error is not None:
        outcome = f"ERROR {record.error.get('errorType')}: {record.error.get('errorMessage')}"
    elif record.failed_message_ids:
        outcome = f"{len(record.failed_message_ids)} of {len(record.message_ids)} messages failed"
    else:
        outcome = "ok"
    source = f" from {record.source.rsplit(':', 1)[-1]}" if record.source else ""
    return f"{record.function_id} ({record.trigger}{source}, {start}, {record.duration_ms:.0f} ms): {outcome}"
