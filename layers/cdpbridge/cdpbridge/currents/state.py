"""What the Currents router remembers: the events it routed (to skip redeliveries) and how far each
file got (to resume one that failed half-way).

Events are remembered as a 16-byte digest of ``<event_type>\\x1f<id>``: Braze's ids are globally
unique, the event type costs nothing to add and keeps Braze's sample files (which share one id)
apart. A 128-bit digest makes an accidental collision among 10^9 remembered events about 10^-21
likely. Entries expire ``ttl_seconds`` after they were written.

DynamoDB layout (CurrentsStateTable, on demand): HASH pk (B); TTL attribute ``x`` (epoch seconds).
An event is ``{pk: 16 bytes, x, s: 8 bytes}``: 34 bytes of data (plus DynamoDB's 100 bytes of
per-item overhead). ``s`` names the segment that routed the event (:func:`segment_tag`): a commit
writes its marks in several requests, and one cut off between them (the process killed, DynamoDB
failing) leaves some events of the segment marked and its progress unsaved. The segment is then
routed again and its output rewritten under the same name, so its own marks must not count as
routed elsewhere, or the rewrite would leave those events out. A file's progress is
``{pk: b"\\x00f" + 16-byte digest of its id, k: id, n: next index, d: done, x}``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from cdpbridge.state import Backoff, batch_get, batch_write, default_client
from cdpbridge.state.sqlite_state import SqliteDatabase, StatePath
from cdpbridge.state.tables import KeyAttribute, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef

_T = TypeVar("_T")

EVENT_KEY_BYTES: Final = 16
# DynamoDB's limits: 100 keys a BatchGetItem, 25 puts a BatchWriteItem.
BATCH_GET_KEYS: Final = 100
BATCH_WRITE_ITEMS: Final = 25
DEFAULT_TTL_SECONDS: Final = 14 * 24 * 3600

CURRENTS_STATE_TABLE: Final = TableSpec(
    logical_name="CurrentsStateTable",
    hash_key=KeyAttribute("pk", "B"),
    range_key=None,
    ttl_attribute="x",
)


SEGMENT_TAG_BYTES: Final = 8


def segment_tag(file_id: str, first_index: int) -> bytes:
    """Names a segment of a file by where it starts: a segment routed again gets the same tag."""
    return hashlib.blake2b(f"{file_id}\x1f{first_index}".encode(), digest_size=SEGMENT_TAG_BYTES).digest()


def event_key(event_type: str, event_id: str) -> bytes:
    return hashlib.blake2b(f"{event_type}\x1f{event_id}".encode(), digest_size=EVENT_KEY_BYTES).digest()


@dataclass(frozen=True, slots=True)
class FileProgress:
    """How far a file got: records before ``next_index`` are routed; ``done`` once all of them are."""

    file_id: str
    next_index: int = 0
    done: bool = False


class CurrentsState(Protocol):
    def already_routed(self, keys: Sequence[bytes], segment: bytes | None = None) -> set[bytes]:
        """The keys among ``keys`` that were routed before and have not expired, except those the
        segment tagged ``segment`` marked (it is being routed again)."""
        ...

    def mark_routed(self, keys: Collection[bytes], segment: bytes | None = None) -> None: ...

    def load_progress(self, file_id: str) -> FileProgress | None: ...

    def save_progress(self, progress: FileProgress) -> None: ...

    def commit(self, keys: Collection[bytes], progress: FileProgress, segment: bytes | None = None) -> None:
        """Marks ``keys`` routed by ``segment``, then saves ``progress`` (one transaction where the
        store has them)."""
        ...

    def close(self) -> None: ...


# -- SQLite (the CLI, local runs) -----------------------------------------------------------------

_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS currents_routed (k BLOB PRIMARY KEY, x INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS currents_files (
    file_id    TEXT    PRIMARY KEY,
    next_index INTEGER NOT NULL,
    done       INTEGER NOT NULL,
    x          INTEGER NOT NULL
) WITHOUT ROWID;
"""
_KEYS_PER_QUERY: Final = 500


