"""Unchanged records: a record whose digest is the one Braze acknowledged last for its user is
skipped after reading it and its identifier, with no mapping, no state write and no request; every
case where Braze may hold something else maps it as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdpbridge.mapping import Mapper, load_mapping
from cdpbridge.records import SourceRow
from cdpbridge.state import RECORD_DIGEST_KEY, FieldStateSnapshot
from cdpbridge.sync.engine import RunResult
from cdpbridge.updates import UserUpdate
from tests.unit.sync.test_engine_repeated_users import SCOPE, FakeBraze, Rows, Setup, first_time

CONFIG = """
version: 1
identifier: {column: id, as: external_id}
fields:
  - {column: city, attribute: city}
  - {column: tier, attribute: tier}
"""


class CountingMapper:
    """The real mapper, counting the rows it maps."""

    def __init__(self, config: str = CONFIG) -> None:
        self.mapper = Mapper(load_mapping(config))
        self.mapped = 0

    def record_digest(self, row: SourceRow) -> tuple[str, bytes] | None:
        return self.mapper.record_digest(row)

    def map_row(self, row: SourceRow) -> UserUpdate:
        self.mapped += 1
        return self.mapper.map_row(row)


class CountingStore:
    """Counts the state reads and writes the engine makes, passing them to the real store."""

    def __init__(self, setup: Setup) -> None:
        self.store = setup.store
        self.reads = 0
        self.writes = 0

    def get_many(self, workspace: str, user_keys: Any) -> FieldStateSnapshot:
        self.reads += 1
        return self.store.get_many(workspace, user_keys)

    def apply(self, workspace: str, changes: Any, known: FieldStateSnapshot | None = None) -> None:
        self.writes += 1
        self.store.apply(workspace, changes, known)

    def close(self) -> None:
        self.store.close()


def run(
    setup: Setup,
    braze: FakeBraze | None,
    rows: list[tuple[str, dict[str, Any]]],
    mapper: CountingMapper | None = None,
    **options: Any,
) -> tuple[RunResult, CountingMapper, CountingStore]:
    mapper = mapper or CountingMapper()
    engine = setup.engine(braze, **options)
    store = CountingStore(setup)
    engine.field_state = store
    result = engine.run(Rows(rows), mapper, scope=SCOPE)
    return result, mapper, store


FILE = [("u1", {"city": "Paris", "tier": "gold"}), ("u2", {"city": "Rome", "tier": "silver"})]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_file_sent_again_costs_one_state_read_and_nothing_else(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    sent_before = len(braze.objects)
    # When the same file comes again
    result, mapper, store = run(setup, braze, FILE)
    # Then no row is mapped, nothing is written or sent, and one state read served the chunk
    assert result.finished
    assert mapper.mapped == 0
    assert len(braze.objects) == sent_before
    assert (store.reads, store.writes) == (1, 0)
    assert result.counters.records_unchanged == 2
    assert result.counters.requests == 0
    assert result.counters.users == 0
    # And the report still counts what the skipped records were worth as saved
    assert result.counters.attributes_unchanged == 4
    assert result.counters.data_points_saved == 4


def test_only_the_changed_record_is_mapped_and_only_its_changed_value_sent(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    changed = [("u1", {"city": "Lyon", "tier": "gold"}), FILE[1]]
    result, mapper, _ = run(setup, braze, changed)
    assert mapper.mapped == 1
    assert braze.objects[-1] == {"external_id": "u1", "city": "Lyon"}
    assert result.counters.records_unchanged == 1
    assert result.counters.attributes_sent == 1
    # And the day after, the changed record is known by its new digest
    again, mapper, _ = run(setup, braze, changed)
    assert mapper.mapped == 0 and again.counters.records_unchanged == 2


def test_a_changed_mapping_maps_every_record_once_then_skips_them_again(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    sent_before = len(braze.objects)
    # A mapping that reads the same columns into the same attributes, written differently
    changed_config = CONFIG + "null_values: ['', 'n/a']\n"
    result, mapper, store = run(setup, braze, FILE, CountingMapper(changed_config))
    # Every row is mapped; the values are unchanged so nothing is sent, the record digests are noted
    assert mapper.mapped == 2
    assert len(braze.objects) == sent_before
    assert result.counters.attributes_unchanged == 4
    assert store.writes == 1
    _, mapper, store = run(setup, braze, FILE, CountingMapper(changed_config))
    assert mapper.mapped == 0 and store.writes == 0


@pytest.mark.parametrize("chunk_rows", [1500, 1], ids=["same chunk", "row by row"])
def test_a_later_row_that_restores_the_acknowledged_record_is_sent(setup: Setup, chunk_rows: int) -> None:
    braze = FakeBraze()
    run(setup, braze, [("u1", {"city": "Paris", "tier": "gold"})])
    # When a file moves u1 to Lyon, then back to the record Braze acknowledged yesterday
    rows = [("u1", {"city": "Lyon", "tier": "gold"}), ("u1", {"city": "Paris", "tier": "gold"})]
    result, _, _ = run(setup, braze, rows, chunk_rows=chunk_rows)
    # Then the second row is not taken for unchanged: Braze ends with Paris
    assert braze.sent("u1", "city") == ["Paris", "Lyon", "Paris"]
    assert braze.profiles["u1"]["city"] == "Paris"
    assert result.counters.records_unchanged == 0
    # The second row was planned against the first one's, not against acknowledged state alone:
    # its record digest is not kept. The day after it is mapped once (nothing to send) and noted,
    sent = len(braze.objects)
    _, mapper, _ = run(setup, braze, [("u1", {"city": "Paris", "tier": "gold"})])
    assert mapper.mapped == 1 and len(braze.objects) == sent
    # and from then on recognised
    last, mapper, _ = run(setup, braze, [("u1", {"city": "Paris", "tier": "gold"})])
    assert mapper.mapped == 0 and last.counters.records_unchanged == 1


def test_a_user_held_behind_a_retry_file_is_not_skipped(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    engine = setup.engine(braze)
    engine.held_users.add("external_id:u1")
    mapper = CountingMapper()
    result = engine.run(Rows(FILE[:1]), mapper, scope=SCOPE)
    # The record goes behind the held object, to the retry file, instead of being skipped
    assert mapper.mapped == 1
    assert result.counters.records_unchanged == 0
    assert [entry.ref.user_key for entry in setup.retry] == ["external_id:u1"]


def test_a_full_refresh_sends_every_record_again(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    result, mapper, _ = run(setup, braze, FILE, full_refresh=True)
    assert mapper.mapped == 2
    assert result.counters.records_unchanged == 0
    assert result.counters.attributes_sent == 4


def test_a_record_braze_refused_is_not_taken_for_acknowledged(setup: Setup) -> None:
    refused: list[dict[str, Any]] = []
    braze = FakeBraze(first_time({"external_id": "u1", "city": "Lyon"}, refused))
    run(setup, braze, FILE)
    moved = [("u1", {"city": "Lyon", "tier": "gold"})]
    run(setup, braze, moved)
    assert refused
    # Braze still holds Paris: the same record is mapped and sent the next day
    _, mapper, _ = run(setup, braze, moved)
    assert mapper.mapped == 1
    assert braze.profiles["u1"]["city"] == "Lyon"
    # While the record Braze does hold is recognised
    _, mapper, _ = run(setup, braze, [("u1", {"city": "Lyon", "tier": "gold"})])
    assert mapper.mapped == 0


def test_a_write_without_a_record_digest_forgets_the_stored_one(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    # Another mapping (its add strategy makes its records unrecognisable) moves u1 to Lyon
    other = CONFIG + "  - {column: tags, attribute: tags, strategy: add}\n"
    run(setup, braze, [("u1", {"city": "Lyon", "tier": "gold", "tags": "x"})], CountingMapper(other))
    assert RECORD_DIGEST_KEY not in setup.digests("u1")
    # The first mapping's unchanged record is then mapped, and Paris sent again
    _, mapper, _ = run(setup, braze, FILE[:1])
    assert mapper.mapped == 1
    assert braze.profiles["u1"]["city"] == "Paris"


def test_a_record_with_an_invalid_field_is_mapped_each_time_so_its_issue_is_reported(setup: Setup) -> None:
    config = CONFIG + "  - {column: age, attribute: age, type: integer}\non_invalid: skip_field\n"
    braze = FakeBraze()
    rows = [("u1", {"city": "Paris", "tier": "gold", "age": "old"})]
    run(setup, braze, rows, CountingMapper(config))
    result, mapper, _ = run(setup, braze, rows, CountingMapper(config))
    assert mapper.mapped == 1
    assert sum(result.counters.rejects_by_reason.values()) == 1


def test_a_dry_run_skips_unchanged_records_too(setup: Setup) -> None:
    braze = FakeBraze()
    run(setup, braze, FILE)
    result, mapper, store = run(setup, None, FILE)
    assert mapper.mapped == 0 and store.writes == 0
    assert result.counters.records_unchanged == 2


def test_a_list_sent_again_costs_only_its_new_elements(setup: Setup) -> None:
    """Lists as sets: add writes are deduped per element against what Braze acknowledged."""
    config = """
version: 1
identifier: {column: id, as: external_id}
fields:
  - {column: tags, attribute: tags, strategy: add, separator: ","}
"""
    braze = FakeBraze()
    run(setup, braze, [("u1", {"tags": "a,b"})], CountingMapper(config))
    result, _, _ = run(setup, braze, [("u1", {"tags": "a,b,c"})], CountingMapper(config))
    assert braze.objects[-1] == {"external_id": "u1", "tags": {"add": ["c"]}}
    assert result.counters.data_points_sent == 1
    assert result.counters.data_points_saved == 2
    sent = len(braze.objects)
    result, _, _ = run(setup, braze, [("u1", {"tags": "a,b,c"})], CountingMapper(config))
    assert len(braze.objects) == sent
    assert result.counters.requests == 0
