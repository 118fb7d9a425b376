"""`cdpbridge mapping`: check mapping configs before they reach the bucket, and print their schema.

cdpbridge mapping check config/blueconic.yaml [--columns customer_id,email,birthday,...]
cdpbridge mapping schema > schemas/mapping.schema.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cdpbridge.integrations.registry import get_integration
from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.mapping.schema import render_schema


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mapping", help="check mapping configs and print their JSON Schema", description=__doc__
    )
    actions = parser.add_subparsers(dest="mapping_action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate configs; list their problems and warnings")
    check.add_argument("configs", nargs="+", type=Path, metavar="CONFIG")
    check.add_argument(
        "--columns",
        help="comma-separated header of a file the config will read: also checks missing columns and "
        "remaining columns that shadow Braze standard fields",
    )
    check.set_defaults(handler=check_command)
    schema = actions.add_parser("schema", help="print the JSON Schema of mapping configs")
    schema.set_defaults(handler=schema_command)


def check_command(args: argparse.Namespace) -> int:
    columns = [column.strip() for column in args.columns.split(",")] if args.columns else None
    failed = False
    for path in args.configs:
        try:
            config = load_mapping(path)
            # Building the transformer checks what only the integration knows (its options).
            transformer = get_integration(config.integration).transformer(config)
        except MappingConfigError as error:
            failed = True
            print(error, file=sys.stderr)
            continue
        problems: list[str] = []
        warnings = [str(warning) for warning in config.warnings()]
        if columns is not None:
            check = transformer.check_columns(columns)
            problems = [str(error) for error in check.errors]
            warnings = [str(warning) for warning in check.warnings]
            if check.missing and not problems:
                warnings.append(f"columns the file lacks: {', '.join(check.missing)}")
        for warning in warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        if problems:
            failed = True
        else:
            identity = (
                f"identifier {config.identifier.kind}" if config.identifier else "identity from records"
            )
            print(f"{path}: ok ({len(config.fields)} fields, {identity})")
    return 1 if failed else 0


def schema_command(args: argparse.Namespace) -> int:
    sys.stdout.write(render_schema())
    return 0
