"""The schedules: one row per (program, send date, user), planned, then claimed, then sent.

A row goes ``planned`` -> ``claimed`` -> ``sent`` (or ``failed`` when Braze refused the call), or
``planned`` -> ``skipped`` when its slot is more than the program's grace period in the past. Every
change is conditional on the state it leaves, so two dispatchers running at once never both claim
a row, and a re-plan never moves a row that a dispatcher has already claimed.

A dispatcher claims rows *before* it calls Braze and confirms them after. A dispatcher that dies
between the two leaves its rows ``claimed``: nobody sends them again (at most once, the safe choice
for messages to people); the next dispatch reports them as ``unconfirmed`` once they are older than
the grace period, so an operator can look in Braze's send-id analytics whether they went out.

DynamoDB layout (SchedulesTable, on demand): HASH pk (S) = ``notify#<program>#<send date>``,
RANGE sk (S) = the external_id; attributes at (S, the slot, UTC ISO-8601 with Z), lt (S, local
time), b (S, basis), s (S, status), c (S, the claim's token), si (S, send id), r (S, reason),
u (N, last change, epoch s), q (S, the same value as pk, only while the row is planned or claimed),
ix (N, 1: written with q kept); TTL expires_at (the send date plus the retention).

The due index (GSI ``due``: HASH q, RANGE at; projects lt and s) holds only the rows that still
need a dispatcher: q is set when a row is planned and removed when it is sent, failed or skipped.
A dispatcher reads ``q = <partition> AND at <= now`` from it, so a run reads what is due (and the
rows left claimed), never the whole plan. Index reads are eventually consistent: a row planned a
moment ago may be missing from one run and goes out in the next; a row another dispatcher has
just claimed may still read as planned, and its claim (conditional) fails.

Plans written before the index have no q. A send date's plan is read through the index only when
its first row in key order carries ix: the planner sets ix only on rows of a send date that is
empty or already indexed, so a date holding any row from before the index keeps a first row without
ix and is read with the full Query, as before, until it leaves the dispatcher's dates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from cdpbridge.state import Backoff, default_client
from cdpbridge.state.sqlite_state import SqliteDatabase, StatePath
from cdpbridge.state.tables import GlobalIndex, KeyAttribute, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX: Final = "due"
SCHEDULES_TABLE: Final = TableSpec(
    logical_name="SchedulesTable",
    hash_key=KeyAttribute("pk"),
    range_key=KeyAttribute("sk"),
    ttl_attribute="expires_at",
    # Only what the dispatcher reads: local time (for the pixel) and status (planned or claimed).
    global_indexes=(GlobalIndex(DUE_INDEX, KeyAttribute("q"), KeyAttribute("at"), projected=("lt", "s")),),
)
# Rows stay this long after their send date (what was sent, skipped or left unconfirmed).
DEFAULT_RETENTION_DAYS: Final = 35


class SlotStatus(StrEnum):
    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ScheduledSend:
    """One user's slot of one program on one send date."""

    program: str
    send_date: date
    external_id: str
    send_at: str  # UTC, ISO-8601 with Z: sorts as text in time order
    local_time: str
    basis: str
    status: SlotStatus = SlotStatus.PLANNED
    claim: str | None = None
    send_id: str | None = None
    reason: str | None = None
    updated_at: int = 0


@dataclass(slots=True)
class PlanWrite:
    """What writing a plan did: rows new, moved to another slot, unchanged, or left (already claimed)."""

    inserted: int = 0
    moved: int = 0
    unchanged: int = 0
    kept_claimed: int = 0


class ScheduleStore(Protocol):
    def write_plan(self, rows: Sequence[ScheduledSend]) -> PlanWrite:
        """Inserts each row, or moves a still-planned row to its new slot; claimed rows stay."""
        ...

    def rows(self, program: str, send_date: date, status: SlotStatus | None = None) -> list[ScheduledSend]:
        """The rows of one program and send date (with ``status`` only), in slot order."""
        ...

    def due_rows(self, program: str, send_date: date, until: str) -> list[ScheduledSend]:
        """The planned and claimed rows of one program and send date whose slot is not after
        ``until`` (UTC ISO-8601 with Z), in slot order: what a dispatcher acts on. Rows read from
        DynamoDB's due index carry no basis, claim token, send id or reason (the dispatcher reads
        none of them)."""
        ...

    def claim(self, row: ScheduledSend, token: str) -> bool:
        """Moves a planned row to claimed under ``token``; False when it was not planned any more."""
        ...

    def finish(
        self, row: ScheduledSend, token: str, status: SlotStatus, send_id: str | None, reason: str | None
    ) -> bool:
        """Moves a row claimed under ``token`` to sent or failed."""
        ...

    def skip(self, row: ScheduledSend, reason: str) -> bool:
        """Moves a planned row to skipped; False when it was not planned any more."""
        ...

    def close(self) -> None: ...


