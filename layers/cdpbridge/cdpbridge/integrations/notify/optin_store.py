"""The opt-in history store: each hashed user's groups and newest events, across export files.

Opt-in exports land in ``inbound/notify/optin/``; each file's good rows are merged here, keyed by
``email_sha256`` (raw e-mails never reach the bridge). A user keeps their latest segment and
sub-segment and their newest ``max_events`` distinct events (sends kept too: they tell machine
opens apart), so a year of history stays bounded whatever the number of files. Re-reading a file
adds nothing: an event already kept is not added twice.

Events are packed 6 bytes each: occurred_at (uint32 epoch s), event type (uint8: 0 send, 1 open,
2 click, 3 purchase) and the local hour of week written in the file (uint8; 255 when the time was
written with Z and the user's zone decides it at planning time).

DynamoDB layout (NotifyOptinTable, on demand): HASH pk (S) = email_sha256; g (S) segment, sg (S)
sub-segment, gt (N) when the group was seen, e (B) packed events, v (N) version for conditional
merges, t (N) last write.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from cdpbridge.integrations.notify.model import GroupKey
from cdpbridge.integrations.notify.optin import (
    ENGAGEMENT_OF,
    OptinEvent,
    OptinEventType,
    OptinHistory,
    OptinUser,
)
from cdpbridge.state import Backoff, StateStoreUnavailableError, batch_get, default_client
from cdpbridge.state.sqlite_state import SqliteDatabase, StatePath
from cdpbridge.state.tables import KeyAttribute, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPTIN_HISTORY_TABLE: Final = TableSpec(
    logical_name="NotifyOptinTable", hash_key=KeyAttribute("pk"), range_key=None, ttl_attribute=None
)
DEFAULT_MAX_EVENTS: Final = 1024
_PACKED: Final = struct.Struct(">IBB")
_NO_HOUR: Final = 255
_TYPE_CODES: Final[Mapping[OptinEventType, int]] = {
    OptinEventType.SEND: 0,
    OptinEventType.OPEN: 1,
    OptinEventType.CLICK: 2,
    OptinEventType.PURCHASE: 3,
}
_TYPES_BY_CODE: Final = {code: kind for kind, code in _TYPE_CODES.items()}

# (occurred_at, type code, local hour of week or 255)
PackedEvent = tuple[int, int, int]


@dataclass(slots=True)
class StoredOptinUser:
    segment: str | None
    sub_segment: str | None
    group_seen_at: int
    events: set[PackedEvent]


def _pack(events: Iterable[PackedEvent]) -> bytes:
    return b"".join(_PACKED.pack(*event) for event in events)


def _unpack(data: bytes) -> set[PackedEvent]:
    if len(data) % _PACKED.size:
        raise ValueError(f"packed opt-in events are {len(data)} bytes, not a multiple of {_PACKED.size}")
    return set(_PACKED.iter_unpack(data))


def _packed_event(event: OptinEvent) -> PackedEvent:
    hour = event.local_hour_of_week if event.local_hour_of_week is not None else _NO_HOUR
    return (event.occurred_at, _TYPE_CODES[event.event_type], hour)


def _merge(current: StoredOptinUser | None, new: Sequence[OptinEvent], limit: int) -> StoredOptinUser:
    merged = current or StoredOptinUser(None, None, -1, set())
    for event in new:
        merged.events.add(_packed_event(event))
        if event.occurred_at >= merged.group_seen_at:
            # A user's segment can change during the year: the latest row says where they are now.
            merged.segment, merged.sub_segment = event.segment, event.sub_segment
            merged.group_seen_at = event.occurred_at
    if len(merged.events) > limit:
        merged.events = set(sorted(merged.events, reverse=True)[:limit])
    return merged


def _grouped(events: Iterable[OptinEvent]) -> dict[str, list[OptinEvent]]:
    by_user: dict[str, list[OptinEvent]] = {}
    for event in events:
        by_user.setdefault(event.email_sha256, []).append(event)
    return by_user


def history_of(users: Mapping[str, StoredOptinUser]) -> OptinHistory:
    """The stored users as the planner's OptinHistory."""
    history = OptinHistory({})
    for digest, stored in users.items():
        user = OptinUser(GroupKey(stored.segment, stored.sub_segment), stored.group_seen_at, [])
        for occurred_at, code, hour in sorted(stored.events):
            event_type = _TYPES_BY_CODE[code]
            kind = ENGAGEMENT_OF.get(event_type)
            if kind is None:
                user.send_times.append(occurred_at)
            else:
                user.events.append((kind, occurred_at, None if hour == _NO_HOUR else hour))
        history.users[digest] = user
    return history


class OptinStore(Protocol):
    def record(self, events: Iterable[OptinEvent]) -> int:
        """Merges the events into their users' histories; returns the users written."""
        ...

    def history(self, hashes: Collection[str]) -> OptinHistory:
        """The histories of the users among ``hashes`` that have one."""
        ...

    def close(self) -> None: ...


