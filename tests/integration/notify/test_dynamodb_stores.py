"""The DynamoDB schedules and opt-in stores over moto server: the same contract as their SQLite twins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import pytest

from cdpbridge.integrations.notify.model import GroupKey
from cdpbridge.integrations.notify.optin import read_optin_export
from cdpbridge.integrations.notify.optin_store import (
    OPTIN_HISTORY_TABLE,
    DynamoDbOptinStore,
    SqliteOptinStore,
)
from cdpbridge.integrations.notify.schedules import (
    SCHEDULES_TABLE,
    DynamoDbScheduleStore,
    ScheduledSend,
    SlotStatus,
)
from cdpbridge.state.tables import create_table
from tests.moto_server import moto_server

from .conftest import email_digest, write_optin

DAY = date(2026, 12, 8)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[object]:
    with moto_server() as url:
        yield boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def row(user: str, send_at: str = "2026-12-08T09:00:00Z") -> ScheduledSend:
    return ScheduledSend("morning", DAY, user, send_at, "2026-12-08T10:00:00+01:00", "user")


@pytest.fixture
def schedules(dynamodb: object) -> DynamoDbScheduleStore:
    name = f"schedules-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, SCHEDULES_TABLE, name)  # type: ignore[arg-type]
    return DynamoDbScheduleStore(name, client=dynamodb, clock=lambda: 1_796_000_000.0)  # type: ignore[arg-type]


def test_plan_writes_are_idempotent_and_leave_claimed_rows(schedules: DynamoDbScheduleStore) -> None:
    assert schedules.write_plan([row("a"), row("b")]).inserted == 2
    again = schedules.write_plan([row("a"), row("b")])
    assert (again.inserted, again.unchanged) == (0, 2)
    assert schedules.claim(row("a"), "t1")
    moved = schedules.write_plan([row("a", "2026-12-08T10:00:00Z"), row("b", "2026-12-08T10:00:00Z")])
    assert (moved.inserted, moved.kept_claimed) == (1, 1)  # b moved (counted as written), a kept
    by_user = {found.external_id: found for found in schedules.rows("morning", DAY)}
    assert by_user["a"].send_at == "2026-12-08T09:00:00Z" and by_user["a"].status is SlotStatus.CLAIMED
    assert by_user["b"].send_at == "2026-12-08T10:00:00Z" and by_user["b"].status is SlotStatus.PLANNED


def test_transitions_are_conditional(schedules: DynamoDbScheduleStore) -> None:
    schedules.write_plan([row("a"), row("b")])
    assert schedules.claim(row("a"), "mine") and not schedules.claim(row("a"), "theirs")
    assert not schedules.finish(row("a"), "theirs", SlotStatus.SENT, "s-1", None)
    assert schedules.finish(row("a"), "mine", SlotStatus.SENT, "s-1", None)
    assert schedules.skip(row("b"), "late") and not schedules.claim(row("b"), "any")
    sent, skipped = (
        schedules.rows("morning", DAY, SlotStatus.SENT),
        schedules.rows("morning", DAY, SlotStatus.SKIPPED),
    )
    assert [(found.external_id, found.send_id) for found in sent] == [("a", "s-1")]
    assert [(found.external_id, found.reason) for found in skipped] == [("b", "late")]


def test_two_stores_on_one_table_claim_each_row_once(
    schedules: DynamoDbScheduleStore, dynamodb: object
) -> None:
    # Two dispatchers' stores taking turns over the same rows: each row goes to one of them.
    # (Claims at the same instant rest on DynamoDB's conditional writes; moto server does not
    # serialise concurrent requests, so the overlap itself is tested over SQLite.)
    other = DynamoDbScheduleStore(schedules.table_name, client=dynamodb)  # type: ignore[arg-type]
    rows = [row(f"user-{index}") for index in range(20)]
    schedules.write_plan(rows)
    won: dict[str, list[str]] = {"one": [], "two": []}
    for target in rows:
        for name, store in (("one", schedules), ("two", other)):
            if store.claim(target, name):
                won[name].append(target.external_id)
    assert won["one"] == [target.external_id for target in rows]
    assert won["two"] == []


def test_the_optin_store_merges_files_into_bounded_histories(dynamodb: object, tmp_path: Path) -> None:
    name = f"optin-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, OPTIN_HISTORY_TABLE, name)  # type: ignore[arg-type]
    dynamo = DynamoDbOptinStore(name, client=dynamodb, max_events=5)  # type: ignore[arg-type]
    sqlite = SqliteOptinStore(tmp_path / "state.sqlite3", max_events=5)
    issues: list[object] = []
    events = list(read_optin_export(str(write_optin(tmp_path / "optin.csv")), issues.append))
    assert len(issues) == 2
    for store in (dynamo, sqlite):
        assert store.record(events) == 40
        assert store.record(events) == 40  # the same file again adds nothing
        history = store.history([email_digest(1), email_digest(99)])
        assert set(history.users) == {email_digest(1)}
        user = history.users[email_digest(1)]
        assert user.group == GroupKey("active", "gold")
        assert len(user.events) == 5  # the newest five of seven kept
        assert all(hour is not None and hour % 24 == 10 for _, _, hour in user.events)  # 10:xx at +01:00
