"""Braze segment export -> BlueConic CSV: CPU per exported user and memory while converting.

Writes a gzip JSON-lines file shaped like a Braze segment export (identifiers, an alias, standard
fields, custom attributes with an array and a boolean), then streams it through the same reader
(``cdpbridge.sources.open_rows``) and writer (``write_blueconic_csv``) the export function uses, into a
sink that only counts bytes, as the S3 upload does part by part. Time is this process's CPU time.

    .venv/bin/python bench/blueconic_export_convert.py [--users 200000]
"""

from __future__ import annotations

import argparse
import gzip
import io
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from harness import machine_facts

from cdpbridge.integrations.blueconic.export import BlueConicExportConfig, write_blueconic_csv
from cdpbridge.records import RejectedRow
from cdpbridge.sources import SourceFormat, SourceSpec, open_rows

CONFIG = BlueConicExportConfig.model_validate(
    {
        "segment": "benchmark",
        "identifiers": [
            {"braze": "external_id", "column": "crm_customer_id"},
            {"braze": "user_aliases.blueconic", "column": "blueconic_profile_id"},
        ],
        "fields": [
            {"braze": "first_name", "column": "firstname"},
            {"braze": "email", "column": "email"},
            {"braze": "dob", "column": "date_of_birth"},
            {"braze": "country", "column": "country"},
            {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
            {"braze": "custom_attributes.loyalty_points", "column": "loyalty_points"},
            {"braze": "custom_attributes.interests", "column": "interests"},
            {"braze": "custom_attributes.vip", "column": "vip"},
        ],
    }
)


class CountingSink(io.RawIOBase):
    """Stands in for the S3 upload: keeps nothing, counts what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        self.bytes += size
        return size


def write_export(path: Path, users: int) -> None:
    with gzip.open(path, "wb", compresslevel=6) as handle:
        for index in range(users):
            user = {
                "external_id": f"CRM-{index:08d}",
                "user_aliases": [{"alias_name": f"bc-{index}", "alias_label": "blueconic"}],
                "first_name": ("Ana", "Ben", "Chloé")[index % 3],
                "email": f"user{index}@example.com",
                "dob": f"19{50 + index % 50}-0{1 + index % 9}-1{index % 10}",
                "country": ("DE", "FR", "US")[index % 3],
                "custom_attributes": {
                    "loyalty_tier": ("bronze", "silver", "gold")[index % 3],
                    "loyalty_points": index % 20_000,
                    "interests": ["running", "yoga"][: 1 + index % 2],
                    "vip": index % 7 == 0,
                },
            }
            handle.write(orjson.dumps(user) + b"\n")


def exported_users(path: Path) -> Iterator[dict[str, Any]]:
    with open_rows(str(path), SourceSpec(format=SourceFormat.JSONL)) as rows:
        for row in rows:
            if not isinstance(row, RejectedRow):
                yield row.values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "0.json.gz"
        write_export(path, args.users)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sink = CountingSink()
        text = io.TextIOWrapper(
            io.BufferedWriter(sink, buffer_size=1024 * 1024), encoding="utf-8", newline=""
        )
        started = time.process_time()
        counters = write_blueconic_csv(CONFIG, exported_users(path), text)
        text.flush()
        cpu = time.process_time() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        export_bytes = path.stat().st_size
    summary = {
        "benchmark": "blueconic_export_convert",
        "users": args.users,
        "rows_written": counters.rows_written,
        "export_mb": round(export_bytes / 1e6, 2),
        "csv_mb": round(sink.bytes / 1e6, 2),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_user": round(cpu / args.users * 1e6, 2),
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "machine": machine_facts(),
    }
    print(
        f"{args.users:,} users: {summary['cpu_us_per_user']} µs CPU each ({cpu:.2f} s), "
        f"{summary['export_mb']} MB gzip in, {summary['csv_mb']} MB CSV out, "
        f"peak memory grew {summary['peak_rss_growth_mb']} MB"
    )
    print(orjson.dumps(summary).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
