"""The embedded state stores for local runs and the CLI: one SQLite file (WAL mode) holds them all.

Each store opens its own connection, shared by its threads behind a lock: SQLite serialises
writers anyway, and one connection keeps every statement of a store in one well-defined order.
Several stores (or processes) may open the same file; WAL lets readers run beside a writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from cdpbridge.state._codec import checkpoint_body, decode_checkpoint, to_json
from cdpbridge.state.contracts import (
    Checkpoint,
    CorruptFieldStateError,
    FieldStateSnapshot,
    RunPartsMismatchError,
    StateStoreError,
    merge_user_state,
    part_order,
    record_applied,
    redact_user_key,
    validate_run_part,
    validate_total_parts,
    validate_workspace,
)
from cdpbridge.state.packing import pack_digests, packed_record_entry, unpack_digests

# Well under SQLite's bound-parameter limit, large enough that a 1,000-user read is two queries.
_KEYS_PER_QUERY: Final = 500

StatePath = str | os.PathLike[str]


class SqliteDatabase:
    """One connection to a state file with the pragmas every store wants, guarded by a lock."""

    def __init__(self, path: StatePath, schema: str) -> None:
        self.path = os.fspath(path)
        special = self.path == ":memory:" or self.path.startswith("file:")
        if not special:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateStoreError(
                    f"SQLite state file {self.path}: cannot create its directory: {exc}"
                ) from exc
        self._lock = threading.Lock()
        try:
            self._connection = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False, uri=special
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode loses nothing when the process dies, only on power loss.
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(schema)
        except sqlite3.Error as exc:
            raise StateStoreError(f"SQLite state file {self.path}: cannot open: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._connection
            except sqlite3.Error as exc:
                raise StateStoreError(f"SQLite state file {self.path}: {exc}") from exc

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A transaction that takes the write lock up front, so it never fails half-way on a busy file."""
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StateStoreError(f"SQLite state file {self.path}: {exc}") from exc
            try:
                yield self._connection
            except BaseException as exc:
                self._connection.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StateStoreError(f"SQLite state file {self.path}: {exc}") from exc
                raise
            else:
                self._connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _KEYS_PER_QUERY):
        yield values[start : start + _KEYS_PER_QUERY]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# -- field-level dedupe state ------------------------------------------------------------------

