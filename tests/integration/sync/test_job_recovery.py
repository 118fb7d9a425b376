"""Jobs against the emulator after things go wrong: an invocation that dies replaying a retry file, a
part message delivered again after its run ended, a file whose columns no longer fit its mapping."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.braze import AdaptiveTrackCap, TrackOutcome, TrackRequest
from cdpbridge.mapping import load_mapping
from cdpbridge.sources import SourceSpec, plan_byte_ranges
from cdpbridge.sync.job import JobRequest, RunPart, run_part

from ..emulator_admin import Braze
from .conftest import Runner

pytestmark = pytest.mark.integration

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string, strategy: clear}
  - {column: visits, attribute: visits, type: integer, strategy: sum}
events:
  - {name: order_placed, time_column: at}
purchases:
  - {product_id_column: sku, currency: EUR, price_column: amount, time_column: at}
"""
USERS = 30
ROWS_PER_USER = 5


def write_orders(
    path: Path, header: tuple[str, ...] = ("id", "tier", "visits", "at", "amount", "sku")
) -> Path:
    """USERS users with ROWS_PER_USER rows each: a visit, an order event and a purchase per row."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for index in range(USERS * ROWS_PER_USER):
            writer.writerow(
                [
                    f"u{index % USERS}",
                    "gold",
                    "1",
                    f"2026-11-0{1 + index % 9}T10:00:00Z",
                    f"{index}.5",
                    "sku1",
                ]
            )
    return path


def assert_each_row_applied_once(braze: Braze) -> None:
    for n in range(USERS):
        profile = braze.user(f"u{n}")
        assert profile is not None, f"u{n} missing"
        assert profile["attributes"]["visits"] == ROWS_PER_USER
        assert profile["attributes"]["tier"] == "gold"
        assert len(profile["events"]) == ROWS_PER_USER
        assert len(profile["purchases"]) == ROWS_PER_USER


class InvocationDied(Exception):
    pass


def test_an_invocation_that_dies_replaying_a_retry_file_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a run during an outage: every object of the file went to a retry file
    braze.configure(faults={"status_503": 1.0})
    runner.settings_overrides["retry"] = runner.settings_overrides["retry"].model_copy(
        update={"max_attempts": 2}
    )
    first = runner.run(write_orders(tmp_path / "day1.csv"), MAPPING, run_id="day1")
    assert first.report is not None and len(first.report["retry_files"]) == 1
    braze.configure(faults={"status_503": 0.0})

    # When the next run's invocation dies after Braze took the first request of the replay
    day2 = tmp_path / "day2.csv"
    day2.write_text("id,tier,visits,at,amount,sku\n")
    services = runner.services(in_flight=1)
    assert services.client is not None
    track = services.client.track
    calls = {"count": 0}

    def dies_on_the_second_call(request: TrackRequest, cap: AdaptiveTrackCap | None = None) -> TrackOutcome:
        calls["count"] += 1
        if calls["count"] == 2:
            raise InvocationDied
        return track(request, cap)

    services.client.track = dies_on_the_second_call  # type: ignore[method-assign]
    with pytest.raises(InvocationDied):
        runner.run(day2, MAPPING, run_id="day2", services=services)
    assert braze.user_count() > 0
    assert len(list((runner.workdir / "reports" / "retry").glob("**/*.jsonl"))) == 1

    # And its message is delivered again
    again = runner.run(day2, MAPPING, run_id="day2", in_flight=1)

    # Then every row of day 1 is applied exactly once: increments, events and purchases included
    assert again.report is not None and again.report["status"] == "completed"
    assert again.counters.events_already_sent > 0
    assert_each_row_applied_once(braze)
    assert not list((runner.workdir / "reports" / "retry").glob("**/*.jsonl"))


def test_a_part_delivered_again_after_its_run_ended_sends_nothing_and_keeps_the_report(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a run in two parts that ended
    path = write_orders(tmp_path / "orders.csv")
    ranges = plan_byte_ranges(str(path), SourceSpec(format="csv"), target_bytes=path.stat().st_size // 2)
    assert len(ranges) == 2
    request = JobRequest("generic", str(path), "v1", "fanned", datetime.now(UTC), load_mapping(MAPPING))
    parts = [
        replace(request, part=RunPart(str(index), 2, byte_range)) for index, byte_range in enumerate(ranges)
    ]
    run_part(parts[0], runner.services())
    ended = run_part(parts[1], runner.services())
    assert ended.report is not None
    requests = braze.stats()["requests"]

    # When both part messages are delivered again
    again = [run_part(part, runner.services()) for part in reversed(parts)]

    # Then Braze gets nothing, the completing part hands back the same report, the other none
    assert braze.stats()["requests"] == requests
    counted = ("rows_read", "users_written", "attributes_sent", "attributes_unchanged", "events_sent")
    assert again[0].report is not None
    assert {name: again[0].report[name] for name in counted} == {name: ended.report[name] for name in counted}
    assert again[0].report["rows_read"] == USERS * ROWS_PER_USER
    assert again[1].report is None
    assert_each_row_applied_once(braze)


def profiles(braze: Braze) -> dict[str, dict[str, Any]]:
    return {f"u{n}": braze.attributes(f"u{n}") for n in range(USERS)}


def test_a_renamed_clear_column_leaves_every_profile_as_it_was(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given profiles written from a file
    runner.run(write_orders(tmp_path / "day1.csv"), MAPPING, run_id="day1")
    before = profiles(braze)
    requests = braze.stats()["requests"]

    # When the next file spells the clear column 'Tier'
    renamed = write_orders(tmp_path / "day2.csv", header=("id", "Tier", "visits", "at", "amount", "sku"))
    outcome = runner.run(renamed, MAPPING, run_id="day2")

    # Then the run fails naming the column, Braze gets nothing and no profile lost its tier
    assert outcome.report is not None and outcome.report["status"] == "failed"
    assert "no column 'tier'" in outcome.report["failure"]
    assert braze.stats()["requests"] == requests
    assert profiles(braze) == before

    # And with the field optional the file runs, writes the rest, and still unsets nothing
    optional = MAPPING.replace("strategy: clear}", "strategy: clear, optional: true}")
    outcome = runner.run(renamed, optional, run_id="day2-optional")
    assert outcome.report is not None and outcome.report["status"] == "completed"
    assert all(profile["tier"] == "gold" for profile in profiles(braze).values())
    assert all(profile["visits"] == 2 * ROWS_PER_USER for profile in profiles(braze).values())
