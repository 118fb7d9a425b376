"""How close the engine runs to the Braze rate limit when the limit is what binds.

The emulator (its own process) answers users.track after 300 ms and admits only --limit requests per
window: 150 per 3 s by default, a twentieth of Braze's usual limit, because one engine process on a
2-core machine sends little more than 300 per 3 s on its own, and the limit must bind, not the CPU.
The client is told the same limit, as BRAZE_RATE_LIMITS tells a deployment. A run of N rows cannot
finish faster than the bound N / (75 x R) seconds, R being the limit in requests per second;
share_of_bound = bound_seconds / seconds (1.0 = at the limit; a little more is possible, because the
first window, aligned to the clock, is already open when the run starts).

    .venv/bin/python bench/rate_limit_bound.py [--rows 200000] [--limit 150/3] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import (
    BRAZE_LATENCY_MS,
    DEFAULT_IN_FLIGHT,
    OBJECTS_PER_REQUEST,
    EmulatorProcess,
    EngineRun,
    TrackLimit,
    customers_file,
    run_engine,
    temporary_state,
    write_json,
)


def bound_seconds(rows: int, limit: TrackLimit) -> float:
    return rows / (OBJECTS_PER_REQUEST * limit.per_second)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--limit", type=TrackLimit.parse, default=TrackLimit(150, 3.0), help="e.g. 150/3")
    parser.add_argument("--latency-ms", type=float, default=BRAZE_LATENCY_MS)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    parser.add_argument(
        "--client-unaware",
        action="store_true",
        help="leave the client at Braze's default limit: it must learn the real one from 429s and headers",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    path = customers_file(args.rows)
    client_limit = TrackLimit(3000, 3.0) if args.client_unaware else args.limit
    with (
        EmulatorProcess(latency_ms=args.latency_ms, track_limit=args.limit) as emulator,
        temporary_state() as state,
    ):
        before = emulator.stats()
        run = run_engine(
            EngineRun(
                path,
                state,
                emulator.url,
                in_flight=args.in_flight,
                client_track_limit=client_limit,
                label="bound",
                progress_s=10,
                expected_rows=args.rows,
            )
        )
        seen = emulator.stats().since(before)
    bound = bound_seconds(run["rows"], args.limit)
    result: dict[str, Any] = {
        "parameters": {
            "rows": args.rows,
            "track_limit": str(args.limit),
            "requests_per_s": args.limit.per_second,
            "latency_ms": args.latency_ms,
            "in_flight": args.in_flight,
            "client_track_limit": str(client_limit),
        },
        "rows": run["rows"],
        "seconds": run["seconds"],
        "bound_seconds": round(bound, 3),
        "share_of_bound": round(bound / run["seconds"], 4) if run["seconds"] else None,
        "requests": run["requests"],
        "requests_per_s": round(run["requests"] / run["seconds"], 1) if run["seconds"] else None,
        "rate_limited_429": seen.track_rate_limited,
        "retries": run["counters"]["retries"],
        "fill_ratio": run["fill_ratio"],
        "finished": run["finished"],
    }
    print(
        f"rate-limit bound: {result['rows']:,} rows in {result['seconds']:.1f} s against a bound of "
        f"{bound:.1f} s at {args.limit} = {result['share_of_bound']:.1%} of the bound; "
        f"{result['rate_limited_429']} answers were 429"
    )
    write_json(args.json, result)
    return 0 if run["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
