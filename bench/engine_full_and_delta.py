"""A full customer file, then the next day's delta, through the engine against a Braze-like emulator.

The emulator runs in its own process with Braze's figures (300 ms per users.track request, 3,000
requests per 3 s). The engine runs each file in a child process (bench/engine_run.py) with fresh
SQLite state for the full file, kept for the delta, so CPU time and peak RSS are the engine's own.

Full file: N rows x 20 columns (demo_data, generated once into bench/data/): rows/s, requests,
request fill, CPU seconds per million rows, peak RSS.
Delta: the same users with about 10% of the values changed (write_customers_csv(generation=1,
change_share=0.1)): data points Braze billed (emulator stats) against the values that changed
(counted by diffing the two files).
Daily full file: the full file a day later with about 1% of its rows changed (``--daily-share``),
run against a copy of the full file's state: CPU seconds per million rows, rows/s, and data
points Braze billed against the values that changed.
Full file in parts: the full file again, with fresh state, split into byte ranges run by one
process per core (``--workers``, default the CPU count), as the deployed stack fans a large file
out to parallel invocations; CPU seconds are those of every part process.
Full file as Parquet: the same customers as a Parquet file with typed columns (snappy, row groups
of 50,000 rows, generated once into bench/data/), fresh state, one process: rows/s and CPU seconds
per million rows beside the CSV's (``--skip-parquet`` leaves it out).

    .venv/bin/python bench/engine_full_and_delta.py [--rows 1000000] [--in-flight 128] [--workers 2]
        [--skip-parquet] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness import (
    BRAZE_LATENCY_MS,
    BRAZE_TRACK_LIMIT,
    DEFAULT_IN_FLIGHT,
    EmulatorProcess,
    EngineRun,
    changed_values,
    customers_file,
    customers_parquet_file,
    daily_customers_file,
    rate,
    run_engine,
    temporary_state,
    write_json,
)


def measured_run(emulator: EmulatorProcess, run: EngineRun) -> dict[str, Any]:
    """The engine's own figures plus what the emulator saw during the run."""
    before = emulator.stats()
    cpu_before = emulator.cpu_seconds()
    result = run_engine(run)
    seen = emulator.stats().since(before)
    cpu_after = emulator.cpu_seconds()
    result["emulator"] = seen.to_dict()
    if cpu_before is not None and cpu_after is not None:
        result["emulator_cpu_s"] = round(cpu_after - cpu_before, 2)
    result["emulator_peak_rss_mb"] = emulator.peak_rss_mb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    parser.add_argument("--change-share", type=float, default=0.1)
    parser.add_argument("--skip-delta", action="store_true")
    parser.add_argument(
        "--daily-share",
        type=float,
        default=0.01,
        help="share of the rows changed in the daily full file (0 leaves that run out)",
    )
    parser.add_argument(
        "--skip-parquet", action="store_true", help="leave out the Parquet run of the full file"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes of the run in parts (default: the CPU count; 1 skips that run)",
    )
    parser.add_argument("--progress-s", type=float, default=15.0)
    parser.add_argument("--profile-dir", type=Path, help="run the engine under cProfile; stats go here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    full_file = customers_file(args.rows)
    delta_file = (
        None if args.skip_delta else customers_file(args.rows, generation=1, change_share=args.change_share)
    )
    daily_file = daily_customers_file(args.rows, args.daily_share) if args.daily_share > 0 else None
    parquet_file = None if args.skip_parquet else customers_parquet_file(args.rows)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)

    def profile(label: str) -> Path | None:
        return args.profile_dir / f"{label}.prof" if args.profile_dir else None

    parameters = {
        "rows": args.rows,
        "columns": 20,
        "latency_ms": BRAZE_LATENCY_MS,
        "track_limit": str(BRAZE_TRACK_LIMIT),
        "in_flight": args.in_flight,
        "state": "SQLite in a temporary directory, fresh for the full file, kept for the delta",
    }
    with EmulatorProcess() as emulator, temporary_state() as state:

        def run(file: Path, label: str, state: Path = state, workers: int = 1) -> dict[str, Any]:
            """One file through the engine; the full file and the delta share the state."""
            engine_run = EngineRun(
                file,
                state,
                emulator.url,
                in_flight=args.in_flight,
                label=label,
                progress_s=args.progress_s,
                expected_rows=args.rows,
                profile=profile(label),
                workers=workers,
            )
            return measured_run(emulator, engine_run)

        full = run(full_file, "full")
        print(
            f"  AWS per million rows: ${full['aws_cost']['usd_per_million_rows']['total']:.3f}",
            file=sys.stderr,
        )
        print(
            f"full file: {full['rows']:,} rows in {full['seconds']:.1f} s = "
            f"{full['rows_per_s']:,.0f} rows/s; "
            f"{full['requests']:,} requests, fill {full['fill_ratio']:.2%}; "
            f"{full['cpu_s_per_million']} CPU-s per million rows; peak RSS {full['peak_rss_mb']:.0f} MB"
        )
        results: dict[str, Any] = {"parameters": parameters, "full": full}
        if daily_file is not None:
            with temporary_state() as daily_state:
                # The day after the full file, on a copy of its state: the delta keeps the original.
                for suffix in ("", "-wal"):
                    if Path(f"{state}{suffix}").exists():
                        shutil.copyfile(f"{state}{suffix}", f"{daily_state}{suffix}")
                daily = run(daily_file, "daily", state=daily_state)
            changed = changed_values(full_file, daily_file)
            data_points = daily["emulator"]["data_points"]
            daily.update(
                {
                    "changed_rows_share": args.daily_share,
                    "changed_values": changed,
                    "data_points": data_points,
                    "data_points_per_changed_value": round(data_points / changed, 4) if changed else None,
                    "records_unchanged": daily["counters"].get("records_unchanged", 0),
                }
            )
            results["daily"] = daily
            print(
                f"daily full file ({args.daily_share:.0%} of rows changed): {changed:,} values changed, "
                f"{data_points:,} data points ({daily['data_points_per_changed_value']}x); "
                f"{daily['rows_per_s']:,.0f} rows/s; {daily['cpu_s_per_million']} CPU-s per million rows; "
                f"AWS ${daily['aws_cost']['usd_per_million_rows']['total']:.3f} per million rows"
            )
        if delta_file is not None:
            delta = run(delta_file, "delta")
            changed = changed_values(full_file, delta_file)
            data_points = delta["emulator"]["data_points"]
            delta.update(
                {
                    "change_share": args.change_share,
                    "changed_values": changed,
                    "data_points": data_points,
                    "data_points_per_changed_value": round(data_points / changed, 4) if changed else None,
                    "data_points_engine_counted": delta["counters"]["data_points_sent"],
                    "data_points_saved": delta["counters"]["data_points_saved"],
                    "unchanged_writes": delta["emulator"]["unchanged_writes"],
                }
            )
            results["delta"] = delta
            print(
                f"delta: {changed:,} values changed, {data_points:,} data points written "
                f"({delta['data_points_per_changed_value']}x), {delta['requests']:,} requests, "
                f"{rate(delta['rows'], delta['seconds']):,.0f} rows/s"
            )
        if args.workers > 1:
            with temporary_state() as parts_state:
                parts = run(full_file, "full_parts", state=parts_state, workers=args.workers)
            results["full_parts"] = parts
            print(
                f"full file in {parts['workers']} parts: {parts['rows']:,} rows in "
                f"{parts['seconds']:.1f} s = {parts['rows_per_s']:,.0f} rows/s; "
                f"{parts['requests']:,} requests, "
                f"fill {parts['fill_ratio']:.2%}; {parts['cpu_s_per_million']} CPU-s per million rows "
                f"(all processes); largest process {parts['peak_rss_mb']:.0f} MB"
            )
        if parquet_file is not None:
            with temporary_state() as parquet_state:
                parquet = run(parquet_file, "full_parquet", state=parquet_state)
            parquet["file_mb"] = round(parquet_file.stat().st_size / 1024 / 1024, 1)
            results["full_parquet"] = parquet
            print(
                f"full file as Parquet ({parquet['file_mb']} MB): {parquet['rows']:,} rows in "
                f"{parquet['seconds']:.1f} s = {parquet['rows_per_s']:,.0f} rows/s; "
                f"{parquet['requests']:,} requests, fill {parquet['fill_ratio']:.2%}; "
                f"{parquet['cpu_s_per_million']} CPU-s per million rows; "
                f"peak RSS {parquet['peak_rss_mb']:.0f} MB"
            )
    write_json(args.json, results)
    names = ("full", "daily", "delta", "full_parts", "full_parquet")
    runs = [results[name] for name in names if name in results]
    return 0 if all(result["finished"] for result in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
