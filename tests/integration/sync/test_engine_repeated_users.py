"""A file naming the same users many times, over real HTTP with requests in flight: Braze ends
with each user's last value in the file, and only the writes that change what it holds are sent."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from ..emulator_admin import Braze
from .conftest import Runner

pytestmark = pytest.mark.integration

USERS = 40
ROWS = 800
SHOPS = ("Paris", "Lyon", "Nice")

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: shop, attribute: shop, type: string, strategy: set}
  - {column: plan, attribute: plan, type: string, strategy: set}
"""


def write_rows(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "shop", "plan"])
        writer.writerows(rows)
    return path


def replay_in_file_order(
    held: dict[str, dict[str, str]], rows: list[tuple[str, str, str]]
) -> tuple[dict[str, dict[str, str]], int]:
    """What Braze holds after ``rows`` applied one by one, and how many values changed on the way."""
    held = {user: dict(values) for user, values in held.items()}
    changes = 0
    for user, shop, plan in rows:
        profile = held.setdefault(user, {})
        for name, value in (("shop", shop), ("plan", plan)):
            if profile.get(name) != value:
                profile[name] = value
                changes += 1
    return held, changes


@pytest.mark.parametrize("chunk_rows", [1, 7, 1500])
def test_repeated_users_end_with_their_last_value_and_only_changes_are_sent(
    tmp_path: Path, braze: Braze, runner: Runner, chunk_rows: int
) -> None:
    # Given every user stored and held in Braze with Paris/gold by an earlier run
    start = [(f"u{n}", "Paris", "gold") for n in range(USERS)]
    runner.run(write_rows(tmp_path / "day1.csv", start), MAPPING)
    held_before, _ = replay_in_file_order({}, start)
    billed_before = braze.stats()["data_points"]
    # And a file naming each user about twenty times, values often going back to earlier ones,
    # the same user often in the same chunk and in the same request
    rng = random.Random(chunk_rows)
    rows = [
        (f"u{rng.randrange(USERS)}", rng.choice(SHOPS), rng.choice(("gold", "gold", "silver")))
        for _ in range(ROWS)
    ]
    expected, changes = replay_in_file_order(held_before, rows)
    # When it runs against a slow Braze, so that requests are in flight while later rows are planned
    braze.configure(latency_ms=15)
    outcome = runner.run(write_rows(tmp_path / "day2.csv", rows), MAPPING, chunk_rows=chunk_rows, in_flight=4)
    # Then every user holds its last value in the file
    assert outcome.finished
    for user, values in expected.items():
        assert {name: braze.attributes(user).get(name) for name in values} == values, user
    # And exactly the changes were sent, none of them a value Braze already held
    assert outcome.counters.attributes_sent == changes
    assert outcome.counters.attributes_unchanged == 2 * ROWS - changes
    assert braze.stats()["data_points"] - billed_before == changes
    assert braze.stats()["unchanged_writes"] == 0
    # And a second run of the same file, starting from the committed last values, again sends
    # exactly the changes on the way
    again = runner.run(tmp_path / "day2.csv", MAPPING, run_id="again", chunk_rows=chunk_rows)
    assert again.counters.attributes_sent == replay_in_file_order(expected, rows)[1]
    assert braze.stats()["unchanged_writes"] == 0
