"""Throughput of the streaming sources: the CSV, JSON-lines and Parquet readers over 200k rows x 20
columns (the Parquet file holds the same text cells, snappy, row groups of 10,000 rows).

Prints rows/s, µs/row and peak RSS (resource.getrusage), and with ``--json PATH`` writes them as JSON.
``--large-mb N`` also streams an N MB CSV (gzip too with ``--gzip``) to show that peak memory does
not grow with the file.
Run: .venv/bin/python bench/sources_throughput.py [--rows N] [--json results.json] [--large-mb 1024]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from cdpbridge.records import SourceRow
from cdpbridge.sources import SourceSpec, open_rows, plan_byte_ranges

COLUMNS = 20


def _values(generator: random.Random, row: int) -> list[str]:
    letters = string.ascii_letters
    cells = [str(100000 + row), f"user{row}@example.com"]
    cells += ["".join(generator.choices(letters, k=generator.randint(3, 12))) for _ in range(COLUMNS - 2)]
    return cells


def write_inputs(directory: Path, rows: int) -> tuple[Path, Path]:
    generator = random.Random(20240601)
    header = ["external_id", "email"] + [f"attribute_{index}" for index in range(COLUMNS - 2)]
    csv_path = directory / "users.csv"
    jsonl_path = directory / "users.jsonl"
    with csv_path.open("w", encoding="utf-8", newline="") as csv_file, jsonl_path.open("wb") as jsonl_file:
        csv_file.write(",".join(header) + "\n")
        for row in range(rows):
            cells = _values(generator, row)
            # One quoted cell with a delimiter in it every ten rows, as real exports have.
            if row % 10 == 0:
                cells[5] = f'"{cells[5]}, {cells[6]}"'
            csv_file.write(",".join(cells) + "\n")
            jsonl_file.write(orjson.dumps(dict(zip(header, cells, strict=True))) + b"\n")
    return csv_path, jsonl_path


def write_parquet_input(directory: Path, csv_path: Path) -> Path:
    """The CSV's rows as a Parquet file of string columns, so the readers are compared on one table."""
    import pyarrow.csv as pa_csv  # noqa: PLC0415  (only this input needs pyarrow)
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = pa_csv.read_csv(csv_path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=False))
    parquet_path = directory / "users.parquet"
    # Row groups of 10,000 rows: even the quick run's file has several, so the planner has parts to cut.
    pq.write_table(table.cast(pa_schema_of_strings(table)), parquet_path, row_group_size=10_000)
    return parquet_path


def pa_schema_of_strings(table: Any) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema([(name, pa.string()) for name in table.column_names])


def measure(path: Path, spec: SourceSpec) -> dict[str, Any]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    good = 0
    total = 0
    with open_rows(str(path), spec) as rows:
        for item in rows:
            total += 1
            if isinstance(item, SourceRow):
                good += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "format": str(spec.format),
        "rows": total,
        "valid_rows": good,
        "bytes": path.stat().st_size,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(total / elapsed),
        "us_per_row": round(cpu / total * 1e6, 3),
        "mb_per_second": round(path.stat().st_size / elapsed / 1e6, 1),
    }


def measure_planner(path: Path, spec: SourceSpec, *, parts: int) -> dict[str, Any]:
    size = path.stat().st_size
    started = time.perf_counter()
    ranges = plan_byte_ranges(str(path), spec, target_bytes=max(1, size // parts))
    elapsed = time.perf_counter() - started
    return {
        "format": f"plan {spec.format}",
        "ranges": len(ranges),
        "bytes": size,
        "seconds": round(elapsed, 3),
        "mb_per_second": round(size / elapsed / 1e6, 1),
    }


def write_large_csv(path: Path, megabytes: int, *, compress: bool) -> None:
    """Repeats a block of generated rows (with quoted multi-line cells) up to ``megabytes``."""
    generator = random.Random(7)
    header = ["external_id", "email"] + [f"attribute_{index}" for index in range(COLUMNS - 2)]
    block_rows = []
    for row in range(5000):
        cells = _values(generator, row)
        if row % 50 == 0:
            cells[7] = '"first line\nsecond line, with a comma"'
        block_rows.append(",".join(cells))
    block = ("\n".join(block_rows) + "\n").encode()
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write((",".join(header) + "\n").encode())
        for _ in range(max(1, megabytes * 1024 * 1024 // len(block))):
            handle.write(block)


def measure_large(directory: Path, megabytes: int, *, compress: bool) -> dict[str, Any]:
    path = directory / ("large.csv.gz" if compress else "large.csv")
    write_large_csv(path, megabytes, compress=compress)
    result = measure(path, SourceSpec(format="csv"))
    result["file"] = path.name
    path.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--large-mb", type=int, default=0, help="also stream a CSV of this many MB")
    parser.add_argument("--gzip", action="store_true", help="gzip the large CSV")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sources-bench-") as directory:
        csv_path, jsonl_path = write_inputs(Path(directory), args.rows)
        parquet_path = write_parquet_input(Path(directory), csv_path)
        results = [
            measure(csv_path, SourceSpec(format="csv")),
            measure(jsonl_path, SourceSpec(format="jsonl")),
            measure(parquet_path, SourceSpec(format="parquet")),
        ]
        planned = [
            measure_planner(csv_path, SourceSpec(format="csv"), parts=8),
            measure_planner(jsonl_path, SourceSpec(format="jsonl"), parts=8),
            measure_planner(parquet_path, SourceSpec(format="parquet"), parts=8),
        ]
        if args.large_mb:
            results.append(measure_large(Path(directory), args.large_mb, compress=args.gzip))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for result in results:
        print(
            f"{result.get('file', result['format']):>12}: {result['rows']} rows in {result['seconds']} s = "
            f"{result['rows_per_second']:,} rows/s, {result['us_per_row']} µs/row CPU, "
            f"{result['mb_per_second']} MB/s"
        )
    for plan in planned:
        print(
            f"{plan['format']:>12}: {plan['ranges']} ranges in {plan['seconds']} s = "
            f"{plan['mb_per_second']} MB/s"
        )
    print(f"peak RSS: {peak_rss_mb:.1f} MB")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"sources": results, "planner": planned, "peak_rss_mb": round(peak_rss_mb, 1)}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