_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS notify_optin (
    email_sha256  TEXT    PRIMARY KEY,
    segment       TEXT,
    sub_segment   TEXT,
    group_seen_at INTEGER NOT NULL,
    events        BLOB    NOT NULL,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
"""
_KEYS_PER_QUERY: Final = 500


class SqliteOptinStore:
    def __init__(
        self, path: StatePath, *, max_events: int = DEFAULT_MAX_EVENTS, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = SqliteDatabase(path, _SQLITE_SCHEMA)
        self._max = max_events
        self._clock = clock

    def _read(self, connection: Any, hashes: list[str]) -> dict[str, StoredOptinUser]:
        found: dict[str, StoredOptinUser] = {}
        for start in range(0, len(hashes), _KEYS_PER_QUERY):
            part = hashes[start : start + _KEYS_PER_QUERY]
            query = (
                "SELECT email_sha256, segment, sub_segment, group_seen_at, events FROM notify_optin "  # nosec B608 # noqa: S608 - placeholders only
                f"WHERE email_sha256 IN ({','.join('?' * len(part))})"
            )
            for digest, segment, sub_segment, seen_at, events in connection.execute(query, part):
                found[digest] = StoredOptinUser(segment, sub_segment, int(seen_at), _unpack(bytes(events)))
        return found

    def record(self, events: Iterable[OptinEvent]) -> int:
        by_user = _grouped(events)
        if not by_user:
            return 0
        now = int(self._clock())
        with self._database.writing() as connection:
            current = self._read(connection, list(by_user))
            rows = []
            for digest, new in by_user.items():
                merged = _merge(current.get(digest), new, self._max)
                rows.append(
                    (
                        digest,
                        merged.segment,
                        merged.sub_segment,
                        merged.group_seen_at,
                        _pack(merged.events),
                        now,
                    )
                )
            connection.executemany(
                "INSERT OR REPLACE INTO notify_optin "
                "(email_sha256, segment, sub_segment, group_seen_at, events, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(by_user)

    def history(self, hashes: Collection[str]) -> OptinHistory:
        with self._database.reading() as connection:
            return history_of(self._read(connection, list(dict.fromkeys(hashes))))

    def close(self) -> None:
        self._database.close()


class DynamoDbOptinStore:
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("an opt-in history table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._max = max_events
        self._backoff = backoff or Backoff()
        self._clock = clock

    def _read(self, hashes: list[str], *, consistent: bool) -> dict[str, tuple[StoredOptinUser, int]]:
        found: dict[str, tuple[StoredOptinUser, int]] = {}
        for item in batch_get(
            self._client,
            self.table_name,
            [{"pk": {"S": digest}} for digest in hashes],
            projection="#pk, #g, #sg, #gt, #e, #v",
            names={"#pk": "pk", "#g": "g", "#sg": "sg", "#gt": "gt", "#e": "e", "#v": "v"},
            consistent=consistent,
            backoff=self._backoff,
        ):
            data: Any = item
            stored = StoredOptinUser(
                data["g"]["S"] if "g" in data else None,
                data["sg"]["S"] if "sg" in data else None,
                int(data["gt"]["N"]),
                _unpack(bytes(data["e"]["B"])),
            )
            found[data["pk"]["S"]] = (stored, int(data["v"]["N"]))
        return found

    def record(self, events: Iterable[OptinEvent]) -> int:
        by_user = _grouped(events)
        if not by_user:
            return 0
        current = self._read(list(by_user), consistent=True)
        for digest, new in by_user.items():
            self._merge_user(digest, new, current.get(digest))
        return len(by_user)

    def _merge_user(
        self, digest: str, new: Sequence[OptinEvent], known: tuple[StoredOptinUser, int] | None
    ) -> None:
        errors = self._client.exceptions
        for attempt in range(self._backoff.max_attempts):
            stored, version = known if known is not None else (None, 0)
            merged = _merge(stored, new, self._max)
            item: Any = {
                "pk": {"S": digest},
                "gt": {"N": str(merged.group_seen_at)},
                "e": {"B": _pack(merged.events)},
                "v": {"N": str(version + 1)},
                "t": {"N": str(int(self._clock()))},
            }
            if merged.segment:
                item["g"] = {"S": merged.segment}
            if merged.sub_segment:
                item["sg"] = {"S": merged.sub_segment}
            condition: Any = (
                {"ConditionExpression": "attribute_not_exists(pk)"}
                if known is None
                else {
                    "ConditionExpression": "v = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(version)}},
                }
            )
            try:
                self._client.put_item(TableName=self.table_name, Item=item, **condition)
                return
            except errors.ConditionalCheckFailedException:
                # Another file's rows for the same user got there first: merge into what it wrote.
                self._backoff.pause(attempt)
                known = self._read([digest], consistent=True).get(digest)
        raise StateStoreUnavailableError(
            f"DynamoDB table {self.table_name}: an opt-in history kept changing under "
            f"{self._backoff.max_attempts} merge attempts"
        )

    def history(self, hashes: Collection[str]) -> OptinHistory:
        found = self._read(list(dict.fromkeys(hashes)), consistent=False)
        return history_of({digest: stored for digest, (stored, _) in found.items()})

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""


__all__ = [
    "DEFAULT_MAX_EVENTS",
    "OPTIN_HISTORY_TABLE",
    "DynamoDbOptinStore",
    "OptinStore",
    "SqliteOptinStore",
    "history_of",
]
