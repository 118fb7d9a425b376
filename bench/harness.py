"""What the end-to-end benchmarks share: the emulator in its own process, the data files, engine runs
in a child process, and the machine facts every result carries.

Not a benchmark itself; the scripts next to it import it (they run with bench/ on sys.path).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cdpbridge_local.demo_data import (
    CUSTOMER_COLUMNS,
    customer_row,
    customer_rows,
    write_customers_csv,
    write_customers_parquet,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
API_KEY = "local-dev-key"
MB = 1024 * 1024

# Braze as the benchmarks model it unless a row says otherwise: a users.track round trip of 300 ms
# and the documented 3,000 requests per 3 seconds per workspace.
BRAZE_LATENCY_MS = 300.0
OBJECTS_PER_REQUEST = 75
# Requests the engine keeps in flight: at 300 ms a request, 1,000 requests/s (the Braze limit) need
# 300; 128 is what one process can feed before the CPU, not the latency, is what binds.
DEFAULT_IN_FLIGHT = 128


@dataclass(frozen=True, slots=True)
class TrackLimit:
    """``limit`` users.track requests per ``window_s`` seconds."""

    limit: int
    window_s: float

    @property
    def per_second(self) -> float:
        return self.limit / self.window_s

    def as_config(self) -> dict[str, Any]:
        return {"limit": self.limit, "window_s": self.window_s}

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_s:g}s"

    @classmethod
    def parse(cls, text: str) -> TrackLimit:
        """``300/3`` (requests per seconds)."""
        limit, _, window = text.partition("/")
        try:
            parsed = cls(int(limit), float(window.removesuffix("s")))
        except ValueError:
            raise ValueError(f"a rate limit is REQUESTS/SECONDS such as 300/3, got {text!r}") from None
        if parsed.limit < 1 or parsed.window_s <= 0:
            raise ValueError(
                f"a rate limit needs at least 1 request in a positive window, such as 300/3, got {text!r}"
            )
        return parsed


BRAZE_TRACK_LIMIT = TrackLimit(3000, 3.0)
# Stands in for "no rate limit" (as `cdpbridge emulator --no-rate-limits` does).
UNLIMITED = TrackLimit(1_000_000_000, 1.0)


# -- the emulator in its own process -----------------------------------------------------------------


class EmulatorProcess:
    """`cdpbridge emulator` as a child process, configured over its admin API.

    Its own process, so its CPU and memory never count as the engine's; the benchmark reads its
    stats (requests, data points) over HTTP.
    """

    def __init__(self, *, latency_ms: float = BRAZE_LATENCY_MS, track_limit: TrackLimit = BRAZE_TRACK_LIMIT):
        self.latency_ms = latency_ms
        self.track_limit = track_limit
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._process is not None, "the emulator is not running"
        return self._process.pid

    def start(self, timeout_s: float = 30.0) -> None:
        command = [
            sys.executable,
            "-m",
            "cdpbridge_local.cli",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        url = self._process.stdout.readline().strip()
        if not url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the emulator did not start (it printed {url!r})")
        self.url = url
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.admin("GET", "/config")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the emulator at {url} did not answer within {timeout_s:g} s"
                    ) from None
                time.sleep(0.05)
        self.configure(latency_ms=self.latency_ms, track_limit=self.track_limit)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def configure(self, *, latency_ms: float, track_limit: TrackLimit) -> None:
        self.latency_ms = latency_ms
        self.track_limit = track_limit
        self.admin(
            "PUT",
            "/config",
            {"latency_ms": latency_ms, "rate_limits": {"users.track": track_limit.as_config()}},
        )

    def stats(self) -> EmulatorStats:
        return EmulatorStats.from_view(self.admin("GET", "/stats"))

    def user_count(self) -> int:
        return int(self.admin("GET", "/users?count=1")["count"])

    def clear_profiles(self) -> None:
        """Forgets every profile (and the stats); the config stays."""
        self.admin("POST", "/reset", {})

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float | None:
        return process_peak_rss_mb(self.pid)


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    """The part of GET /_emulator/stats the benchmarks compare before and after a run."""

    track_requests: int = 0
    track_accepted: int = 0
    track_rate_limited: int = 0
    data_points: int = 0
    unchanged_writes: int = 0
    attribute_objects: int = 0
    object_errors: int = 0
    users: int = 0

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> EmulatorStats:
        statuses: dict[str, int] = view.get("requests", {}).get("users.track", {})
        return cls(
            track_requests=sum(statuses.values()),
            track_accepted=sum(n for status, n in statuses.items() if status.startswith("2")),
            track_rate_limited=statuses.get("429", 0),
            data_points=int(view.get("data_points", 0)),
            unchanged_writes=int(view.get("unchanged_writes", 0)),
            attribute_objects=int(view.get("objects", {}).get("attributes", 0)),
            object_errors=sum(int(n) for n in view.get("object_errors", {}).values()),
            users=int(view.get("users", 0)),
        )

    def since(self, before: EmulatorStats) -> EmulatorStats:
        """What happened between ``before`` and this snapshot (users is the count now)."""
        return EmulatorStats(
            track_requests=self.track_requests - before.track_requests,
            track_accepted=self.track_accepted - before.track_accepted,
            track_rate_limited=self.track_rate_limited - before.track_rate_limited,
            data_points=self.data_points - before.data_points,
            unchanged_writes=self.unchanged_writes - before.unchanged_writes,
            attribute_objects=self.attribute_objects - before.attribute_objects,
            object_errors=self.object_errors - before.object_errors,
            users=self.users,
        )

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a process (Linux /proc VmHWM); None elsewhere."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


# -- data files --------------------------------------------------------------------------------------


def customers_file(rows: int, *, generation: int = 0, change_share: float = 0.0) -> Path:
    """The demo customer file of ``rows`` rows in bench/data/, written once and reused.

    Deterministic (demo_data seeds every row by its index), so a file found on disk is the file a
    fresh checkout would write; it is written under a temporary name first, so a run interrupted
    while writing never leaves a short file behind to be reused.
    """
    name = f"customers-{rows}.csv"
    if generation:
        name = f"customers-{rows}-gen{generation}-change{change_share:g}.csv"
    path = DATA_DIR / name
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print(f"writing {path.name} ({rows:,} rows, once) ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        write_customers_csv(partial, rows, generation=generation, change_share=change_share)
        partial.replace(path)
        print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return path


# The share of a changed row's changeable values that change in the daily file: almost every
# changeable column (see demo_data.customer_row), so nearly every chosen row differs.
_DAILY_CHANGE_SHARE = 0.2


def daily_customers_file(rows: int, changed_rows_share: float) -> Path:
    """The customers of customers_file(rows) a day later, as a CRM exports its whole table: about
    ``changed_rows_share`` of the rows (chosen by a seeded draw per row) have new values, every
    other row is exactly yesterday's. In bench/data/, written once and reused."""
    path = DATA_DIR / f"customers-{rows}-daily{changed_rows_share:g}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        print(f"writing {path.name} ({rows:,} rows, once) ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CUSTOMER_COLUMNS)
            for index in range(rows):
                changed = random.Random(index * 15_485_863 + 2).random() < changed_rows_share
                writer.writerow(customer_row(index, 2 if changed else 0, _DAILY_CHANGE_SHARE))
        partial.replace(path)
    return path


