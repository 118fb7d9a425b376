"""An increment a previous run already delivered is left out of the object, and out of its cost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.engine import EngineOptions, SyncEngine, ledger_id
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

SCOPE = "file.csv@1"
POSITION = RowPosition("file.csv", 1, 0)


class OneRow:
    def __iter__(self) -> Iterator[SourceRow]:
        return iter([SourceRow(POSITION, {})])

    def resume_point(self) -> None:
        return None


class Mapper:
    def map_row(self, row: SourceRow) -> UserUpdate:
        return UserUpdate(
            row.position,
            "external_id:u1",
            {"external_id": "u1"},
            attributes={
                "visits": AttributeWrite(3, WriteMode.INCREMENT),
                "tier": AttributeWrite("gold"),
                "city": AttributeWrite("Lyon"),
            },
        )


def run(tmp_path: Path, *, increment_sent: bool) -> SyncEngine:
    state = tmp_path / "state.sqlite3"
    ledger = SqliteSendLedger(state)
    if increment_sent:
        ledger.mark_sent(SCOPE, [ledger_id(POSITION, "attributes", 0)])
    engine = SyncEngine(
        client=None,
        field_state=SqliteFieldStateStore(state),
        ledger=ledger,
        options=EngineOptions(workspace="w", dry_run=True),
        rejects=RejectsWriter(LocalArtifactStore(tmp_path), "rejects"),
        retry_sink=lambda entries: None,
    )
    engine.run(OneRow(), Mapper(), scope=SCOPE)
    return engine


def test_a_delivered_increment_is_neither_sent_again_nor_billed(tmp_path: Path) -> None:
    first = run(tmp_path / "a", increment_sent=False)
    again = run(tmp_path / "b", increment_sent=True)
    assert first.counters.data_points_sent == 3
    assert again.counters.events_already_sent == 1
    assert again.counters.data_points_sent == 2
    assert again.counters.attributes_sent == 2
