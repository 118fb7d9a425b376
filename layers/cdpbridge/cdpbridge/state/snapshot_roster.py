"""The roster of a snapshot feed: which (user, member) pairs each run of the feed saw.

A partner that sends complete snapshots (every user and every audience they are in, each time)
says "left" only by leaving a pair out. The snapshot is streamed through the engine once; every pair
it names is marked seen by the run (``mark_seen``). After the last row, the pairs the run did not
see are read back page by page (``unseen``) and removed from Braze, then forgotten. Memory stays
that of one page, whatever the feed's size: the roster lives in the store, not in the function.

The roster says what the snapshots said, not what Braze holds: that is the field state, written
only for what Braze acknowledged. ``begin`` also tells whether a run is the feed's first snapshot
(the same answer for every invocation of that run), which a partner's "existing users" option needs.

SQLite (local runs): table ``snapshot_roster`` (scope, user_key, member, identifier, seen_run) and
``snapshot_feeds`` (scope, first_run). DynamoDB: items in the run-state table, ``pk``
"roster#<scope>", ``sk`` "m#<user_key>#<member>" with ``ident`` (S, JSON) and ``seen`` (S, run id),
and ``sk`` "first" with ``run`` (S) per feed; no TTL, the roster lasts as long as the feed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from cdpbridge.state._dynamo import (
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    Backoff,
    batch_write,
    bounded_key_text,
    default_client,
    is_conditional_check_failure,
)
from cdpbridge.state.sqlite_state import SqliteDatabase

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PAGE_SIZE: Final = 500


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One (user, member) pair of a feed, with the identifier that writes to the user."""

    user_key: str
    member: str
    identifier: dict[str, Any]


class SnapshotRoster(Protocol):
    def begin(self, scope: str, run_id: str) -> bool:
        """Whether ``run_id`` is the first snapshot of ``scope``; the first call claims it."""
        ...

    def release(self, scope: str, run_id: str) -> None:
        """Gives up ``run_id``'s claim to be the first snapshot (it failed): the next run is first."""
        ...

    def mark_seen(self, scope: str, run_id: str, entries: Sequence[RosterEntry]) -> None: ...

    def keep_users(self, scope: str, run_id: str, user_keys: Sequence[str]) -> None:
        """Marks every pair of these users seen by ``run_id`` (their rows could not be read whole)."""
        ...

    def unseen(self, scope: str, run_id: str) -> Iterator[list[RosterEntry]]:
        """Pages of the pairs ``run_id`` did not see, ordered by user; forgetting some between
        pages is allowed."""
        ...

    def forget(self, scope: str, entries: Sequence[RosterEntry]) -> None: ...


