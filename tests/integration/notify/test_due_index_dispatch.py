"""The dispatcher over the DynamoDB schedules (moto server) and the emulator: what it reads through
the due index, a plan written before the index, and rows another dispatcher claims meanwhile."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge.integrations.notify.dispatcher import Dispatcher
from cdpbridge.integrations.notify.program import ProgramConfig, load_program
from cdpbridge.integrations.notify.schedules import (
    SCHEDULES_TABLE,
    DynamoDbScheduleStore,
    ScheduledSend,
    SlotStatus,
    partition_key,
)
from cdpbridge.state.tables import create_table
from tests.moto_server import moto_server

from ..emulator_admin import API_KEY, Braze
from .conftest import CAMPAIGN_ID, write_program

DAY = date(2026, 12, 8)
SLOT = "2026-12-08T09:00:00Z"
LATER = "2026-12-08T09:15:00Z"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with moto_server() as url:
        yield boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"schedules-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, SCHEDULES_TABLE, name)
    return name


@pytest.fixture
def program(braze: Braze, tmp_path: Path) -> ProgramConfig:
    """The program and its campaign; the users the tests plan exist in the workspace."""
    users = [f"user-{index:03d}" for index in range(65)] + [f"user-{index:02d}" for index in range(10)]
    for start in range(0, len(users), 75):
        braze.seed(*({"external_id": user} for user in users[start : start + 75]))
    braze.seed({"external_id": "later"})
    braze.session.post(
        f"{braze.url}/_emulator/campaigns", json={"campaign_id": CAMPAIGN_ID, "name": "Notify"}, timeout=10
    ).raise_for_status()
    return load_program(write_program(tmp_path / "PROGRAM.yaml", "segment-1"))


def client_of(braze: Braze) -> BrazeClient:
    return BrazeClient(BrazeSettings(rest_endpoint=braze.url), API_KEY)


def sent(braze: Braze) -> Counter[str]:
    response = braze.session.get(
        f"{braze.url}/_emulator/dispatches", params={"campaign_id": CAMPAIGN_ID}, timeout=10
    )
    response.raise_for_status()
    return Counter(
        recipient["external_id"]
        for dispatch in response.json()["dispatches"]
        for recipient in dispatch["recipients"]
    )


def at(text: str, minutes: int = 0) -> datetime:
    return datetime.fromisoformat(text) + timedelta(minutes=minutes)


def row(user: str, send_at: str = SLOT) -> ScheduledSend:
    return ScheduledSend("morning", DAY, user, send_at, send_at.replace("Z", "+00:00"), "user")


def test_a_plan_written_before_the_index_goes_out_once(
    dynamodb: Any, table: str, braze: Braze, program: ProgramConfig
) -> None:
    # Rows as the previous version planned them: no q, no ix.
    for index in range(65):
        send_at = SLOT if index < 60 else LATER
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": partition_key("morning", DAY)},
                "sk": {"S": f"user-{index:03d}"},
                "at": {"S": send_at},
                "lt": {"S": send_at.replace("Z", "+00:00")},
                "b": {"S": "segment"},
                "s": {"S": "planned"},
                "u": {"N": "1796000000"},
                "expires_at": {"N": "1799000000"},
            },
        )
    store = DynamoDbScheduleStore(table, client=dynamodb)
    first = Dispatcher(program, store, client_of(braze)).dispatch(at(SLOT), [DAY])
    assert (first.due, first.sent, first.calls) == (60, 60, 2)
    second = Dispatcher(program, store, client_of(braze)).dispatch(at(LATER), [DAY])
    assert (second.due, second.sent) == (5, 5)
    third = Dispatcher(program, store, client_of(braze)).dispatch(at(LATER, 5), [DAY])
    assert (third.due, third.sent) == (0, 0)
    assert sent(braze) == Counter({f"user-{index:03d}": 1 for index in range(65)})
    assert {found.status for found in store.rows("morning", DAY)} == {SlotStatus.SENT}


class ClaimedMeanwhile(DynamoDbScheduleStore):
    """Another dispatcher claims some rows between this one's index read and its claims (the index
    can still show them planned: its reads are eventually consistent)."""

    def __init__(self, table: str, client: Any, taken: set[str]) -> None:
        super().__init__(table, client=client)
        self._other = DynamoDbScheduleStore(table, client=client)
        self._taken = taken

    def due_rows(self, program: str, send_date: date, until: str) -> list[ScheduledSend]:
        found = super().due_rows(program, send_date, until)
        for target in found:
            if target.external_id in self._taken:
                assert self._other.claim(target, "the-other-dispatcher")
        return found


def test_rows_claimed_by_another_dispatcher_meanwhile_are_taken_by_others(
    dynamodb: Any, table: str, braze: Braze, program: ProgramConfig
) -> None:
    users = [f"user-{index:02d}" for index in range(10)]
    DynamoDbScheduleStore(table, client=dynamodb).write_plan([row(user) for user in users])
    store = ClaimedMeanwhile(table, dynamodb, taken=set(users[:4]))
    report = Dispatcher(program, store, client_of(braze)).dispatch(at(SLOT), [DAY])
    assert (report.due, report.taken_by_others, report.sent) == (10, 4, 6)
    assert sent(braze) == Counter(users[4:])


def test_claimed_rows_are_reported_unconfirmed_and_done_rows_are_not_read_again(
    dynamodb: Any, table: str, braze: Braze, program: ProgramConfig
) -> None:
    writer = DynamoDbScheduleStore(table, client=dynamodb)
    writer.write_plan([row(f"user-{index:02d}") for index in range(8)] + [row("later", LATER)])
    for index in range(3):  # a dispatcher died after claiming these
        assert writer.claim(row(f"user-{index:02d}"), "dead")
    store = DynamoDbScheduleStore(table, client=dynamodb)
    report = Dispatcher(program, store, client_of(braze)).dispatch(at(SLOT), [DAY])
    assert (report.due, report.sent, report.unconfirmed) == (5, 5, [])
    late = Dispatcher(program, store, client_of(braze)).dispatch(at(SLOT, program.grace_minutes + 1), [DAY])
    # The claimed rows are reported; the sent ones are out of the index; "later" goes out.
    assert sorted(late.unconfirmed) == ["user-00", "user-01", "user-02"]
    assert (late.due, late.sent, late.skipped_late) == (1, 1, [])
    index = dynamodb.scan(TableName=table, IndexName="due")["Items"]
    assert sorted(item["sk"]["S"] for item in index) == ["user-00", "user-01", "user-02"]
    assert sent(braze) == Counter([f"user-{index:02d}" for index in range(3, 8)] + ["later"])
