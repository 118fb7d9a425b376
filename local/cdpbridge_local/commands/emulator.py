"""`cdpbridge emulator`: run the Braze REST emulator in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from cdpbridge_local.emulator import EmulatorConfig, serve_forever
from cdpbridge_local.emulator.config import RATE_LIMIT_FAMILIES

# Stands in for "no rate limit": far above what one machine can send in a window.
UNLIMITED_REQUESTS = 1_000_000_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run the Braze REST emulator",
        description="Serve a local Braze REST API (admin API under /_emulator). Prints the URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every Braze call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected faults")
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="lift every rate limit (for capacity benchmarks)"
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    changes: dict[str, Any] = {"latency_ms": args.latency_ms, "seed": args.seed}
    if args.no_rate_limits:
        changes["rate_limits"] = {family: {"limit": UNLIMITED_REQUESTS} for family in RATE_LIMIT_FAMILIES}
    return EmulatorConfig().merged_with(changes)


def run(args: argparse.Namespace) -> int:
    if args.port < 0 or args.port > 65535:
        raise SystemExit(f"--port must be 0-65535, got {args.port}")
    serve_forever(args.host, args.port, config_from_args(args))
    return 0
