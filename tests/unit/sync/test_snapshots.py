"""Snapshot phases around a run: first-snapshot recording, seen marks before checkpoints, which files
are read whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdpbridge.integrations.lytics.transform import LyticsTransformer
from cdpbridge.mapping import Mapper, parse_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state import SqliteSnapshotRoster
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.snapshots import SnapshotRun, reads_whole_file


def lytics(**settings: Any) -> LyticsTransformer:
    document = {
        "version": 1,
        "integration": "lytics",
        "identifier": {"column": "external_id"},
        "lytics": {"feed": "members", **settings},
    }
    return LyticsTransformer(parse_mapping(document))


def test_only_snapshot_transformers_get_snapshot_phases(tmp_path: Path) -> None:
    roster = SqliteSnapshotRoster(tmp_path / "state.sqlite3")
    generic = Mapper(parse_mapping({"version": 1, "identifier": {"column": "id"}}))
    assert SnapshotRun.begin(generic, roster, "run-1", "ws") is None
    assert SnapshotRun.begin(lytics(mode="delta"), roster, "run-1", "ws") is None
    assert reads_whole_file(lytics().config) and not reads_whole_file(lytics(mode="delta").config)
    with pytest.raises(ValueError, match="snapshot roster"):
        SnapshotRun.begin(lytics(), None, "run-1", "ws")


def test_the_first_snapshot_without_existing_users_reads_with_a_recording_transformer(tmp_path: Path) -> None:
    roster = SqliteSnapshotRoster(tmp_path / "state.sqlite3")
    first = SnapshotRun.begin(lytics(existing_users=False), roster, "run-1", "ws")
    assert first is not None and first.first
    assert isinstance(first.mapper, LyticsTransformer) and first.mapper.record_only
    later = SnapshotRun.begin(lytics(existing_users=False), roster, "run-2", "ws")
    assert later is not None and not later.first
    assert isinstance(later.mapper, LyticsTransformer) and not later.mapper.record_only


def test_seen_pairs_are_stored_before_each_checkpoint(tmp_path: Path) -> None:
    # Given a second snapshot run (the first one saw u1 in a and b)
    roster = SqliteSnapshotRoster(tmp_path / "state.sqlite3")
    first = SnapshotRun.begin(lytics(), roster, "run-1", "ws")
    assert first is not None
    marking = first.marking(first.mapper)
    marking.map_row(SourceRow(RowPosition("f", 1), {"external_id": "u1", "audiences": "a|b"}))
    first.flush()
    run = SnapshotRun.begin(lytics(), roster, "run-2", "ws")
    assert run is not None
    # When a row of u1 in a is mapped and a checkpoint saved
    run.marking(run.mapper).map_row(SourceRow(RowPosition("f", 1), {"external_id": "u1", "audiences": "a"}))
    saved: list[Any] = []
    run.checkpointing(lambda resume, counters: saved.append(resume))("resume-point", RunCounters())
    # Then the pair is stored before the checkpoint, and only b is unseen
    assert saved == ["resume-point"]
    unseen = [(e.user_key, e.member) for page in roster.unseen("ws/lytics/members", "run-2") for e in page]
    assert unseen == [("external_id:u1", "b")]
