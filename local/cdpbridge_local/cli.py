"""`cdpbridge`: the command line of the local tooling (emulator, local stack, invoke, run, demo, currents)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module under cdpbridge_local.commands exposes register(subparsers); imported lazily so that
# `cdpbridge --help` stays fast and one command's heavy imports never slow another down.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "demo",
    "emulator",
    "local",
    "invoke",
    "mapping",
    "currents",
    "notify",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdpbridge", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cdpbridge_local.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