_ROSTER_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS snapshot_roster (
    scope      TEXT NOT NULL,
    user_key   TEXT NOT NULL,
    member     TEXT NOT NULL,
    identifier TEXT NOT NULL,
    seen_run   TEXT NOT NULL,
    PRIMARY KEY (scope, user_key, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_feeds (
    scope     TEXT PRIMARY KEY,
    first_run TEXT NOT NULL
) WITHOUT ROWID;
"""


class SqliteSnapshotRoster:
    """SnapshotRoster in the local state file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = SqliteDatabase(path, _ROSTER_SCHEMA)

    def begin(self, scope: str, run_id: str) -> bool:
        with self._db.writing() as connection:
            connection.execute(
                "INSERT INTO snapshot_feeds (scope, first_run) VALUES (?, ?) ON CONFLICT (scope) DO NOTHING",
                (scope, run_id),
            )
            (first,) = connection.execute(
                "SELECT first_run FROM snapshot_feeds WHERE scope = ?", (scope,)
            ).fetchone()
        return bool(first == run_id)

    def release(self, scope: str, run_id: str) -> None:
        with self._db.writing() as connection:
            connection.execute(
                "DELETE FROM snapshot_feeds WHERE scope = ? AND first_run = ?", (scope, run_id)
            )

    def mark_seen(self, scope: str, run_id: str, entries: Sequence[RosterEntry]) -> None:
        if not entries:
            return
        with self._db.writing() as connection:
            connection.executemany(
                "INSERT INTO snapshot_roster (scope, user_key, member, identifier, seen_run) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, user_key, member) "
                "DO UPDATE SET identifier = excluded.identifier, seen_run = excluded.seen_run",
                [
                    (scope, entry.user_key, entry.member, orjson.dumps(entry.identifier).decode(), run_id)
                    for entry in entries
                ],
            )

    def keep_users(self, scope: str, run_id: str, user_keys: Sequence[str]) -> None:
        if not user_keys:
            return
        with self._db.writing() as connection:
            connection.executemany(
                "UPDATE snapshot_roster SET seen_run = ? WHERE scope = ? AND user_key = ?",
                [(run_id, scope, user_key) for user_key in dict.fromkeys(user_keys)],
            )

    def unseen(self, scope: str, run_id: str) -> Iterator[list[RosterEntry]]:
        after = ("", "")
        while True:
            with self._db.reading() as connection:
                rows = connection.execute(
                    "SELECT user_key, member, identifier FROM snapshot_roster "
                    "WHERE scope = ? AND (user_key, member) > (?, ?) AND seen_run != ? "
                    "ORDER BY user_key, member LIMIT ?",
                    (scope, *after, run_id, PAGE_SIZE),
                ).fetchall()
            if not rows:
                return
            after = (rows[-1][0], rows[-1][1])
            yield [RosterEntry(user_key, member, orjson.loads(ident)) for user_key, member, ident in rows]

    def forget(self, scope: str, entries: Sequence[RosterEntry]) -> None:
        if not entries:
            return
        with self._db.writing() as connection:
            connection.executemany(
                "DELETE FROM snapshot_roster WHERE scope = ? AND user_key = ? AND member = ?",
                [(scope, entry.user_key, entry.member) for entry in entries],
            )

    def close(self) -> None:
        self._db.close()


_FIRST: Final = "first"


class DynamoDbSnapshotRoster:
    """SnapshotRoster in the run-state table (see the module docstring for the item layout)."""

    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, backoff: Backoff | None = None
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._backoff = backoff or Backoff()
        self._lock = threading.Lock()

    @property
    def client(self) -> DynamoDBClient:
        with self._lock:
            if self._client is None:
                self._client = default_client()
            return self._client

    @staticmethod
    def _pk(scope: str) -> dict[str, str]:
        return {"S": bounded_key_text(f"roster#{scope}", MAX_PARTITION_KEY_BYTES)}

    @staticmethod
    def _sk(entry: RosterEntry) -> dict[str, str]:
        return {"S": bounded_key_text(f"m#{entry.user_key}#{entry.member}", MAX_SORT_KEY_BYTES)}

    def begin(self, scope: str, run_id: str) -> bool:
        response = self.client.update_item(
            TableName=self.table_name,
            Key={"pk": self._pk(scope), "sk": {"S": _FIRST}},
            UpdateExpression="SET #run = if_not_exists(#run, :run)",
            ExpressionAttributeNames={"#run": "run"},
            ExpressionAttributeValues={":run": {"S": run_id}},
            ReturnValues="ALL_NEW",
        )
        return response["Attributes"]["run"].get("S") == run_id

    def release(self, scope: str, run_id: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": self._pk(scope), "sk": {"S": _FIRST}},
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#run": "run"},
                ExpressionAttributeValues={":run": {"S": run_id}},
            )
        except Exception as exc:
            if not is_conditional_check_failure(exc):
                raise

    def mark_seen(self, scope: str, run_id: str, entries: Sequence[RosterEntry]) -> None:
        self._batch(
            [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": self._pk(scope),
                            "sk": self._sk(entry),
                            "user_key": {"S": entry.user_key},
                            "member": {"S": entry.member},
                            "ident": {"S": orjson.dumps(entry.identifier).decode()},
                            "seen": {"S": run_id},
                        }
                    }
                }
                for entry in _unique(entries)
            ]
        )

    def keep_users(self, scope: str, run_id: str, user_keys: Sequence[str]) -> None:
        kept: list[RosterEntry] = []
        for user_key in dict.fromkeys(user_keys):
            prefix = f"m#{user_key}#"
            start: Mapping[str, Any] | None = None
            while True:
                arguments: dict[str, Any] = {
                    "TableName": self.table_name,
                    "KeyConditionExpression": "pk = :pk AND begins_with(sk, :user)",
                    "ExpressionAttributeValues": {":pk": self._pk(scope), ":user": {"S": prefix}},
                }
                if start is not None:
                    arguments["ExclusiveStartKey"] = start
                response = self.client.query(**arguments)
                kept += [
                    _entry(item) for item in response.get("Items", []) if item["user_key"]["S"] == user_key
                ]
                start = response.get("LastEvaluatedKey")
                if not start:
                    break
        self.mark_seen(scope, run_id, kept)

    def unseen(self, scope: str, run_id: str) -> Iterator[list[RosterEntry]]:
        start: Mapping[str, Any] | None = None
        while True:
            arguments: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :m)",
                "FilterExpression": "seen <> :run",
                "ExpressionAttributeValues": {
                    ":pk": self._pk(scope),
                    ":m": {"S": "m#"},
                    ":run": {"S": run_id},
                },
                "Limit": PAGE_SIZE,
            }
            if start is not None:
                arguments["ExclusiveStartKey"] = start
            response = self.client.query(**arguments)
            page = [_entry(item) for item in response.get("Items", [])]
            if page:
                yield page
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def forget(self, scope: str, entries: Sequence[RosterEntry]) -> None:
        self._batch(
            [
                {"DeleteRequest": {"Key": {"pk": self._pk(scope), "sk": self._sk(entry)}}}
                for entry in _unique(entries)
            ]
        )

    def _batch(self, requests: list[Any]) -> None:
        batch_write(self.client, self.table_name, requests, backoff=self._backoff)

    def close(self) -> None:
        return None


def _entry(item: Mapping[str, Any]) -> RosterEntry:
    return RosterEntry(item["user_key"]["S"], item["member"]["S"], orjson.loads(item["ident"]["S"]))


def _unique(entries: Sequence[RosterEntry]) -> list[RosterEntry]:
    """One entry per (user, member): a batch may not name the same item twice."""
    return list({(entry.user_key, entry.member): entry for entry in entries}.values())