def partition_key(program: str, send_date: date) -> str:
    return f"notify#{program}#{send_date.isoformat()}"


# ------------------------------------------------------------------------------------------ SQLite

_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS notify_schedules (
    program     TEXT NOT NULL,
    send_date   TEXT NOT NULL,
    external_id TEXT NOT NULL,
    send_at     TEXT NOT NULL,
    local_time  TEXT NOT NULL,
    basis       TEXT NOT NULL,
    status      TEXT NOT NULL,
    claim       TEXT,
    send_id     TEXT,
    reason      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (program, send_date, external_id)
) WITHOUT ROWID;
-- The rows a dispatcher still acts on, by slot: sent, failed and skipped rows leave it.
CREATE INDEX IF NOT EXISTS notify_schedules_due
    ON notify_schedules (program, send_date, send_at, external_id)
    WHERE status IN ('planned', 'claimed');
"""
_COLUMNS: Final = (
    "program, send_date, external_id, send_at, local_time, basis, status, claim, send_id, reason, updated_at"
)
_INSERT: Final = (
    f"INSERT INTO notify_schedules ({_COLUMNS}) "  # nosec B608 # noqa: S608 - constant columns
    "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?)"
)


def _from_sqlite(row: Sequence[Any]) -> ScheduledSend:
    return ScheduledSend(
        program=row[0],
        send_date=date.fromisoformat(row[1]),
        external_id=row[2],
        send_at=row[3],
        local_time=row[4],
        basis=row[5],
        status=SlotStatus(row[6]),
        claim=row[7],
        send_id=row[8],
        reason=row[9],
        updated_at=int(row[10]),
    )


class SqliteScheduleStore:
    """The schedules in a local state file; every change is one conditional UPDATE in a write
    transaction, so processes sharing the file claim each row once."""

    def __init__(self, path: StatePath, *, clock: Callable[[], float] = time.time) -> None:
        self._database = SqliteDatabase(path, _SQLITE_SCHEMA)
        self._clock = clock

    def write_plan(self, rows: Sequence[ScheduledSend]) -> PlanWrite:
        result = PlanWrite()
        now = int(self._clock())
        with self._database.writing() as connection:
            for row in rows:
                key = (row.program, row.send_date.isoformat(), row.external_id)
                found = connection.execute(
                    "SELECT status, send_at FROM notify_schedules "
                    "WHERE program = ? AND send_date = ? AND external_id = ?",
                    key,
                ).fetchone()
                if found is None:
                    connection.execute(
                        _INSERT,
                        (*key, row.send_at, row.local_time, row.basis, SlotStatus.PLANNED.value, now),
                    )
                    result.inserted += 1
                elif found[0] != SlotStatus.PLANNED.value:
                    result.kept_claimed += 1
                elif found[1] == row.send_at:
                    result.unchanged += 1
                else:
                    connection.execute(
                        "UPDATE notify_schedules SET send_at = ?, local_time = ?, basis = ?, updated_at = ? "
                        "WHERE program = ? AND send_date = ? AND external_id = ? AND status = ?",
                        (row.send_at, row.local_time, row.basis, now, *key, SlotStatus.PLANNED.value),
                    )
                    result.moved += 1
        return result

    def rows(self, program: str, send_date: date, status: SlotStatus | None = None) -> list[ScheduledSend]:
        query = f"SELECT {_COLUMNS} FROM notify_schedules WHERE program = ? AND send_date = ?"  # nosec B608 # noqa: S608 - constant columns
        parameters: list[str] = [program, send_date.isoformat()]
        if status is not None:
            query += " AND status = ?"
            parameters.append(status.value)
        with self._database.reading() as connection:
            found = [
                _from_sqlite(row)
                for row in connection.execute(query + " ORDER BY send_at, external_id", parameters)
            ]
        return found

    def due_rows(self, program: str, send_date: date, until: str) -> list[ScheduledSend]:
        # The status test repeats the partial index's condition word for word, so SQLite can use it;
        # INDEXED BY makes a query that could not an error instead of a silent whole-table read.
        query = (
            f"SELECT {_COLUMNS} FROM notify_schedules INDEXED BY notify_schedules_due "  # nosec B608 # noqa: S608 - constant columns
            "WHERE program = ? AND send_date = ? AND status IN ('planned', 'claimed') AND send_at <= ? "
            "ORDER BY send_at, external_id"
        )
        with self._database.reading() as connection:
            found = [
                _from_sqlite(row)
                for row in connection.execute(query, (program, send_date.isoformat(), until))
            ]
        return found

    def _transition(
        self, row: ScheduledSend, expected: SlotStatus, expected_claim: str | None, changes: dict[str, Any]
    ) -> bool:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        query = (
            f"UPDATE notify_schedules SET {assignments}, updated_at = ? "  # nosec B608 # noqa: S608 - fixed column names
            "WHERE program = ? AND send_date = ? AND external_id = ? AND status = ?"
        )
        parameters: list[Any] = [
            *changes.values(),
            int(self._clock()),
            row.program,
            row.send_date.isoformat(),
            row.external_id,
            expected.value,
        ]
        if expected_claim is not None:
            query += " AND claim = ?"
            parameters.append(expected_claim)
        with self._database.writing() as connection:
            changed = connection.execute(query, parameters).rowcount
        return changed == 1

    def claim(self, row: ScheduledSend, token: str) -> bool:
        return self._transition(
            row, SlotStatus.PLANNED, None, {"status": SlotStatus.CLAIMED.value, "claim": token}
        )

    def finish(
        self, row: ScheduledSend, token: str, status: SlotStatus, send_id: str | None, reason: str | None
    ) -> bool:
        changes = {"status": status.value, "send_id": send_id, "reason": reason}
        return self._transition(row, SlotStatus.CLAIMED, token, changes)

    def skip(self, row: ScheduledSend, reason: str) -> bool:
        return self._transition(
            row, SlotStatus.PLANNED, None, {"status": SlotStatus.SKIPPED.value, "reason": reason}
        )

    def close(self) -> None:
        self._database.close()


# ---------------------------------------------------------------------------------------- DynamoDB


def _from_item(item: Any) -> ScheduledSend:
    _, program, send_date = item["pk"]["S"].split("#", 2)

    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value is not None else None

    return ScheduledSend(
        program=program,
        send_date=date.fromisoformat(send_date),
        external_id=item["sk"]["S"],
        send_at=item["at"]["S"],
        local_time=item["lt"]["S"],
        # The due index does not project the basis.
        basis=text("b") or "",
        status=SlotStatus(item["s"]["S"]),
        claim=text("c"),
        send_id=text("si"),
        reason=text("r"),
        updated_at=int(item["u"]["N"]) if "u" in item else 0,
    )


class DynamoDbScheduleStore:
    """The schedules in SchedulesTable; every transition is a conditional UpdateItem."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("a schedules table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._retention_s = retention_days * 86_400
        self._clock = clock
        self._backoff = backoff or Backoff()
        # Partitions seen read through the due index: once indexed, a partition stays so.
        self._indexed_partitions: set[str] = set()

    def _key(self, row: ScheduledSend) -> Any:
        return {"pk": {"S": partition_key(row.program, row.send_date)}, "sk": {"S": row.external_id}}

    def _update(self, key: Any, expression: str, condition: str, names: Any, values: Any) -> bool:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _indexed(self, partition: str) -> bool | None:
        """True when every row of the partition is kept in the due index (its first row in key
        order carries ix, see the module docstring), False when it holds rows from before the
        index, None when it has no rows. One strongly consistent read of one row."""
        if partition in self._indexed_partitions:
            return True
        page = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ConsistentRead=True,
            Limit=1,
        )
        items = page.get("Items", [])
        if not items:
            return None
        if "ix" not in items[0]:
            return False
        self._indexed_partitions.add(partition)
        return True

    def write_plan(self, rows: Sequence[ScheduledSend]) -> PlanWrite:
        result = PlanWrite()
        now = int(self._clock())
        # Rows get ix only in a partition without rows from before the due index.
        marked: dict[str, bool] = {}
        for row in rows:
            partition = partition_key(row.program, row.send_date)
            if partition not in marked:
                marked[partition] = self._indexed(partition) is not False
            expires = int(datetime.combine(row.send_date, dtime(0), UTC).timestamp()) + self._retention_s
            values: Any = {
                ":at": {"S": row.send_at},
                ":lt": {"S": row.local_time},
                ":b": {"S": row.basis},
                ":planned": {"S": SlotStatus.PLANNED.value},
                ":u": {"N": str(now)},
                ":e": {"N": str(expires)},
                ":q": {"S": partition},
            }
            names: Any = {
                "#s": "s",
                "#at": "at",
                "#lt": "lt",
                "#b": "b",
                "#u": "u",
                "#e": "expires_at",
                "#q": "q",
            }
            expression = "SET #at = :at, #lt = :lt, #b = :b, #s = :planned, #u = :u, #e = :e, #q = :q"
            if marked[partition]:
                expression += ", #ix = :ix"
                names["#ix"] = "ix"
                values[":ix"] = {"N": "1"}
            # New, or still planned in another slot (or planned before the due index, without q):
            # (re)write the slot. Already the same: nothing. Claimed or done: never touched again.
            written = self._update(
                self._key(row),
                expression,
                "attribute_not_exists(sk) OR (#s = :planned AND (#at <> :at OR attribute_not_exists(#q)))",
                names,
                values,
            )
            if written:
                # Which of the two it was needs no second read: a moved row is rare (a re-plan).
                result.inserted += 1
                continue
            current = self._client.get_item(
                TableName=self.table_name, Key=self._key(row), ConsistentRead=True
            ).get("Item")
            if current is not None and current["s"]["S"] != SlotStatus.PLANNED.value:
                result.kept_claimed += 1
            else:
                result.unchanged += 1
        return result

    def rows(self, program: str, send_date: date, status: SlotStatus | None = None) -> list[ScheduledSend]:
        request: Any = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition_key(program, send_date)}},
            "ConsistentRead": True,
        }
        if status is not None:
            request["FilterExpression"] = "#s = :s"
            request["ExpressionAttributeNames"] = {"#s": "s"}
            request["ExpressionAttributeValues"][":s"] = {"S": status.value}
        return self._query_all(request)

    def due_rows(self, program: str, send_date: date, until: str) -> list[ScheduledSend]:
        partition = partition_key(program, send_date)
        indexed = self._indexed(partition)
        if indexed is None:
            return []
        if not indexed:
            # A plan from before the due index: the whole partition, as before.
            return [
                row
                for row in self.rows(program, send_date)
                if row.status in (SlotStatus.PLANNED, SlotStatus.CLAIMED) and row.send_at <= until
            ]
        request: Any = {
            "TableName": self.table_name,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "#q = :q AND #at <= :until",
            "ExpressionAttributeNames": {"#q": "q", "#at": "at"},
            "ExpressionAttributeValues": {":q": {"S": partition}, ":until": {"S": until}},
        }
        return self._query_all(request)

    def _query_all(self, request: Any) -> list[ScheduledSend]:
        """Every page of a Query, in slot order."""
        found: list[ScheduledSend] = []
        while True:
            page = self._client.query(**request)
            found.extend(_from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        found.sort(key=lambda row: (row.send_at, row.external_id))
        return found

    def claim(self, row: ScheduledSend, token: str) -> bool:
        return self._update(
            self._key(row),
            "SET #s = :claimed, #c = :c, #u = :u",
            "#s = :planned",
            {"#s": "s", "#c": "c", "#u": "u"},
            {
                ":claimed": {"S": SlotStatus.CLAIMED.value},
                ":planned": {"S": SlotStatus.PLANNED.value},
                ":c": {"S": token},
                ":u": {"N": str(int(self._clock()))},
            },
        )

    def finish(
        self, row: ScheduledSend, token: str, status: SlotStatus, send_id: str | None, reason: str | None
    ) -> bool:
        expression = "SET #s = :to, #u = :u"
        names: Any = {"#s": "s", "#c": "c", "#u": "u"}
        values: Any = {
            ":to": {"S": status.value},
            ":claimed": {"S": SlotStatus.CLAIMED.value},
            ":c": {"S": token},
            ":u": {"N": str(int(self._clock()))},
        }
        if send_id is not None:
            expression += ", #si = :si"
            names["#si"] = "si"
            values[":si"] = {"S": send_id}
        if reason is not None:
            expression += ", #r = :r"
            names["#r"] = "r"
            values[":r"] = {"S": reason}
        # Done: out of the due index.
        expression += " REMOVE #q"
        names["#q"] = "q"
        return self._update(self._key(row), expression, "#s = :claimed AND #c = :c", names, values)

    def skip(self, row: ScheduledSend, reason: str) -> bool:
        return self._update(
            self._key(row),
            "SET #s = :skipped, #r = :r, #u = :u REMOVE #q",
            "#s = :planned",
            {"#s": "s", "#r": "r", "#u": "u", "#q": "q"},
            {
                ":skipped": {"S": SlotStatus.SKIPPED.value},
                ":planned": {"S": SlotStatus.PLANNED.value},
                ":r": {"S": reason},
                ":u": {"N": str(int(self._clock()))},
            },
        )

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""


def rows_of_plan(
    program: str, send_date: date, plan_rows: Iterable[tuple[str, str, str, str]]
) -> list[ScheduledSend]:
    """Schedule rows from plan rows (external_id, send_at, local_time, basis)."""
    return [
        ScheduledSend(program, send_date, external_id, send_at, local_time, basis)
        for external_id, send_at, local_time, basis in plan_rows
    ]