class SqliteCurrentsState:
    def __init__(
        self,
        path: StatePath,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = SqliteDatabase(path, _SQLITE_SCHEMA)
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        # Expired entries go once per opening: cheaper than a check on every write.
        with self._database.writing() as connection:
            now = int(clock())
            connection.execute("DELETE FROM currents_routed WHERE x < ?", (now,))
            connection.execute("DELETE FROM currents_files WHERE x < ?", (now,))

    def already_routed(self, keys: Sequence[bytes], segment: bytes | None = None) -> set[bytes]:
        # A commit is one transaction here: a segment routed again never finds marks of its own, so
        # the segment's tag is not stored.
        found: set[bytes] = set()
        now = int(self._clock())
        with self._database.reading() as connection:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                part = keys[start : start + _KEYS_PER_QUERY]
                query = f"SELECT k FROM currents_routed WHERE x >= ? AND k IN ({','.join('?' * len(part))})"  # nosec B608 # noqa: S608 - placeholders only
                found.update(row[0] for row in connection.execute(query, (now, *part)))
        return found

    def mark_routed(self, keys: Collection[bytes], segment: bytes | None = None) -> None:
        expires = int(self._clock()) + self._ttl_seconds
        with self._database.writing() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO currents_routed (k, x) VALUES (?, ?)",
                zip(keys, repeat(expires)),
            )

    def load_progress(self, file_id: str) -> FileProgress | None:
        with self._database.reading() as connection:
            row = connection.execute(
                "SELECT next_index, done FROM currents_files WHERE file_id = ? AND x >= ?",
                (file_id, int(self._clock())),
            ).fetchone()
        return None if row is None else FileProgress(file_id, int(row[0]), bool(row[1]))

    def save_progress(self, progress: FileProgress) -> None:
        expires = int(self._clock()) + self._ttl_seconds
        with self._database.writing() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO currents_files (file_id, next_index, done, x) VALUES (?, ?, ?, ?)",
                (progress.file_id, progress.next_index, int(progress.done), expires),
            )

    def commit(self, keys: Collection[bytes], progress: FileProgress, segment: bytes | None = None) -> None:
        expires = int(self._clock()) + self._ttl_seconds
        with self._database.writing() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO currents_routed (k, x) VALUES (?, ?)", zip(keys, repeat(expires))
            )
            connection.execute(
                "INSERT OR REPLACE INTO currents_files (file_id, next_index, done, x) VALUES (?, ?, ?, ?)",
                (progress.file_id, progress.next_index, int(progress.done), expires),
            )

    def close(self) -> None:
        self._database.close()


# -- DynamoDB (the Lambda function) ---------------------------------------------------------------


def _progress_key(file_id: str) -> bytes:
    return b"\x00f" + hashlib.blake2b(file_id.encode(), digest_size=EVENT_KEY_BYTES).digest()


class DynamoDbCurrentsState:
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
    ) -> None:
        if not table_name:
            raise ValueError("a Currents state table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._ttl_seconds = ttl_seconds
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def _in_parallel(
        self, work: Callable[[Sequence[Any]], _T], items: Sequence[Any], per_call: int
    ) -> list[_T]:
        """``work`` over slices of ``items``, several requests in flight: a 100,000-event file is
        5,000 batch requests, and waiting for each in turn would cost more than all else."""
        slices = [items[start : start + per_call] for start in range(0, len(items), per_call)]
        if len(slices) <= 1:
            return [work(part) for part in slices]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="currents-state")
        return list(self._pool.map(work, slices))

    def already_routed(self, keys: Sequence[bytes], segment: bytes | None = None) -> set[bytes]:
        if not keys:
            return set()
        now = int(self._clock())

        def read(part: Sequence[bytes]) -> set[bytes]:
            found: set[bytes] = set()
            # Eventually consistent reads cost half: a mark is seconds old by the time a redelivery
            # comes, and a resumed file relies on its progress record (read strongly), not on these.
            for item in batch_get(
                self._client,
                self.table_name,
                [{"pk": {"B": key}} for key in part],
                projection="#pk, #x, #s",
                names={"#pk": "pk", "#x": "x", "#s": "s"},
                consistent=False,
                backoff=self._backoff,
            ):
                # TTL deletion lags by up to days: an expired entry counts as gone.
                if int(item["x"]["N"]) < now:
                    continue
                if segment is not None and "s" in item and bytes(item["s"]["B"]) == segment:
                    continue  # marked by this segment before its commit was cut off
                found.add(bytes(item["pk"]["B"]))
            return found

        return set().union(*self._in_parallel(read, list(dict.fromkeys(keys)), BATCH_GET_KEYS))

    def mark_routed(self, keys: Collection[bytes], segment: bytes | None = None) -> None:
        expires: AttributeValueTypeDef = {"N": str(int(self._clock()) + self._ttl_seconds)}
        tag: dict[str, AttributeValueTypeDef] = {"s": {"B": segment}} if segment is not None else {}
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": {"pk": {"B": key}, "x": expires, **tag}}} for key in dict.fromkeys(keys)
        ]

        def write(part: Sequence[WriteRequestTypeDef]) -> int:
            return batch_write(self._client, self.table_name, part, backoff=self._backoff)

        # Several batches a worker, so the pool's overhead stays small against the requests.
        self._in_parallel(write, requests, BATCH_WRITE_ITEMS * 8)

    def load_progress(self, file_id: str) -> FileProgress | None:
        response = self._client.get_item(
            TableName=self.table_name, Key={"pk": {"B": _progress_key(file_id)}}, ConsistentRead=True
        )
        item: Any = response.get("Item")
        if item is None or int(item["x"]["N"]) < int(self._clock()):
            return None
        return FileProgress(file_id, int(item["n"]["N"]), bool(item["d"]["BOOL"]))

    def save_progress(self, progress: FileProgress) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"B": _progress_key(progress.file_id)},
                "k": {"S": progress.file_id},
                "n": {"N": str(progress.next_index)},
                "d": {"BOOL": progress.done},
                "x": {"N": str(int(self._clock()) + self._ttl_seconds)},
            },
        )

    def commit(self, keys: Collection[bytes], progress: FileProgress, segment: bytes | None = None) -> None:
        # Marks first: progress saved before them would let a crash in between skip unmarked events.
        if keys:
            self.mark_routed(keys, segment)
        self.save_progress(progress)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