# Rows per row group of the benchmark's Parquet files: several groups per file, so that the file
# splits into parts, each group a few megabytes as warehouse exports write them.
PARQUET_GROUP_ROWS = 50_000


def customers_parquet_file(rows: int) -> Path:
    """The customers of customers_file(rows) as a Parquet file with typed columns (snappy, row groups
    of PARQUET_GROUP_ROWS), in bench/data/, written once and reused like the CSV."""
    path = DATA_DIR / f"customers-{rows}.parquet"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print(f"writing {path.name} ({rows:,} rows, once) ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        write_customers_parquet(partial, rows, row_group_rows=PARQUET_GROUP_ROWS)
        partial.replace(path)
        print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return path


def customers_file_of_size(megabytes: int) -> tuple[Path, int]:
    """A demo customer file of at least ``megabytes`` MiB and the rows in it, written once and reused."""
    path = DATA_DIR / f"customers-{megabytes}MB.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print(f"writing {path.name} (once) ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        target = megabytes * MB
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CUSTOMER_COLUMNS)
            for count, row in enumerate(customer_rows(sys.maxsize), start=1):
                writer.writerow(row)
                if count % 10_000 == 0 and handle.tell() >= target:
                    break
        partial.replace(path)
        print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return path, count_data_rows(path)


