"""A BlueConic-style delta: every changed profile with all of its properties, lists included.

BlueConic exports each profile that changed with every property again, its segments and interests
as whole lists written with the ``add`` strategy. The first file brings N profiles (a tier, a
points balance and two lists of 3-6 values); the next day's file holds a fifth of them again,
whole: a tenth of those moved tier, each gained one segment (the whole list sent again), a third
gained an interest too. The engine runs each file against the emulator (latency 0) with SQLite
state kept between them; the figure is the data points Braze billed for the second file against
the values that changed plus the list elements that are new.

    .venv/bin/python bench/lists_delta.py [--profiles 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import EmulatorProcess, EngineRun, TrackLimit, run_engine, temporary_state, write_json

MAPPING = """
version: 1
integration: blueconic
identifier: {column: profile_id, as: external_id}
fields:
  - {column: tier, attribute: tier}
  - {column: points, attribute: points, type: integer}
  - {column: segments, attribute: segments, strategy: add, separator: "|"}
  - {column: interests, attribute: interests, strategy: add, separator: "|"}
"""
SEGMENTS = [f"segment-{number}" for number in range(40)]
INTERESTS = [f"interest-{number}" for number in range(40)]
TIERS = ("bronze", "silver", "gold", "platinum")


def first_day(profiles: int) -> list[dict[str, Any]]:
    rows = []
    for index in range(profiles):
        rng = random.Random(index)
        rows.append(
            {
                "profile_id": f"P{index:07d}",
                "tier": rng.choice(TIERS),
                "points": str(rng.randrange(10_000)),
                "segments": rng.sample(SEGMENTS, rng.randrange(3, 7)),
                "interests": rng.sample(INTERESTS, rng.randrange(3, 7)),
            }
        )
    return rows


def next_day(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The changed profiles, whole, and how many values and new list elements they carry."""
    changed_rows = []
    changes = 0
    for index, before in enumerate(rows):
        rng = random.Random(index * 7 + 1)
        if rng.random() >= 0.2:
            continue
        row = {**before, "segments": list(before["segments"]), "interests": list(before["interests"])}
        if rng.random() < 0.1:
            row["tier"] = TIERS[(TIERS.index(row["tier"]) + 1) % len(TIERS)]
            changes += 1
        row["segments"].append(next(s for s in SEGMENTS if s not in row["segments"]))
        changes += 1
        if rng.random() < 1 / 3:
            row["interests"].append(next(i for i in INTERESTS if i not in row["interests"]))
            changes += 1
        changed_rows.append(row)
    return changed_rows, changes


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["profile_id", "tier", "points", "segments", "interests"])
        for row in rows:
            writer.writerow(
                [
                    row["profile_id"],
                    row["tier"],
                    row["points"],
                    "|".join(row["segments"]),
                    "|".join(row["interests"]),
                ]
            )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = first_day(args.profiles)
    delta_rows, changes = next_day(rows)
    resent_elements = sum(len(row["segments"]) + len(row["interests"]) for row in delta_rows)
    with (
        tempfile.TemporaryDirectory(prefix="cdpbridge-bench-lists-") as directory,
        temporary_state() as state,
    ):
        root = Path(directory)
        mapping = root / "mapping.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")
        first = write(root / "day1.csv", rows)
        second = write(root / "day2.csv", delta_rows)
        with EmulatorProcess(latency_ms=0.0, track_limit=TrackLimit(100_000, 1.0)) as emulator:

            def run(path: Path, label: str) -> tuple[dict[str, Any], int]:
                before = emulator.stats()
                result = run_engine(EngineRun(path, state, emulator.url, label=label, mapping=mapping))
                return result, emulator.stats().since(before).data_points

            _, first_points = run(first, "day1")
            delta, delta_points = run(second, "day2")
    results = {
        "parameters": {"profiles": args.profiles, "delta_profiles": len(delta_rows)},
        "first_day_data_points": first_points,
        "changed_values_and_new_elements": changes,
        "list_elements_resent": resent_elements,
        "data_points": delta_points,
        "data_points_per_change": round(delta_points / changes, 4) if changes else None,
        "cpu_s_per_million": delta["cpu_s_per_million"],
        "aws_usd_per_million_rows": delta["aws_cost"]["usd_per_million_rows"]["total"],
    }
    print(
        f"BlueConic-style delta: {len(delta_rows):,} profiles resent whole with {resent_elements:,} list "
        f"elements; {changes:,} values and new elements changed; {delta_points:,} data points "
        f"({results['data_points_per_change']}x)"
    )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
