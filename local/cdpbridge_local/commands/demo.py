"""`cdpbridge demo`: the main job end to end on loopback, with numbers a person can check."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the main job end to end on the embedded local stack")
    parser.add_argument("--users", type=int, default=5_000, help="customers in the generated file (5,000)")
    parser.add_argument(
        "--change-share", type=float, default=0.1, help="share of values changed in the delta"
    )
    parser.add_argument("--latency-ms", type=int, default=50, help="emulated Braze latency per request")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from cdpbridge_local.cli import main  # noqa: PLC0415 - keeps --help fast
    from cdpbridge_local.emulator import EmulatorServer  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="cdpbridge-demo-") as workdir, EmulatorServer() as emulator:
        work = Path(workdir)
        admin = requests.Session()
        admin.put(f"{emulator.url}/_emulator/config", json={"latency_ms": args.latency_ms}, timeout=10)
        mapping = work / "customers.yaml"
        mapping.write_text(CUSTOMER_MAPPING_YAML, encoding="utf-8")
        first = write_customers_csv(work / "customers-day1.csv", args.users)
        second = write_customers_csv(
            work / "customers-day2.csv", args.users, generation=1, change_share=args.change_share
        )
        print(f"Braze emulator on {emulator.url} ({args.latency_ms} ms per request)\n")
        for title, path in (
            ("Day 1: full file", first),
            ("Day 2: the same users, some values changed", second),
        ):
            print(f"== {title}: {path.name}, {args.users:,} rows")
            started = time.monotonic()
            code = main(
                [
                    "run",
                    str(path),
                    "--config",
                    str(mapping),
                    "--braze-url",
                    emulator.url,
                    "--api-key",
                    "local-dev-key",
                    "--state",
                    str(work / "state.sqlite3"),
                    "--report-dir",
                    str(work / "reports"),
                    "--quiet",
                ]
            )
            if code:
                return code
            stats = admin.get(f"{emulator.url}/_emulator/stats", timeout=10).json()
            count = admin.get(f"{emulator.url}/_emulator/users", params={"count": 1}, timeout=10).json()
            print(
                f"-- {time.monotonic() - started:.1f} s; the emulator now holds {count['count']:,} profiles, "
                f"{stats['data_points']:,} data points billed in total\n"
            )
        sample = admin.get(f"{emulator.url}/_emulator/users/C00000042", timeout=10).json()
        print("One profile as Braze holds it (C00000042):")
        for name, value in sorted(sample.get("attributes", {}).items()):
            print(f"  {name:<20} {value}")
    return 0