def count_data_rows(path: Path) -> int:
    """Lines after the header (the demo files quote no line breaks)."""
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(MB), b"")) - 1


def changed_values(before: Path, after: Path) -> int:
    """Cells that differ between two files with the same rows in the same order."""
    changed = 0
    with before.open(newline="", encoding="utf-8") as old, after.open(newline="", encoding="utf-8") as new:
        for old_row, new_row in zip(csv.reader(old), csv.reader(new), strict=True):
            if old_row != new_row:
                changed += sum(a != b for a, b in zip(old_row, new_row, strict=True))
    return changed


# -- engine runs in a child process --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One run of a file through the engine (run_part, SQLite state), in a process of its own."""

    file: Path
    state: Path
    braze_url: str
    in_flight: int = DEFAULT_IN_FLIGHT
    # What the client is told about the users.track limit (as BRAZE_RATE_LIMITS would tell it).
    client_track_limit: TrackLimit = BRAZE_TRACK_LIMIT
    label: str = "run"
    progress_s: float = 0.0
    expected_rows: int | None = None
    profile: Path | None = None
    # Byte-range parts run by that many processes, as the deployed stack fans a large file out.
    workers: int = 1
    # The mapping config's file; None: the customers file's mapping.
    mapping: Path | None = None

    def command(self, result_path: Path) -> list[str]:
        command = [
            sys.executable,
            str(BENCH_DIR / "engine_run.py"),
            str(self.file),
            "--state",
            str(self.state),
            "--braze-url",
            self.braze_url,
            "--in-flight",
            str(self.in_flight),
            "--client-track-limit",
            f"{self.client_track_limit.limit}/{self.client_track_limit.window_s:g}",
            "--label",
            self.label,
            "--progress-s",
            str(self.progress_s),
            "--result",
            str(result_path),
            "--workers",
            str(self.workers),
        ]
        if self.expected_rows is not None:
            command += ["--expected-rows", str(self.expected_rows)]
        if self.profile is not None:
            command += ["--profile", str(self.profile)]
        if self.mapping is not None:
            command += ["--mapping", str(self.mapping)]
        return command


def run_engine(run: EngineRun) -> dict[str, Any]:
    """Runs ``run`` in a child process and returns what it measured (see engine_run.py)."""
    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-") as directory:
        result_path = Path(directory) / "result.json"
        completed = subprocess.run(run.command(result_path), check=False)
        if completed.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"the engine run {run.label!r} failed (exit status {completed.returncode})")
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


# -- results -----------------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": _memory_mb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _memory_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def write_json(path: Path | None, result: dict[str, Any], *, echo: bool = True) -> None:
    """Prints ``result`` as one JSON line (the figures of a script run alone) and writes it to ``path``."""
    if echo:
        print(json.dumps(result))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")


@contextlib.contextmanager
def temporary_state() -> Iterator[Path]:
    """A fresh SQLite state file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-state-") as directory:
        yield Path(directory) / "state.sqlite3"


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
