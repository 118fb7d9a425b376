"""The chaos suite at its large size: every integration's traffic through the local stack while the
emulator injects 429s, 5xx, HTML 502s, dropped connections, slow answers and applied-but-unanswered
requests, the functions are killed mid-request and after Braze applied a request, and S3
notifications and SQS messages come twice. Prints the figures; exits 1 on any mismatch.

    .venv/bin/python bench/chaos.py [--rows 3000] [--seed 19] [--max-kills 16] [--json out.json]

The small size runs in `make test` (tests/chaos); see docs/operations.md, "Failure guarantees".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import orjson

from cdpbridge_local.chaos import LARGE, SCENARIOS, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=LARGE.rows, help="rows per import scenario")
    parser.add_argument("--seed", type=int, default=LARGE.seed)
    parser.add_argument("--max-kills", type=int, default=LARGE.max_kills)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    settings = replace(LARGE, rows=args.rows, seed=args.seed, max_kills=args.max_kills)
    report = run_chaos(
        settings, SCENARIOS, progress=lambda message: print(message, file=sys.stderr, flush=True)
    )
    print(report.summary())
    figures = {**report.figures(), "scenarios": [scenario.name for scenario in SCENARIOS]}
    print(orjson.dumps(figures).decode())
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 1 if report.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
