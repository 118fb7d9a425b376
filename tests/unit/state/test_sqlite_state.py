"""What only the SQLite stores do: one file for all, WAL mode, a caller-chosen path."""

from __future__ import annotations

import sqlite3

import pytest

from cdpbridge.state import (
    Checkpoint,
    SqliteCheckpointStore,
    SqliteFieldStateStore,
    SqliteSendLedger,
    StateStoreError,
    value_digest,
)


def test_all_stores_share_one_file_in_wal_mode(tmp_path):
    # Given the CLI's default layout: every store in one file under a directory that does not exist yet
    path = tmp_path / ".cdpbridge" / "state.sqlite3"
    field_state, ledger, checkpoints = (
        SqliteFieldStateStore(path),
        SqliteSendLedger(path),
        SqliteCheckpointStore(path),
    )
    # When each is used
    field_state.apply("ws", {"u": {"a": value_digest(1)}})
    ledger.mark_sent("scope", ["1:e0"])
    checkpoints.save(Checkpoint(run_id="r", scope="scope"))
    for store in (field_state, ledger, checkpoints):
        store.close()
    # Then a new process (connection) sees all of it, in a WAL-mode file
    reopened = SqliteFieldStateStore(path)
    assert reopened.get_many("ws", ["u"]) == {"u": {"a": value_digest(1)}}
    assert SqliteSendLedger(path).already_sent("scope", ["1:e0"]) == {"1:e0"}
    assert SqliteCheckpointStore(path).load("r") is not None
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_failed_transaction_leaves_nothing_behind(tmp_path):
    # Given a store and a batch whose second user is invalid
    store = SqliteFieldStateStore(tmp_path / "s.sqlite3")
    # When applied / Then it is refused and the first user was not written either
    with pytest.raises(ValueError, match="must be 8 bytes"):
        store.apply("ws", {"u1": {"a": value_digest(1)}, "u2": {"a": b"short"}})
    assert store.get_many("ws", ["u1"]) == {}


def test_unusable_path_is_a_clear_error(tmp_path):
    # Given a path whose parent is a file
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    # When a store is opened there / Then the error names the path
    with pytest.raises(StateStoreError, match=r"state\.sqlite3: cannot create its directory"):
        SqliteFieldStateStore(blocker / "state.sqlite3")
