"""Peak memory of the engine process on a large file: does it stay flat whatever the file size?

A demo customer CSV of --megabytes MiB (1 GiB by default; generated once into bench/data/) runs
through the engine in a child process (bench/engine_run.py), whose peak RSS (ru_maxrss) is its own.
To keep the run time reasonable the emulator (its own process) answers at once and applies no rate
limit; this row measures memory, not speed. So that the emulator's memory stays bounded too on a
file of millions of users, this script clears the emulator's profiles whenever it holds more than
--emulator-max-users (the engine never reads them back: nothing in the demo mapping needs Braze's
current values), which does not touch the engine process. `make bench` passes --narrow: a mapping of
the identifier and one attribute (NARROW_MAPPING_YAML), which halves the run's CPU time; every row
is still read, planned, sent and committed.

    .venv/bin/python bench/engine_memory.py [--megabytes 1024 | --rows N] [--narrow] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from harness import (
    DEFAULT_IN_FLIGHT,
    UNLIMITED,
    EmulatorProcess,
    EngineRun,
    count_data_rows,
    customers_file,
    customers_file_of_size,
    run_engine,
    temporary_state,
    write_json,
)

# `make bench`'s mapping for this row. The reader still parses every column of every row, and the
# engine still plans, sends and commits every user (state, ledger, requests in flight); mapping and
# digesting the other eighteen values doubles the CPU time of a run of millions of rows, while what
# it adds to the peak (larger objects in the requests in flight) does not grow with the file: row 1
# gives the peak RSS of the whole mapping.
NARROW_MAPPING_YAML = """\
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: customer_id, as: external_id}
create_missing: true
fields:
  - {column: loyalty_tier, attribute: loyalty_tier, type: string, strategy: set}
"""


class ProfileJanitor(threading.Thread):
    """Clears the emulator's profiles whenever they pass ``max_users``, every ``interval_s``."""

    def __init__(self, emulator: EmulatorProcess, max_users: int, interval_s: float = 2.0) -> None:
        super().__init__(name="emulator-profile-janitor", daemon=True)
        self.emulator = emulator
        self.max_users = max_users
        self.interval_s = interval_s
        self.clears = 0
        self.users_written = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            self._clear_if_full()

    def _clear_if_full(self) -> None:
        users = self.emulator.user_count()
        if users > self.max_users:
            self.users_written += users
            self.emulator.clear_profiles()
            self.clears += 1

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--megabytes", type=int, default=1024, help="size of the input file in MiB")
    size.add_argument(
        "--rows", type=int, help="use the N-row customer file instead of a file of a given size"
    )
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    mapping = parser.add_mutually_exclusive_group()
    mapping.add_argument(
        "--mapping", type=Path, help="mapping config (default: the customers file's mapping, every column)"
    )
    mapping.add_argument(
        "--narrow",
        action="store_true",
        help="map the identifier and one attribute (NARROW_MAPPING_YAML): half the CPU time",
    )
    parser.add_argument("--emulator-max-users", type=int, default=300_000)
    parser.add_argument("--progress-s", type=float, default=30.0)
    parser.add_argument("--profile", type=Path, help="run the engine under cProfile and write the stats here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    if args.rows:
        path = customers_file(args.rows)
        rows = count_data_rows(path)
    else:
        path, rows = customers_file_of_size(args.megabytes)
    with (
        EmulatorProcess(latency_ms=0.0, track_limit=UNLIMITED) as emulator,
        temporary_state() as state,
        tempfile.TemporaryDirectory(prefix="cdpbridge-bench-mapping-") as directory,
    ):
        mapping_path = args.mapping
        if args.narrow:
            mapping_path = Path(directory) / "narrow.yaml"
            mapping_path.write_text(NARROW_MAPPING_YAML, encoding="utf-8")
        janitor = ProfileJanitor(emulator, args.emulator_max_users)
        janitor.start()
        try:
            run = run_engine(
                EngineRun(
                    path,
                    state,
                    emulator.url,
                    in_flight=args.in_flight,
                    client_track_limit=UNLIMITED,
                    label="memory",
                    progress_s=args.progress_s,
                    expected_rows=rows,
                    profile=args.profile,
                    mapping=mapping_path,
                )
            )
        finally:
            janitor.stop()
        emulator_peak_rss = emulator.peak_rss_mb()
    result: dict[str, Any] = {
        "parameters": {
            "file_mb": run["file_mb"],
            "rows": rows,
            "latency_ms": 0,
            "track_limit": "none",
            "in_flight": args.in_flight,
            "mapping": "narrow: identifier and loyalty_tier"
            if args.narrow
            else str(args.mapping or "customers: 19 fields"),
            "emulator_profiles_cleared": janitor.clears,
            "emulator_peak_rss_mb": emulator_peak_rss,
            "note": "latency 0 and no rate limit to keep the run short: peak RSS here, not speed",
        },
        "peak_rss_mb": run["peak_rss_mb"],
        "rss_before_run_mb": run["rss_before_run_mb"],
        "rows": run["rows"],
        "seconds": run["seconds"],
        "rows_per_s": run["rows_per_s"],
        "cpu_s_per_million": run["cpu_s_per_million"],
        "requests": run["requests"],
        "finished": run["finished"],
    }
    print(
        f"memory: {run['file_mb']:,.0f} MB ({run['rows']:,} rows) in {run['seconds']:.0f} s, "
        f"peak RSS {run['peak_rss_mb']:.0f} MB (of which {run['rss_before_run_mb']:.0f} MB before the run)"
    )
    write_json(args.json, result)
    return 0 if run["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