_FIELD_STATE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS field_state (
    workspace  TEXT    NOT NULL,
    user_key   TEXT    NOT NULL,
    digests    BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, user_key)
) WITHOUT ROWID;
"""


class SqliteFieldStateStore:
    """FieldStateStore in a SQLite file: one row per (workspace, user) holding the packed digests.

    A row per user rather than per attribute: Python spends its time per row fetched, so reading
    1,000 users of 20 attributes costs a twentieth of the rows (measured in bench/bench_state.py).
    ``apply`` reads the rows it changes inside its write transaction, so the merge is atomic even
    with several writers; ``known`` is therefore only kept in step, never trusted as the base.
    """

    def __init__(self, path: StatePath, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SqliteDatabase(path, _FIELD_STATE_SCHEMA)
        self._clock = clock

    @property
    def path(self) -> str:
        return self._db.path

    def _read(
        self, connection: sqlite3.Connection, workspace: str, user_keys: list[str], into: FieldStateSnapshot
    ) -> None:
        for chunk in _chunks(user_keys):
            # Only "?" placeholders are interpolated; every value is bound.
            query = f"SELECT user_key, digests FROM field_state WHERE workspace = ? AND user_key IN ({_placeholders(len(chunk))})"  # nosec B608 # noqa: S608, E501
            for user_key, packed in connection.execute(query, (workspace, *chunk)):
                try:
                    into[user_key] = unpack_digests(packed)
                except CorruptFieldStateError as exc:
                    raise CorruptFieldStateError(
                        f"SQLite state file {self.path}: field state of user {redact_user_key(user_key)} "
                        f"in workspace {workspace} cannot be read: {exc}"
                    ) from None

    def get_many(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        validate_workspace(workspace)
        unique_keys = list(dict.fromkeys(user_keys))
        snapshot = FieldStateSnapshot(covered=unique_keys)
        with self._db.reading() as connection:
            self._read(connection, workspace, unique_keys, snapshot)
        return snapshot

    def get_many_packed(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        """``get_many`` with the states found left packed (``FieldStateSnapshot.hold_packed``)."""
        validate_workspace(workspace)
        unique_keys = list(dict.fromkeys(user_keys))
        snapshot = FieldStateSnapshot(covered=unique_keys)

        def unpack(user_key: str, packed: bytes) -> dict[str, bytes]:
            try:
                return unpack_digests(packed)
            except CorruptFieldStateError as exc:
                raise CorruptFieldStateError(
                    f"SQLite state file {self.path}: field state of user {redact_user_key(user_key)} "
                    f"in workspace {workspace} cannot be read: {exc}"
                ) from None

        with self._db.reading() as connection:
            for chunk in _chunks(unique_keys):
                # Only "?" placeholders are interpolated; every value is bound.
                query = f"SELECT user_key, digests FROM field_state WHERE workspace = ? AND user_key IN ({_placeholders(len(chunk))})"  # nosec B608 # noqa: S608, E501
                # The rows go into the snapshot in one C call: no Python code runs per user.
                rows = connection.execute(query, (workspace, *chunk))
                snapshot.hold_packed(rows, unpack, packed_record_entry)
        return snapshot

    def apply(
        self,
        workspace: str,
        changes: Mapping[str, Mapping[str, bytes | None]],
        known: FieldStateSnapshot | None = None,
    ) -> None:
        validate_workspace(workspace)
        if not changes:
            return
        now = int(self._clock())
        merged_by_user: dict[str, dict[str, bytes]] = {}
        with self._db.writing() as connection:
            stored = FieldStateSnapshot()
            self._read(connection, workspace, list(changes), stored)
            upserts: list[tuple[str, str, bytes, int]] = []
            deletes: list[tuple[str, str]] = []
            for user_key, user_changes in changes.items():
                base = stored.get(user_key, {})
                merged = merged_by_user[user_key] = merge_user_state(base, user_changes)
                if merged == base:
                    continue
                if not merged:
                    deletes.append((workspace, user_key))
                    continue
                try:
                    upserts.append((workspace, user_key, pack_digests(merged), now))
                except ValueError as exc:
                    raise ValueError(
                        f"SQLite state file {self.path}: field state of user {redact_user_key(user_key)} "
                        f"in workspace {workspace}: {exc}"
                    ) from None
            if upserts:
                connection.executemany(
                    "INSERT INTO field_state (workspace, user_key, digests, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (workspace, user_key) "
                    "DO UPDATE SET digests = excluded.digests, updated_at = excluded.updated_at",
                    upserts,
                )
            if deletes:
                connection.executemany(
                    "DELETE FROM field_state WHERE workspace = ? AND user_key = ?", deletes
                )
        record_applied(known, merged_by_user)

    def close(self) -> None:
        self._db.close()


# -- send ledger -------------------------------------------------------------------------------

_LEDGER_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS send_ledger (
    scope   TEXT    NOT NULL,
    item_id TEXT    NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (scope, item_id)
) WITHOUT ROWID;
"""


def _validated_ids(scope: str, ids: Collection[str]) -> list[str]:
    if not scope:
        raise ValueError("a ledger scope must not be empty")
    unique_ids = list(dict.fromkeys(ids))
    if "" in unique_ids:
        raise ValueError("a ledger id must not be empty")
    return unique_ids


class SqliteSendLedger:
    """SendLedger in a SQLite file: one row per acknowledged id."""

    def __init__(self, path: StatePath, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SqliteDatabase(path, _LEDGER_SCHEMA)
        self._clock = clock

    def already_sent(self, scope: str, ids: Collection[str]) -> set[str]:
        unique_ids = _validated_ids(scope, ids)
        sent: set[str] = set()
        with self._db.reading() as connection:
            for chunk in _chunks(unique_ids):
                # Only "?" placeholders are interpolated; every value is bound.
                query = f"SELECT item_id FROM send_ledger WHERE scope = ? AND item_id IN ({_placeholders(len(chunk))})"  # nosec B608 # noqa: S608, E501
                rows = connection.execute(query, (scope, *chunk))
                sent.update(item_id for (item_id,) in rows)
        return sent

    def mark_sent(self, scope: str, ids: Collection[str]) -> None:
        unique_ids = _validated_ids(scope, ids)
        if not unique_ids:
            return
        now = int(self._clock())
        with self._db.writing() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO send_ledger (scope, item_id, sent_at) VALUES (?, ?, ?)",
                [(scope, item_id, now) for item_id in unique_ids],
            )

    def close(self) -> None:
        self._db.close()


