"""The common approach to a CSV import into Braze, as a yardstick for the engine.

Written to behave like Braze's own "User Attribute CSV to Braze Ingestion" Lambda and the scripts
modelled on it: csv.DictReader, one users.track request per 75 rows, 20 threads, every attribute of
every row sent (no dedupe, so every value is billed again on every run), values cast from text the
simple way (integers, decimals, true/false), bodies encoded with the json module, retries with
exponential backoff on 429/5xx/connection errors, and no client-side rate limiting. One charitable
difference: the threads share one keep-alive session (a new connection per request would be slower).

Run alone it starts the emulator in its own process, configured like Braze (300 ms per users.track
request, 3,000 requests per 3 s), sends the demo customer file and prints rows/s, the requests and
the data points the emulator counted.

    .venv/bin/python bench/baseline_sender.py [--rows 1000000] [--threads 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from harness import (
    API_KEY,
    BRAZE_LATENCY_MS,
    BRAZE_TRACK_LIMIT,
    EmulatorProcess,
    customers_file,
    rate,
    write_json,
)
from requests.adapters import HTTPAdapter

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class BaselineOutcome:
    rows: int = 0
    requests: int = 0
    retries: int = 0
    failed_batches: int = 0
    failed_rows: int = 0


# Plain numbers only: "+4915..." (a phone) and "01234" (a zip code) stay text, as a careful script has it.
INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
DECIMAL_TEXT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")


def cast_value(text: str) -> Any:
    """Text to the JSON type it looks like: the only typing a generic CSV import does."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if INTEGER_TEXT.fullmatch(text):
        return int(text)
    if DECIMAL_TEXT.fullmatch(text):
        return float(text)
    return text


def attribute_objects(path: Path, id_column: str) -> Iterator[dict[str, Any]]:
    """One users.track attribute object per row: the id as external_id, every other column as is."""
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            user: dict[str, Any] = {"external_id": row[id_column]}
            for column, text in row.items():
                if column != id_column and text != "":
                    user[column] = cast_value(text)
            yield user


class BaselineSender:
    """Batches of ``batch_size`` rows posted by ``threads`` threads, retried with exponential backoff."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        threads: int = 20,
        batch_size: int = 75,
        max_attempts: int = 6,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
    ) -> None:
        self.endpoint = f"{url.rstrip('/')}/users/track"
        self.threads = threads
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
        self.session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._lock = threading.Lock()
        self.outcome = BaselineOutcome()

    def send_file(self, path: Path, id_column: str = "customer_id") -> BaselineOutcome:
        pending: set[Future[None]] = set()
        batch: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=self.threads) as executor:
            for user in attribute_objects(path, id_column):
                self.outcome.rows += 1
                batch.append(user)
                if len(batch) < self.batch_size:
                    continue
                # A bounded queue of batches, so that reading never runs away from sending.
                if len(pending) >= 2 * self.threads:
                    _, pending = wait(pending, return_when=FIRST_COMPLETED)
                pending.add(executor.submit(self.post_batch, batch))
                batch = []
            if batch:
                pending.add(executor.submit(self.post_batch, batch))
            for future in pending:
                future.result()
        return self.outcome

    def post_batch(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps({"attributes": batch})
        for attempt in range(1, self.max_attempts + 1):
            with self._lock:
                self.outcome.requests += 1
                if attempt > 1:
                    self.outcome.retries += 1
            try:
                response = self.session.post(self.endpoint, data=body, headers=self.headers, timeout=30)
            except requests.RequestException:
                status = None
            else:
                status = response.status_code
                response.close()
                if status < 300:
                    return
            if status is not None and status not in RETRYABLE_STATUSES:
                break
            if attempt < self.max_attempts:
                time.sleep(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        with self._lock:
            self.outcome.failed_batches += 1
            self.outcome.failed_rows += len(batch)


def measure(path: Path, rows: int, threads: int) -> dict[str, Any]:
    with EmulatorProcess() as emulator:
        before = emulator.stats()
        sender = BaselineSender(emulator.url, API_KEY, threads=threads)
        cpu_before = time.process_time()
        started = time.perf_counter()
        outcome = sender.send_file(path)
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_before
        seen = emulator.stats().since(before)
    return {
        "parameters": {
            "rows": rows,
            "latency_ms": BRAZE_LATENCY_MS,
            "track_limit": str(BRAZE_TRACK_LIMIT),
            "threads": threads,
            "batch_size": sender.batch_size,
        },
        "rows": outcome.rows,
        "seconds": round(seconds, 3),
        "rows_per_s": rate(outcome.rows, seconds),
        "requests": seen.track_requests,
        "requests_sent": outcome.requests,
        "retries": outcome.retries,
        "rate_limited": seen.track_rate_limited,
        "failed_rows": outcome.failed_rows,
        "objects_refused_by_braze": seen.object_errors,
        "data_points": seen.data_points,
        "unchanged_writes": seen.unchanged_writes,
        "cpu_s": round(cpu_s, 3),
        "cpu_s_per_million": round(cpu_s / outcome.rows * 1e6, 2) if outcome.rows else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    path = customers_file(args.rows)
    result = measure(path, args.rows, args.threads)
    print(
        f"baseline: {result['rows']:,} rows in {result['seconds']:.1f} s = "
        f"{result['rows_per_s']:,.0f} rows/s; "
        f"{result['requests']:,} requests ({result['retries']} retries); "
        f"{result['data_points']:,} data points; {result['cpu_s_per_million']} CPU-s per million rows"
    )
    write_json(args.json, result)
    return 0 if result["failed_rows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
