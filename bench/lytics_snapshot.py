"""Lytics snapshots at size: how fast a feed's snapshot is diffed, and whether memory stays flat.

Three snapshots of --users users (about three audiences each) go through `cdpbridge run` in this
process against the emulator in its own process (answering at once, no rate limit: this measures the
bridge, not Braze): day 1 sends every membership, day 2 moves a tenth of the users between audiences
and leaves a twentieth out (their audiences are removed after the last row), day 3 repeats day 2
(nothing to send). Printed per day: seconds, rows a second, data points, absent pairs removed; and
the process's peak RSS, which should not grow with --users (the roster is read back a page at a time).

    .venv/bin/python bench/lytics_snapshot.py [--users 50000] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import UNLIMITED, EmulatorProcess, rate, write_json

AUDIENCES = ("lytics_all", "lytics_known", "high_value", "cart_abandoners", "lytics_new", "vip", "churn_risk")


def audiences(index: int, day: int) -> list[str]:
    chosen = ["lytics_all"] + [name for number, name in enumerate(AUDIENCES[1:], 2) if index % number == 0]
    if day > 1 and index % 10 == 3:
        # A tenth of the users move: they leave their last audience and enter vip (or leave it).
        chosen = chosen[:-1] + (["vip"] if "vip" not in chosen else [])
    return chosen


def write_snapshot(path: Path, users: int, day: int) -> int:
    pairs = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "audiences"])
        for index in range(users):
            if day > 1 and index % 20 == 7:
                continue  # absent from the snapshot: left every audience
            chosen = audiences(index, day)
            pairs += len(chosen)
            writer.writerow([f"L{index:09d}", "|".join(chosen)])
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from cdpbridge_local.cli import main as cdpbridge  # noqa: PLC0415 - after argument parsing

    mapping = (
        "version: 1\nintegration: lytics\nsource: {format: csv}\n"
        "identifier: {column: external_id, as: external_id}\n"
        "lytics: {feed: bench, existing_users: true}\n"
    )
    result: dict[str, Any] = {"users": args.users, "days": []}
    with (
        EmulatorProcess(latency_ms=0, track_limit=UNLIMITED) as emulator,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        (workdir / "lytics.yaml").write_text(mapping, encoding="utf-8")
        for day in (1, 2, 3):
            path = workdir / f"bench_2026-11-0{day}.csv"
            pairs = write_snapshot(path, args.users, min(day, 2))
            reports = workdir / f"reports-{day}"
            before = emulator.stats()
            started = time.perf_counter()
            code = cdpbridge(
                [
                    "run", str(path), "--config", str(workdir / "lytics.yaml"),
                    "--state", str(workdir / "state.sqlite3"), "--report-dir", str(reports),
                    "--braze-url", emulator.url, "--api-key", "local-dev-key", "--quiet",
                ]
            )  # fmt: skip
            seconds = time.perf_counter() - started
            if code != 0:
                print(f"day {day}: cdpbridge run exited {code}", file=sys.stderr)
                return 1
            (report_path,) = reports.rglob("*.json")
            report = json.loads(report_path.read_text())
            spent = emulator.stats().since(before).to_dict()
            day_figures = {
                "day": day,
                "rows": report["rows_read"],
                "pairs": pairs,
                "seconds": round(seconds, 2),
                "rows_per_s": rate(report["rows_read"], seconds),
                "data_points_sent": report["data_points_sent"],
                "snapshot_members_absent": report["snapshot_members_absent"],
                "emulator": spent,
            }
            result["days"].append(day_figures)
            print(
                f"day {day}: {report['rows_read']:,} rows ({pairs:,} memberships) in {seconds:.1f} s "
                f"= {day_figures['rows_per_s']:,.0f} rows/s; data points {report['data_points_sent']:,}; "
                f"absent pairs removed {report['snapshot_members_absent']:,}",
                file=sys.stderr,
            )
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS of the bridge process: {result['peak_rss_mb']} MB", file=sys.stderr)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
