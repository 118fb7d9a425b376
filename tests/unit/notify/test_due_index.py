"""The due index: a dispatcher reads only the planned and claimed rows whose slot has come, on both
stores; rows leave it when they are sent, failed or skipped; plans from before it still go out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.integrations.notify.schedules import (
    DUE_INDEX,
    SCHEDULES_TABLE,
    DynamoDbScheduleStore,
    ScheduledSend,
    ScheduleStore,
    SlotStatus,
    SqliteScheduleStore,
    partition_key,
)
from cdpbridge.state.tables import create_table
from cdpbridge_local.stack.cfn_yaml import load_template
from tests.moto_server import moto_client, moto_server

DAY = date(2026, 12, 8)
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
_tables = itertools.count()


def row(user: str, send_at: str, program: str = "morning") -> ScheduledSend:
    return ScheduledSend(program, DAY, user, send_at, send_at.replace("Z", "+00:00"), "segment")


def slot(index: int) -> str:
    """The 15-minute slots of the send date, 0 (00:00Z) to 95 (23:45Z)."""
    return f"2026-12-08T{index // 4:02d}:{index % 4 * 15:02d}:00Z"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with moto_server() as url:
        yield moto_client(url, "dynamodb")


class Reads:
    """Counts the items each Query read (ScannedCount), on the due index or on the table."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self._where = "table"
        self.calls: list[tuple[str, int]] = []

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        self._where = params.get("IndexName", "table")

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls.append((self._where, parsed.get("ScannedCount", 0)))

    def __enter__(self) -> Reads:
        self._events.register("before-parameter-build.dynamodb.Query", self._before)
        self._events.register("after-call.dynamodb.Query", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        self._events.unregister("before-parameter-build.dynamodb.Query", self._before)
        self._events.unregister("after-call.dynamodb.Query", self._after)

    def items(self, where: str) -> int:
        return sum(count for index, count in self.calls if index == where)


def dynamo_store(dynamodb: Any) -> DynamoDbScheduleStore:
    name = f"schedules-due-{next(_tables)}"
    create_table(dynamodb, SCHEDULES_TABLE, name)
    return DynamoDbScheduleStore(name, client=dynamodb, clock=lambda: 1_796_000_000.0)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ScheduleStore:
    if request.param == "sqlite":
        return SqliteScheduleStore(tmp_path / "state.sqlite3", clock=lambda: 1_000.0)
    dynamodb: Any = request.getfixturevalue("dynamodb")
    return dynamo_store(dynamodb)


def test_due_rows_are_the_planned_and_claimed_rows_whose_slot_has_come(store: ScheduleStore) -> None:
    store.write_plan([row(f"u{index}", slot(index)) for index in range(40, 50)])
    store.write_plan([row("other-program", slot(40), program="evening")])
    assert store.claim(row("u40", slot(40)), "t1")
    assert store.finish(row("u40", slot(40)), "t1", SlotStatus.SENT, "send-1", None)
    assert store.claim(row("u41", slot(41)), "t2")
    assert store.finish(row("u41", slot(41)), "t2", SlotStatus.FAILED, "send-1", "refused")
    assert store.skip(row("u42", slot(42)), "late")
    assert store.claim(row("u43", slot(43)), "t3")  # left claimed (a dispatcher died)

    due = store.due_rows("morning", DAY, slot(45))
    assert [(found.external_id, found.send_at, found.status) for found in due] == [
        ("u43", slot(43), SlotStatus.CLAIMED),
        ("u44", slot(44), SlotStatus.PLANNED),
        ("u45", slot(45), SlotStatus.PLANNED),
    ]
    assert due[1].local_time == "2026-12-08T11:00:00+00:00"  # what the pixel needs
    assert store.due_rows("morning", DAY, slot(39)) == []
    assert store.due_rows("morning", date(2026, 12, 9), slot(95)) == []


def test_a_replan_moves_a_row_in_the_index(store: ScheduleStore) -> None:
    store.write_plan([row("a", slot(40))])
    store.write_plan([row("a", slot(60))])
    assert store.due_rows("morning", DAY, slot(50)) == []
    assert [found.send_at for found in store.due_rows("morning", DAY, slot(60))] == [slot(60)]


def test_a_dispatcher_reads_only_the_due_rows_of_the_index(dynamodb: Any) -> None:
    store = dynamo_store(dynamodb)
    # A user in each of the day's 96 slots, and one more at 11:00; at 11:00 slots 0..44 have come.
    store.write_plan([row(f"user-{index:03d}", slot(index)) for index in range(96)])
    store.write_plan([row("user-extra", slot(44))])
    for index in range(44):  # the earlier slots already went out
        target = row(f"user-{index:03d}", slot(index))
        assert store.claim(target, "t") and store.finish(target, "t", SlotStatus.SENT, "s", None)
    dispatcher_store = DynamoDbScheduleStore(store.table_name, client=dynamodb)
    with Reads(dynamodb) as reads:
        due = dispatcher_store.due_rows("morning", DAY, slot(44))
    assert [found.external_id for found in due] == ["user-044", "user-extra"]
    assert reads.items(DUE_INDEX) == 2  # the index: only what is due, not the 95 other rows
    assert reads.items("table") == 1  # the table: one row, to learn the plan is indexed
    with Reads(dynamodb) as again:
        dispatcher_store.due_rows("morning", DAY, slot(44))
    assert again.items("table") == 0  # known indexed: the table is not read again


def test_sent_failed_and_skipped_rows_leave_the_index(dynamodb: Any) -> None:
    store = dynamo_store(dynamodb)
    rows = [row(name, slot(40)) for name in ("sent", "failed", "skipped", "claimed", "planned")]
    store.write_plan(rows)
    store.claim(rows[0], "t") and store.finish(rows[0], "t", SlotStatus.SENT, "s", None)
    store.claim(rows[1], "t") and store.finish(rows[1], "t", SlotStatus.FAILED, "s", "refused")
    store.skip(rows[2], "late")
    store.claim(rows[3], "t")
    index = dynamodb.scan(TableName=store.table_name, IndexName=DUE_INDEX)["Items"]
    assert {item["sk"]["S"]: item["s"]["S"] for item in index} == {"claimed": "claimed", "planned": "planned"}
    assert {item["q"]["S"] for item in index} == {partition_key("morning", DAY)}
    # Only the keys, the slot, the local time and the status are copied into the index.
    assert {name for item in index for name in item} == {"pk", "sk", "q", "at", "lt", "s"}
    # The table keeps every row, with what was done to it.
    statuses = {found.external_id: found.status for found in store.rows("morning", DAY)}
    assert statuses["sent"] is SlotStatus.SENT and statuses["skipped"] is SlotStatus.SKIPPED


def put_old_row(dynamodb: Any, table: str, user: str, send_at: str, status: str = "planned") -> None:
    """A row as plans were written before the due index: no q, no ix."""
    dynamodb.put_item(
        TableName=table,
        Item={
            "pk": {"S": partition_key("morning", DAY)},
            "sk": {"S": user},
            "at": {"S": send_at},
            "lt": {"S": send_at.replace("Z", "+00:00")},
            "b": {"S": "user"},
            "s": {"S": status},
            "u": {"N": "1796000000"},
            "expires_at": {"N": "1799000000"},
        },
    )


def test_a_plan_from_before_the_index_is_still_dispatched(dynamodb: Any) -> None:
    store = dynamo_store(dynamodb)
    for index in range(20):
        put_old_row(dynamodb, store.table_name, f"old-{index:02d}", slot(40 + index % 10))
    put_old_row(dynamodb, store.table_name, "old-claimed", slot(30), status="claimed")
    assert dynamodb.scan(TableName=store.table_name, IndexName=DUE_INDEX)["Items"] == []

    due = store.due_rows("morning", DAY, slot(41))
    assert [found.external_id for found in due] == ["old-claimed", "old-00", "old-10", "old-01", "old-11"]
    # A re-plan of that date (a new user, a moved user) keeps the date read as a whole plan:
    # its new rows sort first but do not mark the date as indexed.
    store.write_plan([row("a-new-user", slot(41)), row("old-05", slot(41))])
    due = store.due_rows("morning", DAY, slot(41))
    assert {found.external_id for found in due} == {
        "old-claimed", "old-00", "old-10", "old-01", "old-11", "a-new-user", "old-05"
    }  # fmt: skip
    # The rows from before keep going out, claimed and confirmed as ever.
    target = next(found for found in due if found.external_id == "old-00")
    assert store.claim(target, "t") and store.finish(target, "t", SlotStatus.SENT, "s", None)
    assert "old-00" not in {found.external_id for found in store.due_rows("morning", DAY, slot(41))}


def test_a_new_plan_is_indexed_and_a_replan_keeps_it_so(dynamodb: Any) -> None:
    store = dynamo_store(dynamodb)
    store.write_plan([row("b", slot(40))])
    store.write_plan([row("a", slot(40)), row("b", slot(41))])  # a sorts first, b moves
    items = dynamodb.scan(TableName=store.table_name)["Items"]
    assert all(item["ix"]["N"] == "1" and item["q"]["S"] == partition_key("morning", DAY) for item in items)
    fresh = DynamoDbScheduleStore(store.table_name, client=dynamodb)
    with Reads(dynamodb) as reads:
        assert [found.external_id for found in fresh.due_rows("morning", DAY, slot(41))] == ["a", "b"]
    assert reads.items(DUE_INDEX) == 2 and reads.items("table") == 1


def test_the_template_declares_the_index_of_the_table_definition() -> None:
    resource = load_template(TEMPLATE)["Resources"]["SchedulesTable"]["Properties"]
    (index,) = SCHEDULES_TABLE.global_indexes
    assert resource["GlobalSecondaryIndexes"] == [index.definition()]
    assert sorted(resource["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == sorted(
        SCHEDULES_TABLE.attribute_definitions(), key=lambda d: d["AttributeName"]
    )
    assert resource["KeySchema"] == SCHEDULES_TABLE.key_schema()
