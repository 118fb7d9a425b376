"""The engagement profile store: DynamoDB for the functions, SQLite for local runs; one protocol.

Writes merge: a user's kept observations are read, the new ones added (an observation already kept
is not added twice), the newest ``max_observations`` kept. Concurrent writers (an e-mail open file
and a purchase file of the same hour) never lose each other's observations: DynamoDB writes are
conditional on the version read, SQLite writes happen inside one write transaction.

DynamoDB layout (EngagementProfileTable, on demand): HASH pk (S) = the user id (external_id, else
braze_id); o (B) packed observations, 10 bytes each; z (S) the user's time zone, when known;
v (N) version; t (N) last write, epoch s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from aws_lambda_powertools import Logger

from cdpbridge.engagement.model import (
    EngagementProfile,
    Observation,
    merge_observations,
    pack_observations,
    unpack_observations,
)
from cdpbridge.state import Backoff, StateStoreUnavailableError, batch_get, default_client
from cdpbridge.state.sqlite_state import SqliteDatabase, StatePath
from cdpbridge.state.tables import KeyAttribute, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

DEFAULT_MAX_OBSERVATIONS: Final = 512

ENGAGEMENT_PROFILE_TABLE: Final = TableSpec(
    logical_name="EngagementProfileTable",
    hash_key=KeyAttribute("pk"),
    range_key=None,
    ttl_attribute=None,
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """One user's item as read: packed observations, version, time zone."""

    observations: bytes
    version: int
    zone: str | None


class EngagementStore(Protocol):
    def record(
        self, observations: Mapping[str, Sequence[Observation]], zones: Mapping[str, str] | None = None
    ) -> None:
        """Adds observations per user id to what is kept; ``zones`` are users' latest time zones."""
        ...

    def profiles(self, user_ids: Collection[str]) -> dict[str, EngagementProfile]:
        """The profiles of the users that have one; users without observations are absent."""
        ...

    def close(self) -> None: ...


_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS engagement_profiles (
    user_id    TEXT    PRIMARY KEY,
    obs        BLOB    NOT NULL,
    zone       TEXT,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
"""
_KEYS_PER_QUERY: Final = 500


class SqliteEngagementStore:
    def __init__(
        self,
        path: StatePath,
        *,
        max_observations: int = DEFAULT_MAX_OBSERVATIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = SqliteDatabase(path, _SQLITE_SCHEMA)
        self._max = max_observations
        self._clock = clock

    def _read(self, connection: Any, user_ids: list[str]) -> dict[str, tuple[bytes, str | None]]:
        found: dict[str, tuple[bytes, str | None]] = {}
        for start in range(0, len(user_ids), _KEYS_PER_QUERY):
            part = user_ids[start : start + _KEYS_PER_QUERY]
            placeholders = ",".join("?" * len(part))
            query = f"SELECT user_id, obs, zone FROM engagement_profiles WHERE user_id IN ({placeholders})"  # nosec B608 # noqa: S608 - placeholders only
            found.update((row[0], (bytes(row[1]), row[2])) for row in connection.execute(query, part))
        return found

    def record(
        self, observations: Mapping[str, Sequence[Observation]], zones: Mapping[str, str] | None = None
    ) -> None:
        if not observations:
            return
        zones = zones or {}
        now = int(self._clock())
        with self._database.writing() as connection:
            current = self._read(connection, list(observations))
            rows = []
            for user_id, new in observations.items():
                data, zone = current.get(user_id, (b"", None))
                merged = merge_observations(unpack_observations(data), new, self._max)
                rows.append((user_id, pack_observations(merged), zones.get(user_id, zone), now))
            connection.executemany(
                "INSERT OR REPLACE INTO engagement_profiles (user_id, obs, zone, updated_at) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def profiles(self, user_ids: Collection[str]) -> dict[str, EngagementProfile]:
        with self._database.reading() as connection:
            found = self._read(connection, list(dict.fromkeys(user_ids)))
        return {
            user: EngagementProfile.of(user, unpack_observations(data), zone)
            for user, (data, zone) in found.items()
        }

    def close(self) -> None:
        self._database.close()


class DynamoDbEngagementStore:
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        max_observations: int = DEFAULT_MAX_OBSERVATIONS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        concurrency: int = 16,
    ) -> None:
        if not table_name:
            raise ValueError("an engagement profile table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._max = max_observations
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def _read(self, user_ids: list[str], *, consistent: bool) -> dict[str, _Stored]:
        found: dict[str, _Stored] = {}
        for item in batch_get(
            self._client,
            self.table_name,
            [{"pk": {"S": user_id}} for user_id in user_ids],
            projection="#pk, #o, #v, #z",
            names={"#pk": "pk", "#o": "o", "#v": "v", "#z": "z"},
            consistent=consistent,
            backoff=self._backoff,
        ):
            data: Any = item
            zone = data["z"]["S"] if "z" in data else None
            found[data["pk"]["S"]] = _Stored(bytes(data["o"]["B"]), int(data["v"]["N"]), zone)
        return found

    def record(
        self, observations: Mapping[str, Sequence[Observation]], zones: Mapping[str, str] | None = None
    ) -> None:
        if not observations:
            return
        zones = zones or {}
        current = self._read(list(observations), consistent=True)
        if len(observations) == 1 or self._concurrency == 1:
            for user_id, new in observations.items():
                self._merge_user(user_id, new, current.get(user_id), zones.get(user_id))
            return
        # One conditional write per user: several in flight, or a file of many users waits on each.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="engagement")
        futures = [
            self._pool.submit(self._merge_user, user_id, new, current.get(user_id), zones.get(user_id))
            for user_id, new in observations.items()
        ]
        for future in futures:
            future.result()

    def _merge_user(
        self, user_id: str, new: Sequence[Observation], known: _Stored | None, zone: str | None
    ) -> None:
        errors = self._client.exceptions
        for attempt in range(self._backoff.max_attempts):
            stored = known if known is not None else _Stored(b"", 0, None)
            merged = merge_observations(unpack_observations(stored.observations), new, self._max)
            item: Any = {
                "pk": {"S": user_id},
                "o": {"B": pack_observations(merged)},
                "v": {"N": str(stored.version + 1)},
                "t": {"N": str(int(self._clock()))},
            }
            if zone or stored.zone:
                item["z"] = {"S": zone or stored.zone}
            condition = "attribute_not_exists(pk)" if known is None else "v = :v"
            values: Any = {} if known is None else {":v": {"N": str(stored.version)}}
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
                return
            except errors.ConditionalCheckFailedException:
                # Another writer got there first: merge into what it wrote.
                logger.debug("engagement profile changed concurrently", extra={"attempt": attempt + 1})
                self._backoff.pause(attempt)
                known = self._read([user_id], consistent=True).get(user_id)
        raise StateStoreUnavailableError(
            f"DynamoDB table {self.table_name}: an engagement profile kept changing under "
            f"{self._backoff.max_attempts} merge attempts"
        )

    def profiles(self, user_ids: Collection[str]) -> dict[str, EngagementProfile]:
        found = self._read(list(dict.fromkeys(user_ids)), consistent=False)
        return {
            user: EngagementProfile.of(user, unpack_observations(stored.observations), stored.zone)
            for user, stored in found.items()
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
