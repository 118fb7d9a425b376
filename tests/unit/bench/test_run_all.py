"""run_all: the results document, the targets, the table and the comparison with the previous run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_all import (
    QUICK,
    Step,
    StepOutcome,
    assemble,
    evaluate_targets,
    load_previous,
    main,
    render_table,
    run_steps,
)

MACHINE = {"cpu_count": 2, "python": "3.12.1", "date": "2026-01-01T00:00:00+00:00"}


def figures(
    rows_per_s: float = 8000.0, rss: float = 120.0, import_ms: float | None = 180.0
) -> dict[str, Any]:
    """What each script writes with --json, trimmed to the figures assemble() reads."""
    engine = {
        "rows": 100_000,
        "seconds": 100_000 / rows_per_s,
        "rows_per_s": rows_per_s,
        "requests": 1334,
        "fill_ratio": 0.9995,
        "cpu_s_per_million": 95.5,
        "peak_rss_mb": rss,
        "emulator": {"track_requests": 1334, "data_points": 1_900_000},
    }
    delta = {
        **engine,
        "requests": 1207,
        "change_share": 0.1,
        "changed_values": 199_932,
        "data_points": 199_932,
        "data_points_per_changed_value": 1.0,
        "data_points_saved": 1_700_068,
    }
    parts = {
        **engine,
        "rows_per_s": rows_per_s * 1.5,
        "workers": 2,
        "cpu_s_per_million": 99.0,
        "peak_rss_total_mb": rss * 2 + 30,
    }
    parquet = {**engine, "rows_per_s": rows_per_s * 1.1, "cpu_s_per_million": 88.5, "file_mb": 5.2}
    return {
        "full_and_delta": {
            "parameters": {"rows": 100_000},
            "full": engine,
            "delta": delta,
            "full_parts": parts,
            "full_parquet": parquet,
        },
        "baseline": {
            "rows_per_s": 4000.0,
            "requests": 1334,
            "data_points": 1_900_000,
            "cpu_s_per_million": 50.0,
            "retries": 0,
            "failed_rows": 0,
            "parameters": {"threads": 20},
        },
        "bound": {
            "seconds": 20.0,
            "bound_seconds": 19.6,
            "share_of_bound": 0.98,
            "requests": 667,
            "rate_limited_429": 0,
            "parameters": {"track_limit": "150/3s"},
        },
        "memory": {
            "peak_rss_mb": rss,
            "rss_before_run_mb": 48.0,
            "rows": 1_650_000,
            "seconds": 180.0,
            "rows_per_s": 9000.0,
            "parameters": {"file_mb": 256.0},
        },
        "cold_start": {
            "import_ms": {"ImportFunction": import_ms},
            "handlers": [{"function": "ImportFunction", "ms": import_ms, "ms_no_pyc": 900.0}],
        },
        "emulator_capacity": {"emulator_capacity_rps": 1000.0},
        "currents": {
            "parameters": {"events": 100_000, "event_type": "users.messages.email.Open"},
            "decode_records_per_s": 43_000.0,
            "route_records_per_s": 31_000.0,
            "route_overhead_us_per_record": 8.5,
            "peak_rss_mb": 62.0,
            "peak_rss_mb_tenth_file": 61.0,
            "mix": {"event_types": 94, "events": 94_000, "route_records_per_s": 40_000.0},
            "lambda": {"wall_s": 60.0, "modeled_lambda_s": 20.0},
        },
    }


def outcomes(by_step: dict[str, Any]) -> list[StepOutcome]:
    return [StepOutcome(name, 1.0, 0, Path(f"{name}.log"), value) for name, value in by_step.items()]


def test_the_results_hold_every_key_the_readme_promises() -> None:
    # Given every step's figures
    results = assemble(outcomes(figures()), "quick", MACHINE)
    # Then the documented keys are there, with the ratio computed from both runs
    assert set(results["full"]) >= {
        "rows_per_s",
        "requests",
        "fill_ratio",
        "cpu_s_per_million",
        "peak_rss_mb",
    }
    assert set(results["baseline"]) >= {"rows_per_s", "requests", "data_points"}
    assert results["ratio_vs_baseline"] == 2.0
    # And the run in parts, with its own ratio
    assert results["full_parts"]["workers"] == 2
    assert results["full_parts"]["cpu_s_per_million"] == 99.0
    assert results["ratio_vs_baseline_parts"] == 3.0
    # And the same customers as Parquet, with the figures to compare with the CSV's
    assert results["full_parquet"]["rows_per_s"] == 8800.0
    assert results["full_parquet"]["cpu_s_per_million"] == 88.5
    assert results["full_parquet"]["file_mb"] == 5.2
    assert set(results["delta"]) >= {"data_points", "changed_values", "requests"}
    assert set(results["bound"]) >= {"seconds", "bound_seconds", "share_of_bound"}
    assert results["memory_1gb"]["peak_rss_mb"] == 120.0
    assert results["import_ms"] == {"ImportFunction": 180.0}
    assert results["emulator_capacity_rps"] == 1000.0
    assert results["machine"] == MACHINE
    assert results["full"]["parameters"] == {"rows": 100_000}
    assert results["currents"]["route_records_per_s"] == 31_000.0
    assert results["currents"]["lambda"]["modeled_lambda_s"] == 20.0
    json.dumps(results)  # the document is plain JSON


def test_targets_are_met_or_missed_figure_by_figure() -> None:
    # Given a run that is fast on the delta and the bound but not on CPU, ratio, memory and import
    results = assemble(outcomes(figures(rss=180.0, import_ms=400.0)), "quick", MACHINE)
    # When the targets are evaluated
    verdicts = {(check.row, check.figure): check.met for check in evaluate_targets(results)}
    # Then each has its verdict
    assert verdicts == {
        ("full", "fill_ratio"): True,
        ("full", "cpu_s_per_million"): False,
        ("baseline", "ratio_vs_baseline"): False,
        ("first load", "cpu_s_per_million"): False,
        ("first load", "ratio_vs_baseline"): True,
        ("lists_delta", "data_points_per_change"): None,
        ("delta", "data_points_per_changed_value"): True,
        ("bound", "share_of_bound"): True,
        ("memory", "peak_rss_mb"): False,
        ("cold start", "ImportFunction"): False,
        ("currents", "route_records_per_s"): False,
    }


def test_a_step_that_did_not_run_leaves_its_targets_unmeasured_not_failed() -> None:
    by_step = figures()
    del by_step["memory"], by_step["bound"]
    checks = {(c.row, c.figure): c for c in evaluate_targets(assemble(outcomes(by_step), "quick", MACHINE))}
    assert checks[("memory", "peak_rss_mb")].met is None
    assert checks[("bound", "share_of_bound")].met is None
    assert checks[("full", "fill_ratio")].met is True


def test_a_handler_that_does_not_import_misses_its_target() -> None:
    results = assemble(outcomes(figures(import_ms=None)), "quick", MACHINE)
    check = next(c for c in evaluate_targets(results) if c.row == "cold start")
    assert check.met is False
    assert "does not import" in render_table(results, None)


def test_the_table_shows_values_targets_verdicts_and_the_previous_run() -> None:
    # Given this run and a slower previous one
    previous = assemble(outcomes(figures(rows_per_s=6000.0)), "quick", MACHINE)
    results = assemble(outcomes(figures(rows_per_s=8000.0)), "quick", MACHINE)
    # When the table is rendered
    table = render_table(results, previous)
    # Then the rows/s line shows both runs, and verdicts are spelt out
    rows_line = next(line for line in table.splitlines() if line.startswith("1 full file"))
    assert "8,000" in rows_line
    assert rows_line.rstrip().endswith("6,000")
    assert "MISSED" in table
    assert "met" in table
    assert "ImportFunction ms" in table
    # And the run in parts has its line, with its ratio to the baseline
    parts_line = next(line for line in table.splitlines() if line.startswith("1b the same file in 2 parts"))
    assert "12,000" in parts_line
    assert "3.00x" in next(line for line in table.splitlines() if "ours in parts / baseline" in line)
    # And the Parquet run has its rows/s and CPU lines beside the CSV's
    lines = table.splitlines()
    parquet_at = next(
        index for index, line in enumerate(lines) if line.startswith("1c the same customers as Parquet")
    )
    assert "8,800" in lines[parquet_at]
    assert any(
        "88.5" in line and "CPU-s per million rows" in line for line in lines[parquet_at : parquet_at + 4]
    )


def test_the_previous_run_is_the_latest_of_the_same_mode(tmp_path: Path) -> None:
    # Given kept runs of two modes
    for name, mode, rows_per_s in (
        ("20260101T000000Z-quick.json", "quick", 1.0),
        ("20260102T000000Z-quick.json", "quick", 2.0),
        ("20260103T000000Z-full.json", "full", 3.0),
    ):
        (tmp_path / name).write_text(json.dumps({"mode": mode, "full": {"rows_per_s": rows_per_s}}))
    # Then each mode compares with its own latest run
    quick = load_previous(tmp_path, "quick")
    full = load_previous(tmp_path, "full")
    assert quick is not None and quick["full"]["rows_per_s"] == 2.0
    assert full is not None and full["full"]["rows_per_s"] == 3.0
    assert load_previous(tmp_path, "quick-custom") is None


def test_an_unknown_step_is_refused_before_anything_runs(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--only", "full_and_delta,warp_drive", "--results-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "warp_drive" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


NOTIFY = {
    "users": 100_000,
    "fixed_10": 0.53,
    "random": 0.49,
    "intelligent_timing": 0.6,
    "ours": 0.72,
    "oracle": 0.92,
    "ours_vs_intelligent_timing": 1.2,
    "ours_vs_oracle": 0.783,
    "spread": {
        "settings": 10,
        "ours_vs_intelligent_timing_min": 1.08,
        "ours_vs_intelligent_timing_max": 1.3,
        "ours_vs_oracle_min": 0.75,
        "ours_vs_oracle_max": 0.9,
    },
    "plan_cpu_s_per_million": 41.0,
    "settings": [],
}


def test_the_notify_evaluation_has_its_figures_targets_and_lines() -> None:
    # Given a run with the send-time evaluation
    results = assemble(outcomes({**figures(), "notify": NOTIFY}), "quick", MACHINE)
    # Then its five figures and ratios are kept (the per-setting detail stays in its log)
    assert results["notify"]["ours"] == 0.72 and "settings" not in results["notify"]
    verdicts = {(c.row, c.figure): c.met for c in evaluate_targets(results) if c.row == "notify"}
    assert verdicts == {
        ("notify", "ours_vs_intelligent_timing"): True,
        ("notify", "ours_vs_oracle"): False,
        ("notify", "plan_cpu_s_per_million"): True,
    }
    table = render_table(results, None)
    assert "8 Notify send time (100,000 users)" in table
    assert "IT 1.08-1.30x, oracle 0.75-0.90x" in table
    # And a run without it has no notify targets at all
    assert all(c.row != "notify" for c in evaluate_targets(assemble(outcomes(figures()), "quick", MACHINE)))


def test_the_daily_file_is_judged_against_its_own_targets_and_the_baseline() -> None:
    daily = {
        "rows": 100_000,
        "rows_per_s": 48_000.0,
        "cpu_s_per_million": 22.1,
        "requests": 13,
        "changed_values": 3923,
        "data_points": 3923,
        "data_points_per_changed_value": 1.0,
        "records_unchanged": 99_032,
        "changed_rows_share": 0.01,
        "aws_cost": {"usd_per_million_rows": {"total": 0.133}},
    }
    measured = figures()
    measured["full_and_delta"]["daily"] = daily
    results = assemble(outcomes(measured), "quick", MACHINE)
    assert results["daily"]["aws_usd_per_million_rows"] == 0.133
    assert results["ratio_daily_vs_baseline"] == 12.0
    verdicts = {(check.row, check.figure): check.met for check in evaluate_targets(results)}
    assert verdicts[("daily", "cpu_s_per_million")] is False
    assert verdicts[("daily", "ratio_vs_baseline")] is True
    assert verdicts[("daily", "data_points_per_changed_value")] is True


def test_the_chaos_run_has_its_figures_in_the_results_and_its_lines_in_the_table() -> None:
    # Given a chaos run's figures beside the others
    chaos = {
        "rows": 6000,
        "faults": {"status_429": 120, "apply_then_drop": 9},
        "kills": {"mid_request": 7, "after_apply": 5},
        "duplicates_delivered": {"s3_notification": 4, "sqs_message": 2},
        "window_hits": {"apply_then_drop": 9, "caller_gone": 5},
        "window_duplicate_objects": 130,
        "dead_letters": {},
        "mismatches": 0,
        "seconds": 210.0,
    }
    results = assemble(outcomes({**figures(), "chaos": chaos}), "quick", MACHINE)
    # Then the results keep them and the table totals each kind, mismatches against their target of 0
    assert results["chaos"]["kills"] == {"mid_request": 7, "after_apply": 5}
    lines = render_table(results, None).splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("9 chaos (6,000 rows"))
    chaos_lines = lines[first : first + 6]
    assert "129" in chaos_lines[0]
    assert any("kills" in line and "12" in line for line in chaos_lines)
    mismatches = next(line for line in chaos_lines if "mismatches" in line)
    assert mismatches.split()[-3:] == ["0", "0", "met"]


def test_the_bound_is_judged_at_each_latency() -> None:
    measured = figures()
    measured["bound"]["parameters"]["latency_ms"] = 300.0
    for latency_ms, share in ((50.0, 1.04), (1000.0, 0.89)):
        measured[f"bound_{latency_ms:g}ms"] = {
            **measured["bound"],
            "share_of_bound": share,
            "parameters": {"track_limit": "150/3s", "latency_ms": latency_ms},
        }
    results = assemble(outcomes(measured), "full", MACHINE)
    assert list(results["bound_by_latency_ms"]) == ["50", "300", "1000"]
    verdicts = {(check.row, check.figure): check.met for check in evaluate_targets(results)}
    assert verdicts[("bound", "share_of_bound")] is True
    assert verdicts[("bound", "share_of_bound_50ms")] is True
    assert verdicts[("bound", "share_of_bound_1000ms")] is False
    table = render_table(results, None)
    assert "89.0%" in next(line for line in table.splitlines() if "(1,000 ms a request)" in line)
    assert "104.0%" in next(line for line in table.splitlines() if "(50 ms a request)" in line)


def test_the_first_load_and_the_blueconic_delta_have_their_targets() -> None:
    measured = figures(rows_per_s=8000.0)
    measured["full_and_delta"]["full"]["cpu_s_per_million"] = 38.0
    measured["lists_delta"] = {
        "data_points": 5659,
        "changed_values_and_new_elements": 5659,
        "list_elements_resent": 40_716,
        "data_points_per_change": 1.0,
        "aws_usd_per_million_rows": 0.2,
    }
    results = assemble(outcomes(measured), "full", MACHINE)
    checks = {(check.row, check.figure): check for check in evaluate_targets(results)}
    assert checks[("first load", "cpu_s_per_million")].met is True
    assert checks[("first load", "ratio_vs_baseline")].target == ">= 2x baseline"
    assert checks[("lists_delta", "data_points_per_change")].met is True
    table = render_table(results, None)
    assert "<= 40 CPU-s" in table and "<= 1.02x changes" in table


def test_steps_of_one_group_run_side_by_side(tmp_path: Path) -> None:
    """The first script waits for the second one's file: it sees it only if both run at once."""
    signal = tmp_path / "second-started"
    first = tmp_path / "first.py"
    first.write_text(
        "import json, sys, time, pathlib\n"
        f"signal = pathlib.Path({str(signal)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not signal.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "pathlib.Path(sys.argv[-1]).write_text(json.dumps({'saw_second': signal.exists()}))\n"
    )
    second = tmp_path / "second.py"
    second.write_text(
        "import json, sys, pathlib\n"
        f"pathlib.Path({str(signal)!r}).touch()\n"
        "pathlib.Path(sys.argv[-1]).write_text(json.dumps({'started': True}))\n"
    )
    alone = tmp_path / "alone.py"
    alone.write_text("import sys, pathlib\npathlib.Path(sys.argv[-1]).write_text('{\"alone\": true}')\n")
    steps = [
        Step("first", str(first), lambda sizes: [], together="side"),
        Step("second", str(second), lambda sizes: [], together="side"),
        Step("alone", str(alone), lambda sizes: []),
    ]
    results = run_steps(steps, QUICK, tmp_path / "logs")
    assert [outcome.name for outcome in results] == ["first", "second", "alone"]
    assert [outcome.figures for outcome in results] == [
        {"saw_second": True},
        {"started": True},
        {"alone": True},
    ]