# -- checkpoints -------------------------------------------------------------------------------

_CHECKPOINT_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS checkpoint (
    run_id  TEXT    NOT NULL,
    part    TEXT    NOT NULL,
    body    TEXT    NOT NULL,
    done    INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    PRIMARY KEY (run_id, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_completion (
    run_id      TEXT    NOT NULL PRIMARY KEY,
    total_parts INTEGER NOT NULL,
    done_order  TEXT    NOT NULL
) WITHOUT ROWID;
"""


class SqliteCheckpointStore:
    """CheckpointStore in a SQLite file; ``mark_done`` counts parts inside one write transaction."""

    def __init__(self, path: StatePath) -> None:
        self._db = SqliteDatabase(path, _CHECKPOINT_SCHEMA)

    @property
    def path(self) -> str:
        return self._db.path

    def load(self, run_id: str, part: str = "0") -> Checkpoint | None:
        validate_run_part(run_id, part)
        with self._db.reading() as connection:
            row = connection.execute(
                "SELECT part, body, done, summary FROM checkpoint WHERE run_id = ? AND part = ?",
                (run_id, part),
            ).fetchone()
        return None if row is None else self._decode(run_id, row)

    def save(self, checkpoint: Checkpoint, part: str | None = None) -> None:
        part = checkpoint.part if part is None else part
        validate_run_part(checkpoint.run_id, part)
        what = f"checkpoint of run {checkpoint.run_id} part {part}"
        body = checkpoint_body(checkpoint, what)
        summary = None if checkpoint.summary is None else to_json(checkpoint.summary, what)
        with self._db.writing() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO checkpoint (run_id, part, body, done, summary) "
                "VALUES (?, ?, ?, ?, ?)",
                (checkpoint.run_id, part, body, int(checkpoint.done), summary),
            )

    def list_parts(self, run_id: str) -> list[Checkpoint]:
        validate_run_part(run_id, "0")
        with self._db.reading() as connection:
            rows = connection.execute(
                "SELECT part, body, done, summary FROM checkpoint WHERE run_id = ?", (run_id,)
            ).fetchall()
        checkpoints = [self._decode(run_id, row) for row in rows]
        checkpoints.sort(key=lambda checkpoint: part_order(checkpoint.part))
        return checkpoints

    def mark_done(self, run_id: str, part: str, summary: dict[str, Any], *, total_parts: int) -> bool:
        validate_run_part(run_id, part)
        validate_total_parts(run_id, total_parts)
        summary_json = to_json(summary, f"summary of run {run_id} part {part}")
        with self._db.writing() as connection:
            connection.execute(
                "INSERT INTO checkpoint (run_id, part, body, done, summary) VALUES (?, ?, '{}', 1, ?) "
                "ON CONFLICT (run_id, part) DO UPDATE SET done = 1, summary = excluded.summary",
                (run_id, part, summary_json),
            )
            row = connection.execute(
                "SELECT total_parts, done_order FROM run_completion WHERE run_id = ?", (run_id,)
            ).fetchone()
            stored_total, done_order = (
                (total_parts, []) if row is None else (int(row[0]), orjson.loads(row[1]))
            )
            if stored_total != total_parts:
                raise RunPartsMismatchError(
                    f"run {run_id}: part {part} says the run has {total_parts} parts, "
                    f"earlier parts said {stored_total}"
                )
            if part in done_order:
                return len(done_order) == total_parts and done_order[-1] == part
            if len(done_order) >= total_parts:
                raise RunPartsMismatchError(
                    f"run {run_id}: part {part} finished after all {total_parts} declared parts were done "
                    f"({', '.join(done_order)})"
                )
            done_order.append(part)
            connection.execute(
                "INSERT OR REPLACE INTO run_completion (run_id, total_parts, done_order) VALUES (?, ?, ?)",
                (run_id, total_parts, orjson.dumps(done_order).decode()),
            )
            return len(done_order) == total_parts

    def _decode(self, run_id: str, row: tuple[str, str, int, str | None]) -> Checkpoint:
        part, body_json, done, summary_json = row
        where = f"SQLite state file {self.path}: checkpoint of run {run_id} part {part}"
        return decode_checkpoint(
            run_id, part, body_json=body_json, done=bool(done), summary_json=summary_json, where=where
        )

    def close(self) -> None:
        self._db.close()
