"""One run of a CSV or Parquet file through the engine, measured from inside the process that runs it.

The other benchmarks start this script as a child process so that its CPU time and peak RSS are the
engine's alone (the emulator and the benchmark driver live in other processes). It runs the file the
way `cdpbridge run` does: run_part with the demo customer mapping (its Parquet form for a
``.parquet`` file), SQLite state (kept between runs
that share --state), a Braze client pointed at --braze-url.

    .venv/bin/python bench/engine_run.py FILE --braze-url http://127.0.0.1:PORT --state S.sqlite3
        [--in-flight 128] [--client-track-limit 3000/3] [--progress-s 10] [--profile out.prof]
        [--workers 2] [--result out.json]

Prints one JSON line: rows, seconds, rows/s, CPU seconds (and per million rows), peak RSS, the run
counters (requests, fill ratio, data points, ...).

With ``--workers N`` the file is split into N byte ranges run by N processes (as `cdpbridge run
--workers` and the deployed fan-out do); CPU seconds are then those of every process, and peak RSS
is the largest single process's (``peak_rss_total_mb`` adds them up).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import API_KEY, DEFAULT_IN_FLIGHT, TrackLimit, rate, write_json

from cdpbridge.braze import BrazeClient, BrazeSettings, RateLimit
from cdpbridge.mapping import load_mapping
from cdpbridge.sources.s3 import DEFAULT_RANGE_BYTES
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.aws_cost import aws_cost
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, CUSTOMER_PARQUET_MAPPING_YAML
from cdpbridge_local.parts import run_parts, split

# The functions' MemorySize in template.yaml (Globals): what the run's GB-seconds are priced at.
FUNCTION_MEMORY_MB = 1024


class Progress:
    """A progress line on stderr every ``interval_s`` seconds (never when the interval is 0)."""

    def __init__(self, label: str, interval_s: float, total_rows: int | None) -> None:
        self.label = label
        self.interval_s = interval_s
        self.total_rows = total_rows
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, counters: RunCounters) -> None:
        now = time.monotonic()
        if self.interval_s <= 0 or now - self.last < self.interval_s:
            return
        self.last = now
        elapsed = now - self.started
        share = f" ({counters.rows_read / self.total_rows:.0%})" if self.total_rows else ""
        print(
            f"  [{self.label}] {counters.rows_read:,} rows{share} in {elapsed:.0f} s, "
            f"{counters.rows_read / elapsed:,.0f} rows/s, {counters.requests:,} requests, "
            f"peak RSS {peak_rss_mb():.0f} MB",
            file=sys.stderr,
            flush=True,
        )


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    # ru_maxrss is in kilobytes on Linux (for RUSAGE_CHILDREN: the largest child's).
    return resource.getrusage(who).ru_maxrss / 1024


def children_cpu_s() -> float:
    """CPU seconds of the child processes that have ended (the part processes of a --workers run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_services(args: argparse.Namespace, reports: Path) -> JobServices:
    settings = BrazeSettings(
        rest_endpoint=args.braze_url,
        max_concurrency=args.in_flight,
        rate_limits={
            "users.track": RateLimit(
                limit=args.client_track_limit.limit, window_s=args.client_track_limit.window_s
            )
        },
    )
    return JobServices(
        client=BrazeClient(settings, API_KEY),
        field_state=SqliteFieldStateStore(args.state),
        ledger=SqliteSendLedger(args.state),
        checkpoints=SqliteCheckpointStore(args.state),
        artifacts=LocalArtifactStore(reports),
        options=EngineOptions(
            workspace="bench",
            track_cap=settings.track_cap,
            in_flight=args.in_flight,
            full_refresh=args.full_refresh,
        ),
        reports_prefix="",
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    path: Path = args.file
    if args.mapping is not None:
        mapping = load_mapping(args.mapping.read_text(encoding="utf-8"))
    else:
        mapping = load_mapping(
            CUSTOMER_PARQUET_MAPPING_YAML if path.suffix == ".parquet" else CUSTOMER_MAPPING_YAML
        )
    stat = path.stat()
    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-reports-") as reports:
        services = build_services(args, Path(reports))
        started_at = datetime.now(UTC)
        request = JobRequest(
            integration=mapping.integration,
            location=str(path),
            version=f"{stat.st_size}-{stat.st_mtime_ns}",
            run_id=f"bench-{args.label}-{started_at:%Y%m%dT%H%M%S%f}",
            started_at=started_at,
            mapping=mapping,
        )
        progress = Progress(args.label, args.progress_s, args.expected_rows)
        gc.collect()
        rss_before = peak_rss_mb()
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = time.process_time()
        main_thread_before = time.thread_time()
        wall_before = time.perf_counter()
        children_before = children_cpu_s()
        outcome: PartOutcome
        ranges = split(request, args.workers) if args.workers > 1 else []
        if len(ranges) > 1:
            factory = functools.partial(build_services, args, Path(reports))
            outcome = run_parts(request, ranges, factory, progress=progress)
        elif args.profile:
            profiler = cProfile.Profile()
            outcome = profiler.runcall(run_part, request, services, progress=progress)
            profiler.dump_stats(args.profile)
        else:
            outcome = run_part(request, services, progress=progress)
        seconds = time.perf_counter() - wall_before
        parts_cpu_s = children_cpu_s() - children_before
        cpu_s = time.process_time() - cpu_before + parts_cpu_s
        # The main thread reads, maps, plans and commits; the HTTP workers have the rest.
        main_thread_cpu_s = time.thread_time() - main_thread_before
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        services.field_state.close()
        if services.client is not None:
            services.client.close()
    counters = outcome.counters
    rows = counters.rows_read
    # Read from S3 as deployed, the file would take one ranged GET per range.
    priced = RunCounters.from_dict(counters.to_dict())
    priced.s3_get_requests += -(-stat.st_size // DEFAULT_RANGE_BYTES)
    return {
        "label": args.label,
        "file": path.name,
        "file_mb": round(stat.st_size / 1024 / 1024, 1),
        "finished": outcome.finished,
        "aborted_reason": outcome.aborted_reason,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": rate(rows, seconds),
        "cpu_s": round(cpu_s, 3),
        "cpu_main_thread_s": round(main_thread_cpu_s, 3) if len(ranges) < 2 else None,
        "workers": max(1, len(ranges)),
        "cpu_parts_s": round(parts_cpu_s, 3),
        "cpu_user_s": round(usage_after.ru_utime - usage_before.ru_utime, 3),
        "cpu_system_s": round(usage_after.ru_stime - usage_before.ru_stime, 3),
        "cpu_s_per_million": round(cpu_s / rows * 1e6, 2) if rows else None,
        "peak_rss_mb": round(max(peak_rss_mb(), peak_rss_mb(resource.RUSAGE_CHILDREN)), 1),
        "peak_rss_total_mb": round(peak_rss_mb() + len(ranges) * peak_rss_mb(resource.RUSAGE_CHILDREN), 1),
        "rss_before_run_mb": round(rss_before, 1),
        "in_flight": args.in_flight,
        "client_track_limit": str(args.client_track_limit),
        "requests": counters.requests,
        "fill_ratio": counters.fill_ratio,
        "counters": counters.to_dict(),
        "aws_cost": aws_cost(priced, FUNCTION_MEMORY_MB),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--braze-url", required=True)
    parser.add_argument("--state", type=Path, required=True, help="SQLite state file (kept between runs)")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    parser.add_argument("--client-track-limit", type=TrackLimit.parse, default=TrackLimit(3000, 3.0))
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--mapping", type=Path, help="mapping config (default: the customers file's)")
    parser.add_argument("--label", default="run")
    parser.add_argument("--progress-s", type=float, default=0.0, help="progress line interval (0: none)")
    parser.add_argument("--expected-rows", type=int, help="rows in the file, for the progress share")
    parser.add_argument("--profile", type=Path, help="run under cProfile and write the stats here")
    parser.add_argument("--result", type=Path, help="also write the result JSON here")
    parser.add_argument("--workers", type=int, default=1, help="byte-range parts run by this many processes")
    args = parser.parse_args()
    if not args.file.is_file():
        parser.error(f"{args.file}: no such file")
    result = measure(args)
    # As a child of another benchmark the result goes to the file only, keeping the parent's output short.
    write_json(args.result, result, echo=args.result is None)
    return 0 if result["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
