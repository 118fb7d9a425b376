"""`make bench`: every benchmark under bench/, one table, and bench/results/latest.json.

Each script runs in its own process (each is runnable alone and prints its own figures; their output
goes to bench/results/logs/). The Braze emulator runs in a process of its own, configured like Braze
(300 ms per users.track request, 3,000 requests per 3 s) unless a row says otherwise.

    .venv/bin/python bench/run_all.py            # full sizes: 200,000 rows, a 1 GiB memory file
    .venv/bin/python bench/run_all.py --quick    # 100,000 rows, a 256 MiB memory file
    .venv/bin/python bench/run_all.py --only full_and_delta,baseline --rows 200000

The table compares every figure with its target (met / missed; a slow machine never fails the run)
and with the previous results of the same mode. Each run is also kept as
bench/results/<date>-<mode>.json, so figures can be compared from run to run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import BENCH_DIR, BRAZE_LATENCY_MS, BRAZE_TRACK_LIMIT, RESULTS_DIR, machine_facts


@dataclass(frozen=True, slots=True)
class Sizes:
    rows: int
    bound_rows: int
    memory_mb: int
    capacity_s: float
    micro_rows: int
    repeats: int
    # Notify evaluation: simulated users per setting, and users planned for the CPU figure.
    notify_users: int = 100_000
    notify_plan_users: int = 1_000_000
    # BlueConic-style profiles with lists.
    lists_profiles: int = 20_000
    # Lytics snapshots: users per snapshot.
    lytics_users: int = 100_000
    # Currents events routed (Braze's largest Currents file is 100,000), chaos rows per import.
    currents_events: int = 100_000
    chaos_rows: int = 3_000


# Every figure of the end-to-end rows is per row or a ratio (rows/s, CPU-s per million rows, data
# points per changed value, share of the bound), the same at 200,000 rows as at 1,000,000 (README,
# "Benchmarks"), so the full sizes are those at which each run lasts long enough to settle; the
# memory row keeps its 1 GiB file, as that file's size is the point.
FULL = Sizes(
    rows=200_000,
    bound_rows=100_000,
    memory_mb=1024,
    capacity_s=10.0,
    micro_rows=100_000,
    repeats=5,
    lytics_users=100_000,
)
QUICK = Sizes(
    rows=100_000,
    bound_rows=50_000,
    memory_mb=256,
    capacity_s=5.0,
    micro_rows=50_000,
    repeats=3,
    notify_users=20_000,
    notify_plan_users=200_000,
    lists_profiles=10_000,
    lytics_users=25_000,
    currents_events=20_000,
    chaos_rows=1_000,
)


@dataclass(frozen=True, slots=True)
class Step:
    """One script run: its name in the results and its arguments for a given set of sizes."""

    name: str
    script: str
    arguments: Callable[[Sizes], list[str]]
    # The script has no --json option: its figures are the last JSON line it prints.
    json_on_stdout: bool = False
    # Consecutive steps of one group run side by side: only steps whose figures do not depend on
    # the CPU they get (peak RSS, engagement shares, CPU seconds of their own process).
    together: str | None = None


NO_SPEED_FIGURES = "no speed figures"

STEPS: tuple[Step, ...] = (
    Step("cold_start", "cold_start.py", lambda s: ["--repeats", "5"]),
    Step("sources", "sources_throughput.py", lambda s: ["--rows", str(s.micro_rows)]),
    Step("mapping", "mapping_throughput.py", lambda s: ["--repeats", str(s.repeats)]),
    Step("state", "bench_state.py", lambda s: []),
    Step("stages", "engine_stages.py", lambda s: ["--rows", str(s.micro_rows)]),
    Step(
        "emulator_capacity",
        "emulator_capacity.py",
        lambda s: ["--duration", f"{s.capacity_s:g}"],
        json_on_stdout=True,
    ),
    Step("full_and_delta", "engine_full_and_delta.py", lambda s: ["--rows", str(s.rows)]),
    Step("baseline", "baseline_sender.py", lambda s: ["--rows", str(s.rows)]),
    Step("lists_delta", "lists_delta.py", lambda s: ["--profiles", str(s.lists_profiles)]),
    # The rate-limit bound at Braze's latency, and at a fast and a slow one (the window of requests
    # in flight must find the bound at each).
    Step("bound", "rate_limit_bound.py", lambda s: ["--rows", str(s.bound_rows)]),
    Step("bound_50ms", "rate_limit_bound.py", lambda s: ["--rows", str(s.bound_rows), "--latency-ms", "50"]),
    Step(
        "bound_1000ms", "rate_limit_bound.py", lambda s: ["--rows", str(s.bound_rows), "--latency-ms", "1000"]
    ),
    # Braze's largest Currents file is 100,000 events; the quick mode routes a fifth of that.
    Step(
        "currents",
        "currents_throughput.py",
        lambda s: ["--events", str(s.currents_events), "--mix-events", "1000"],
    ),
    Step("lytics_snapshot", "lytics_snapshot.py", lambda s: ["--users", str(s.lytics_users)]),
    # The two longest steps run side by side, each on a core: neither measures speed. Peak RSS on
    # the whole 1 GiB file with a two-field mapping (every row read, planned, sent and committed);
    # the send-time evaluation's engagement shares, and the CPU seconds of its own process.
    Step(
        "memory",
        "engine_memory.py",
        lambda s: ["--megabytes", str(s.memory_mb), "--narrow"],
        together=NO_SPEED_FIGURES,
    ),
    Step(
        "notify",
        "notify_eval.py",
        lambda s: ["--users", str(s.notify_users), "--plan-users", str(s.notify_plan_users)],
        together=NO_SPEED_FIGURES,
    ),
    # Every integration's traffic under faults, kills and duplicate deliveries; 0 mismatches or exit 1.
    Step("chaos", "chaos.py", lambda s: ["--rows", str(s.chaos_rows)]),
)
STEP_NAMES = tuple(step.name for step in STEPS)
BOUND_STEPS = ("bound_50ms", "bound", "bound_1000ms")


@dataclass(frozen=True, slots=True)
class StepOutcome:
    name: str
    seconds: float
    exit_code: int
    log: Path
    figures: dict[str, Any] | None


def run_together(steps: Sequence[Step], sizes: Sizes, logs: Path) -> list[StepOutcome]:
    """Runs the scripts side by side, each in its own process, and waits for all of them. Each
    script's stdout goes to a log, its stderr (progress) to the terminal."""
    logs.mkdir(parents=True, exist_ok=True)
    running = []
    for step in steps:
        log = logs / f"{step.name}.log"
        figures_path = logs / f"{step.name}.json"
        figures_path.unlink(missing_ok=True)
        command = [sys.executable, str(BENCH_DIR / step.script), *step.arguments(sizes)]
        if not step.json_on_stdout:
            command += ["--json", str(figures_path)]
        print(f"-- {step.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        output = log.open("w", encoding="utf-8")
        running.append(
            (step, log, figures_path, output, time.monotonic(), subprocess.Popen(command, stdout=output))
        )
    # Each step's time is its own: the first to finish is not timed by the last.
    ended: dict[int, float] = {}
    while len(ended) < len(running):
        for index, (*_, process) in enumerate(running):
            if index not in ended and process.poll() is not None:
                ended[index] = time.monotonic()
        if len(ended) < len(running):
            time.sleep(0.2)
    outcomes = []
    for index, (step, log, figures_path, output, started, process) in enumerate(running):
        exit_code = process.wait()
        seconds = ended[index] - started
        output.close()
        figures = _last_json_line(log) if step.json_on_stdout else _read_json(figures_path)
        status = "ok" if exit_code == 0 else f"exit status {exit_code}"
        print(f"   {step.name}: {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
        outcomes.append(StepOutcome(step.name, round(seconds, 1), exit_code, log, figures))
    return outcomes


def run_steps(steps: Sequence[Step], sizes: Sizes, logs: Path) -> list[StepOutcome]:
    """Runs the steps in order; consecutive steps of one ``together`` group run side by side."""
    outcomes: list[StepOutcome] = []
    index = 0
    while index < len(steps):
        group = steps[index].together
        batch = [steps[index]]
        while group and index + len(batch) < len(steps) and steps[index + len(batch)].together == group:
            batch.append(steps[index + len(batch)])
        outcomes += run_together(batch, sizes, logs)
        index += len(batch)
    return outcomes


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _last_json_line(path: Path) -> dict[str, Any] | None:
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{"):
            try:
                loaded = json.loads(line)
            except ValueError:
                return None
            return loaded if isinstance(loaded, dict) else None
    return None


# -- assembling latest.json ------------------------------------------------------------------------


def _picked(figures: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The named figures of one script, in that order (a missing one is an error: the script changed)."""
    return {key: figures[key] for key in keys}


def assemble(outcomes: Sequence[StepOutcome], mode: str, machine: dict[str, Any]) -> dict[str, Any]:
    """The results document: the keys the README promises, then everything each script measured."""
    figures = {outcome.name: outcome.figures or {} for outcome in outcomes}
    results: dict[str, Any] = {"mode": mode, "machine": machine}

    both = figures.get("full_and_delta", {})
    full = both.get("full")
    if full:
        results["full"] = {
            **_picked(full, "rows_per_s", "requests", "fill_ratio", "cpu_s_per_million", "peak_rss_mb"),
            **_picked(full, "rows", "seconds"),
            "emulator_requests": full.get("emulator", {}).get("track_requests"),
            "data_points": full.get("emulator", {}).get("data_points"),
            "parameters": both.get("parameters", {}),
        }
    parts = both.get("full_parts")
    if parts:
        results["full_parts"] = {
            **_picked(parts, "workers", "rows_per_s", "requests", "fill_ratio", "cpu_s_per_million"),
            **_picked(parts, "peak_rss_mb", "peak_rss_total_mb", "rows", "seconds"),
        }
    parquet = both.get("full_parquet")
    if parquet:
        results["full_parquet"] = {
            **_picked(parquet, "rows_per_s", "requests", "fill_ratio", "cpu_s_per_million", "peak_rss_mb"),
            **_picked(parquet, "rows", "seconds", "file_mb"),
        }
    daily = both.get("daily")
    if daily:
        results["daily"] = {
            **_picked(daily, "rows_per_s", "cpu_s_per_million", "requests", "changed_values", "data_points"),
            **_picked(daily, "data_points_per_changed_value", "records_unchanged", "changed_rows_share"),
            "aws_usd_per_million_rows": _aws_per_million(daily),
        }
    if full:
        results["full"]["aws_usd_per_million_rows"] = _aws_per_million(full)
    delta = both.get("delta")
    if delta:
        results["delta"] = {
            **_picked(delta, "data_points", "changed_values", "requests", "data_points_per_changed_value"),
            **_picked(delta, "data_points_saved", "rows_per_s", "cpu_s_per_million"),
            "parameters": {**both.get("parameters", {}), "change_share": delta["change_share"]},
        }
    baseline = figures.get("baseline")
    if baseline:
        results["baseline"] = _picked(
            baseline,
            "rows_per_s",
            "requests",
            "data_points",
            "cpu_s_per_million",
            "retries",
            "failed_rows",
            "parameters",
        )
    if daily and baseline and baseline["rows_per_s"]:
        # The baseline sends every row whatever changed: its rows/s is the same on the daily file.
        results["ratio_daily_vs_baseline"] = round(daily["rows_per_s"] / baseline["rows_per_s"], 2)
    if full and baseline and baseline["rows_per_s"]:
        results["ratio_vs_baseline"] = round(full["rows_per_s"] / baseline["rows_per_s"], 2)
    if parts and baseline and baseline["rows_per_s"]:
        results["ratio_vs_baseline_parts"] = round(parts["rows_per_s"] / baseline["rows_per_s"], 2)
    lists_delta = figures.get("lists_delta")
    if lists_delta:
        results["lists_delta"] = _picked(
            lists_delta,
            "data_points",
            "changed_values_and_new_elements",
            "list_elements_resent",
            "data_points_per_change",
            "aws_usd_per_million_rows",
        )
    bound = figures.get("bound")
    if bound:
        results["bound"] = _picked(
            bound, "seconds", "bound_seconds", "share_of_bound", "requests", "rate_limited_429", "parameters"
        )
    by_latency = {
        f"{float(run.get('parameters', {}).get('latency_ms', BRAZE_LATENCY_MS)):g}": _picked(
            run, "seconds", "bound_seconds", "share_of_bound", "requests", "rate_limited_429"
        )
        for run in (figures.get(name) for name in BOUND_STEPS)
        if run
    }
    if by_latency:
        results["bound_by_latency_ms"] = dict(sorted(by_latency.items(), key=lambda item: float(item[0])))
    memory = figures.get("memory")
    if memory:
        results["memory_1gb"] = _picked(
            memory, "peak_rss_mb", "rss_before_run_mb", "rows", "seconds", "rows_per_s", "parameters"
        )
    cold = figures.get("cold_start")
    if cold:
        results["import_ms"] = cold["import_ms"]
        results["import_ms_no_pyc"] = {h["function"]: h.get("ms_no_pyc") for h in cold["handlers"]}
        # From the sam build artifact with no bytecode written, as Lambda imports it (when built).
        results["import_ms_deployed"] = cold.get("import_ms_deployed") or {}
    capacity = figures.get("emulator_capacity")
    if capacity:
        results["emulator_capacity_rps"] = capacity["emulator_capacity_rps"]
        results["emulator_capacity"] = capacity
    currents = figures.get("currents")
    if currents:
        results["currents"] = {
            **_picked(
                currents, "route_records_per_s", "decode_records_per_s", "route_overhead_us_per_record"
            ),
            **_picked(currents, "peak_rss_mb", "peak_rss_mb_tenth_file", "mix", "parameters"),
            "lambda": currents.get("lambda"),
        }
    notify = figures.get("notify")
    if notify:
        results["notify"] = _picked(
            notify,
            "users",
            "fixed_10",
            "random",
            "intelligent_timing",
            "ours",
            "oracle",
            "ours_vs_intelligent_timing",
            "ours_vs_oracle",
            "spread",
            "plan_cpu_s_per_million",
        )
    chaos = figures.get("chaos")
    if chaos:
        results["chaos"] = _picked(
            chaos,
            "rows",
            "faults",
            "kills",
            "duplicates_delivered",
            "window_hits",
            "window_duplicate_objects",
            "dead_letters",
            "mismatches",
            "seconds",
        )
    micro = {name: figures[name] for name in ("sources", "mapping", "state", "stages") if figures.get(name)}
    if micro:
        results["micro"] = micro
    results["targets"] = [check.to_dict() for check in evaluate_targets(results)]
    results["steps"] = {
        outcome.name: {"seconds": outcome.seconds, "exit_code": outcome.exit_code, "log": outcome.log.name}
        for outcome in outcomes
    }
    return results


# -- targets ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetCheck:
    row: str
    figure: str
    value: float | None
    target: str
    met: bool | None  # None: not measured in this run

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "figure": self.figure,
            "value": self.value,
            "target": self.target,
            "met": self.met,
        }


def _at_least(row: str, figure: str, value: Any, minimum: float, text: str) -> TargetCheck:
    measured = float(value) if isinstance(value, int | float) else None
    return TargetCheck(row, figure, measured, text, None if measured is None else measured >= minimum)


def _aws_per_million(run: dict[str, Any]) -> float | None:
    """The run's AWS dollars per million rows (cdpbridge.sync.aws_cost), when it reported them."""
    per_million = (run.get("aws_cost") or {}).get("usd_per_million_rows") or {}
    total = per_million.get("total")
    return float(total) if isinstance(total, int | float) else None


def _at_most(row: str, figure: str, value: Any, maximum: float, text: str) -> TargetCheck:
    measured = float(value) if isinstance(value, int | float) else None
    return TargetCheck(row, figure, measured, text, None if measured is None else measured <= maximum)


def evaluate_targets(results: dict[str, Any]) -> list[TargetCheck]:
    full = results.get("full", {})
    delta = results.get("delta", {})
    daily = results.get("daily", {})
    checks = [
        _at_least("full", "fill_ratio", full.get("fill_ratio"), 0.99, ">= 99%"),
        _at_most("full", "cpu_s_per_million", full.get("cpu_s_per_million"), 5.0, "<= 5 CPU-s"),
        _at_least("baseline", "ratio_vs_baseline", results.get("ratio_vs_baseline"), 10.0, ">= 10x"),
        # The first load (fresh state, every value new) with the default settings at Braze's latency.
        _at_most("first load", "cpu_s_per_million", full.get("cpu_s_per_million"), 40.0, "<= 40 CPU-s"),
        _at_least("first load", "ratio_vs_baseline", results.get("ratio_vs_baseline"), 2.0, ">= 2x baseline"),
        _at_most(
            "lists_delta",
            "data_points_per_change",
            results.get("lists_delta", {}).get("data_points_per_change"),
            1.02,
            "<= 1.02x changes",
        ),
        _at_most(
            "delta",
            "data_points_per_changed_value",
            delta.get("data_points_per_changed_value"),
            1.02,
            "<= 1.02x changed values",
        ),
        _at_least("bound", "share_of_bound", results.get("bound", {}).get("share_of_bound"), 0.95, ">= 95%"),
        *(
            _at_least("bound", f"share_of_bound_{latency}ms", run.get("share_of_bound"), 0.95, ">= 95%")
            for latency, run in (results.get("bound_by_latency_ms") or {}).items()
            if latency != "300"
        ),
        _at_most(
            "memory", "peak_rss_mb", results.get("memory_1gb", {}).get("peak_rss_mb"), 150.0, "<= 150 MB"
        ),
        _at_least(
            "currents",
            "route_records_per_s",
            results.get("currents", {}).get("route_records_per_s"),
            200_000.0,
            ">= 200,000/s",
        ),
    ]
    notify = results.get("notify")
    if notify:
        # Only when the evaluation ran: the send-time figures are not comparable across other rows.
        checks += [
            _at_least(
                "notify",
                "ours_vs_intelligent_timing",
                notify.get("ours_vs_intelligent_timing"),
                1.15,
                ">= 1.15x",
            ),
            _at_least("notify", "ours_vs_oracle", notify.get("ours_vs_oracle"), 0.90, ">= 0.90x"),
            _at_most(
                "notify", "plan_cpu_s_per_million", notify.get("plan_cpu_s_per_million"), 60.0, "<= 60 CPU-s"
            ),
        ]
    if daily:
        checks += [
            _at_most("daily", "cpu_s_per_million", daily.get("cpu_s_per_million"), 10.0, "<= 10 CPU-s"),
            _at_least(
                "daily", "ratio_vs_baseline", results.get("ratio_daily_vs_baseline"), 10.0, ">= 10x baseline"
            ),
            _at_most(
                "daily",
                "data_points_per_changed_value",
                daily.get("data_points_per_changed_value"),
                1.02,
                "<= 1.02x changed values",
            ),
        ]
    deployed = results.get("import_ms_deployed") or {}
    measured_imports = deployed if any(value is not None for value in deployed.values()) else None
    for function, milliseconds in sorted((measured_imports or results.get("import_ms") or {}).items()):
        check = _at_most("cold start", function, milliseconds, 250.0, "<= 250 ms")
        # A handler that does not import is a missed target, not an unmeasured one.
        checks.append(
            check
            if milliseconds is not None
            else TargetCheck("cold start", function, None, "<= 250 ms", False)
        )
    return checks


# -- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    row: str
    figure: str
    value: str
    target: str = ""
    result: str = ""
    previous: str = ""


def _get(document: dict[str, Any] | None, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _number(value: Any, digits: int = 0, suffix: str = "") -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _share(value: Any) -> str:
    """Expected engagement as a share of each user's best possible hour."""
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _dollars(value: Any) -> str:
    return f"${value:,.3f}" if isinstance(value, int | float) else "-"


def _percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _verdict(checks: dict[tuple[str, str], TargetCheck], row: str, figure: str) -> tuple[str, str]:
    check = checks.get((row, figure))
    if check is None:
        return "", ""
    return check.target, {True: "met", False: "MISSED", None: "not run"}[check.met]


def render_table(results: dict[str, Any], previous: dict[str, Any] | None) -> str:
    checks = {(check.row, check.figure): check for check in evaluate_targets(results)}
    full_rows = _get(results, "full.rows")
    rows_label = f"{full_rows:,} rows" if isinstance(full_rows, int) else "not run"
    specs: list[tuple[str, str, str, Callable[[Any], str], str]] = [
        # (row label, figure label, path in results, formatter, target key "row/figure")
        (f"1 full file ({rows_label})", "rows/s", "full.rows_per_s", _number, ""),
        ("", "requests", "full.requests", _number, ""),
        ("", "request fill", "full.fill_ratio", _percent, "full/fill_ratio"),
        (
            "",
            "CPU-s per million rows (engine process)",
            "full.cpu_s_per_million",
            lambda v: _number(v, 1),
            "full/cpu_s_per_million",
        ),
        (
            "",
            "CPU-s per million rows, first-load target",
            "full.cpu_s_per_million",
            lambda v: _number(v, 1),
            "first load/cpu_s_per_million",
        ),
        (
            "",
            "ours / baseline rows/s (defaults, 300 ms)",
            "ratio_vs_baseline",
            lambda v: _number(v, 2, "x"),
            "first load/ratio_vs_baseline",
        ),
        ("", "peak RSS MB", "full.peak_rss_mb", _number, ""),
        (
            f"1b the same file in {_get(results, 'full_parts.workers') or '-'} parts (one process each)",
            "rows/s",
            "full_parts.rows_per_s",
            _number,
            "",
        ),
        ("", "request fill", "full_parts.fill_ratio", _percent, ""),
        (
            "",
            "CPU-s per million rows (all processes)",
            "full_parts.cpu_s_per_million",
            lambda v: _number(v, 1),
            "",
        ),
        ("", "peak RSS MB (largest process)", "full_parts.peak_rss_mb", _number, ""),
        ("1c the same customers as Parquet (typed)", "rows/s", "full_parquet.rows_per_s", _number, ""),
        ("", "request fill", "full_parquet.fill_ratio", _percent, ""),
        (
            "",
            "CPU-s per million rows (engine process)",
            "full_parquet.cpu_s_per_million",
            lambda v: _number(v, 1),
            "",
        ),
        ("", "peak RSS MB", "full_parquet.peak_rss_mb", _number, ""),
        ("2 baseline (20 threads, no dedupe)", "rows/s", "baseline.rows_per_s", _number, ""),
        ("", "requests", "baseline.requests", _number, ""),
        ("", "data points", "baseline.data_points", _number, ""),
        (
            "",
            "ours / baseline rows/s",
            "ratio_vs_baseline",
            lambda v: _number(v, 2, "x"),
            "baseline/ratio_vs_baseline",
        ),
        ("", "ours in parts / baseline rows/s", "ratio_vs_baseline_parts", lambda v: _number(v, 2, "x"), ""),
        ("", "AWS $ per million rows (us-east-1 list)", "full.aws_usd_per_million_rows", _dollars, ""),
        (
            "3a daily full file (1% of rows changed)",
            "CPU-s per million rows",
            "daily.cpu_s_per_million",
            lambda v: _number(v, 1),
            "daily/cpu_s_per_million",
        ),
        ("", "rows/s", "daily.rows_per_s", _number, ""),
        (
            "",
            "ours / baseline rows/s (same file)",
            "ratio_daily_vs_baseline",
            lambda v: _number(v, 2, "x"),
            "daily/ratio_vs_baseline",
        ),
        ("", "records skipped unmapped", "daily.records_unchanged", _number, ""),
        (
            "",
            "data points / changed value",
            "daily.data_points_per_changed_value",
            lambda v: _number(v, 3, "x"),
            "daily/data_points_per_changed_value",
        ),
        ("", "AWS $ per million rows (us-east-1 list)", "daily.aws_usd_per_million_rows", _dollars, ""),
        (
            "3b BlueConic-style delta (lists resent whole)",
            "list elements resent",
            "lists_delta.list_elements_resent",
            _number,
            "",
        ),
        ("", "values and new elements changed", "lists_delta.changed_values_and_new_elements", _number, ""),
        (
            "",
            "data points / change",
            "lists_delta.data_points_per_change",
            lambda v: _number(v, 3, "x"),
            "lists_delta/data_points_per_change",
        ),
        ("3 daily delta (10% changed)", "values changed", "delta.changed_values", _number, ""),
        ("", "data points written", "delta.data_points", _number, ""),
        (
            "",
            "data points / changed value",
            "delta.data_points_per_changed_value",
            lambda v: _number(v, 3, "x"),
            "delta/data_points_per_changed_value",
        ),
        ("", "requests", "delta.requests", _number, ""),
        (
            f"4 rate-limit bound ({_get(results, 'bound.parameters.track_limit') or '-'})",
            "seconds",
            "bound.seconds",
            lambda v: _number(v, 1),
            "",
        ),
        ("", "bound seconds", "bound.bound_seconds", lambda v: _number(v, 1), ""),
        ("", "share of bound (300 ms a request)", "bound.share_of_bound", _percent, "bound/share_of_bound"),
        *(
            (
                "",
                f"share of bound ({int(latency):,} ms a request)",
                f"bound_by_latency_ms.{latency}.share_of_bound",
                _percent,
                f"bound/share_of_bound_{latency}ms",
            )
            for latency in ("50", "1000")
        ),
        (
            f"5 memory ({_number(_get(results, 'memory_1gb.parameters.file_mb'))} MB file, two-field"
            " mapping; latency 0, no limit)",
            "peak RSS MB (engine process)",
            "memory_1gb.peak_rss_mb",
            _number,
            "memory/peak_rss_mb",
        ),
    ]
    lines: list[Line] = []
    for row_label, figure, path, formatter, target_key in specs:
        target, verdict = _verdict(checks, *target_key.split("/")) if target_key else ("", "")
        previous_value = _get(previous, path)
        lines.append(
            Line(
                row_label,
                figure,
                formatter(_get(results, path)),
                target,
                verdict,
                formatter(previous_value) if previous_value is not None else "",
            )
        )
    specs_currents: list[tuple[str, str, str, Callable[[Any], str], str]] = [
        (
            f"8 Currents ({_number(_get(results, 'currents.parameters.events'))} events,"
            f" {_get(results, 'currents.parameters.event_type') or '-'})",
            "events routed/s per core (JSON lines)",
            "currents.route_records_per_s",
            _number,
            "currents/route_records_per_s",
        ),
        ("", "events decoded/s per core (fastavro alone)", "currents.decode_records_per_s", _number, ""),
        ("", "94-type mix: events routed/s", "currents.mix.route_records_per_s", _number, ""),
        ("", "peak RSS MB", "currents.peak_rss_mb", _number, ""),
        ("", "function time s (moto server)", "currents.lambda.wall_s", lambda v: _number(v, 1), ""),
        ("", "function time s (modeled)", "currents.lambda.modeled_lambda_s", lambda v: _number(v, 1), ""),
    ]
    for row_label, figure, path, formatter, target_key in specs_currents:
        target, verdict = _verdict(checks, *target_key.split("/")) if target_key else ("", "")
        previous_value = _get(previous, path)
        lines.append(
            Line(
                row_label,
                figure,
                formatter(_get(results, path)),
                target,
                verdict,
                formatter(previous_value) if previous_value is not None else "",
            )
        )
    lines += _chaos_lines(results, previous)
    deployed_imports = results.get("import_ms_deployed") or {}
    as_deployed = any(value is not None for value in deployed_imports.values())
    imports = deployed_imports if as_deployed else results.get("import_ms") or {}
    for index, (function, milliseconds) in enumerate(sorted(imports.items())):
        target, verdict = _verdict(checks, "cold start", function)
        shown = _number(milliseconds) if milliseconds is not None else "does not import"
        previous_value = _get(previous, "import_ms_deployed" if as_deployed else "import_ms")
        before = previous_value.get(function) if isinstance(previous_value, dict) else None
        label = "6 cold start (import as deployed, median of 5)" if as_deployed else "6 cold start (import)"
        lines.append(
            Line(
                label if index == 0 else "",
                f"{function} ms",
                shown,
                target,
                verdict,
                _number(before) if before is not None else "",
            )
        )
    if not imports:
        lines.append(Line("6 cold start", "handler import ms", "-"))
    capacity = results.get("emulator_capacity_rps")
    previous_capacity = _get(previous, "emulator_capacity_rps")
    lines.append(
        Line(
            "7 emulator capacity (no latency)",
            "users.track requests/s",
            _number(capacity),
            "",
            "",
            _number(previous_capacity) if previous_capacity is not None else "",
        )
    )
    notify = results.get("notify")
    if notify:
        for index, (figure, path, formatter, target_key) in enumerate(
            (
                ("fixed 10:00", "notify.fixed_10", _share, ""),
                ("random slots", "notify.random", _share, ""),
                ("Intelligent Timing rule", "notify.intelligent_timing", _share, ""),
                ("ours", "notify.ours", _share, ""),
                ("oracle", "notify.oracle", _share, ""),
                (
                    "ours / Intelligent Timing",
                    "notify.ours_vs_intelligent_timing",
                    lambda v: _number(v, 3, "x"),
                    "notify/ours_vs_intelligent_timing",
                ),
                (
                    "ours / oracle",
                    "notify.ours_vs_oracle",
                    lambda v: _number(v, 3, "x"),
                    "notify/ours_vs_oracle",
                ),
                (
                    "CPU-s to plan a million users",
                    "notify.plan_cpu_s_per_million",
                    lambda v: _number(v, 1),
                    "notify/plan_cpu_s_per_million",
                ),
            )
        ):
            target, verdict = _verdict(checks, *target_key.split("/")) if target_key else ("", "")
            previous_value = _get(previous, path)
            lines.append(
                Line(
                    f"8 Notify send time ({_number(notify.get('users'))} users)" if index == 0 else "",
                    figure,
                    formatter(_get(results, path)),
                    target,
                    verdict,
                    formatter(previous_value) if previous_value is not None else "",
                )
            )
        spread = notify.get("spread") or {}
        lines.append(
            Line(
                "",
                f"spread over {spread.get('settings', '-')} simulator settings (weekday and weekend)",
                f"IT {_number(spread.get('ours_vs_intelligent_timing_min'), 2)}-"
                f"{_number(spread.get('ours_vs_intelligent_timing_max'), 2)}x, oracle "
                f"{_number(spread.get('ours_vs_oracle_min'), 2)}-"
                f"{_number(spread.get('ours_vs_oracle_max'), 2)}x",
            )
        )
    header = Line("row", "figure", "value", "target", "result", "previous")
    columns = list(
        zip(
            *[
                (line.row, line.figure, line.value, line.target, line.result, line.previous)
                for line in [header, *lines]
            ],
            strict=True,
        )
    )
    widths = [max(len(cell) for cell in column) for column in columns]
    rendered = []
    for line in [header, *lines]:
        cells = (line.row, line.figure, line.value, line.target, line.result, line.previous)
        text = "  ".join(
            cell.rjust(width) if index == 2 or index == 5 else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        rendered.append(text.rstrip())
        if line is header:
            rendered.append("-" * len(rendered[0]))
    return "\n".join(rendered)


def _chaos_lines(results: dict[str, Any], previous: dict[str, Any] | None) -> list[Line]:
    """The chaos run's figures: what it survived, and the mismatches that must be 0."""
    chaos = results.get("chaos")
    if not chaos:
        return []

    def total(document: dict[str, Any] | None, name: str) -> Any:
        value = _get(document, f"chaos.{name}")
        return sum(value.values()) if isinstance(value, dict) else value

    label = f"9 chaos ({_number(chaos.get('rows'))} rows, every integration)"
    lines = []
    for index, (figure, name) in enumerate(
        (
            ("faults injected", "faults"),
            ("kills", "kills"),
            ("duplicates delivered", "duplicates_delivered"),
            ("lost-answer window hits", "window_hits"),
            ("objects applied twice (window)", "window_duplicate_objects"),
            ("mismatches", "mismatches"),
        )
    ):
        before = total(previous, name)
        lines.append(
            Line(
                label if index == 0 else "",
                figure,
                _number(total(results, name)),
                "0" if name == "mismatches" else "",
                ("met" if chaos.get("mismatches") == 0 else "MISSED") if name == "mismatches" else "",
                _number(before) if before is not None else "",
            )
        )
    return lines


def notes(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    return "\n".join(
        [
            f"mode {results.get('mode')}; {machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), "
            f"Python {machine.get('python')}, {machine.get('date')}",
            "emulator in its own process, like Braze unless a row says otherwise: "
            f"{BRAZE_LATENCY_MS:g} ms per users.track request, {BRAZE_TRACK_LIMIT.limit:,} requests per "
            f"{BRAZE_TRACK_LIMIT.window_s:g} s",
            "CPU and RSS are the engine's own (ru_maxrss, process_time; in parts, every part process's CPU)"
            "; the emulator is not counted",
            "previous: the last run of the same mode; targets are reported, never enforced",
        ]
    )


# -- main ---------------------------------------------------------------------------------------------


def load_previous(results_dir: Path, mode: str) -> dict[str, Any] | None:
    """The most recent kept run of the same mode (file names start with the UTC time)."""
    for path in sorted(results_dir.glob(f"*-{mode}.json"), reverse=True):
        previous = _read_json(path)
        if previous is not None and previous.get("mode") == mode:
            return previous
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (100k rows, a 256 MiB memory file)")
    parser.add_argument("--rows", type=int, help="rows of the full-file, delta and baseline rows")
    parser.add_argument("--only", help=f"comma-separated steps to run ({', '.join(STEP_NAMES)})")
    parser.add_argument("--skip", help="comma-separated steps to leave out")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    if args.rows:
        sizes = replace(sizes, rows=args.rows)
    selected = set(STEP_NAMES)
    if args.only:
        selected = set(args.only.split(","))
    if args.skip:
        selected -= set(args.skip.split(","))
    unknown = selected - set(STEP_NAMES)
    if unknown:
        parser.error(f"unknown steps {', '.join(sorted(unknown))}; known: {', '.join(STEP_NAMES)}")
    mode = "quick" if args.quick else "full"
    if args.rows or args.only or args.skip:
        mode += "-custom"

    started = datetime.now(UTC)
    machine = machine_facts()
    outcomes = run_steps([step for step in STEPS if step.name in selected], sizes, args.results_dir / "logs")
    results = assemble(outcomes, mode, machine)
    results["sizes"] = {
        "rows": sizes.rows,
        "bound_rows": sizes.bound_rows,
        "lytics_users": sizes.lytics_users,
        "memory_mb": sizes.memory_mb,
        "emulator_capacity_s": sizes.capacity_s,
        "notify_users": sizes.notify_users,
        "notify_plan_users": sizes.notify_plan_users,
    }
    results["total_seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)

    latest = args.results_dir / "latest.json"
    previous = load_previous(args.results_dir, mode)
    text = json.dumps(results, indent=2) + "\n"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    latest.write_text(text)
    (args.results_dir / f"{started:%Y%m%dT%H%M%SZ}-{mode}.json").write_text(text)

    print()
    print(render_table(results, previous))
    print()
    print(notes(results))
    failed = [outcome.name for outcome in outcomes if outcome.exit_code != 0]
    if failed:
        print(f"steps that failed (see {args.results_dir / 'logs'}): {', '.join(failed)}")
    print(f"results: {latest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
