"""Notify through the template's wiring: an opt-in export dropped into inbound/notify/optin/ lands in
the opt-in history, the planner exports the program's segment (waiting for Braze through its own
queue) and writes every user's slot to the schedules table, and a day of dispatcher runs sends each
user once, in their slot, at most 50 recipients a call."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml

from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
API_KEY = "local-dev-key"
CAMPAIGN_ID = "notify-e2e-campaign"
SEND_DATE = "2026-12-08"
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
USERS = 90


def email(index: int) -> str:
    return f"reader{index}@example.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        stack_name="notify-e2e",
        # Braze's export waits shortened from minutes to fractions of a second.
        env_vars={
            "NotifyPlannerFunction": {
                "EXPORT_POLL_INITIAL_S": "0.2",
                "EXPORT_POLL_MAX_S": "0.5",
                "EXPORT_QUIET_PERIOD_S": "0.3",
                "EXPORT_INLINE_WAIT_MAX_S": "0.3",
            }
        },
        failed_message_visibility_s=0,
    ) as running:
        yield running


def emulator(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    assert stack.emulator is not None
    response = requests.request(method, f"{stack.emulator.url}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def seed_workspace(stack: LocalStack) -> str:
    assert stack.emulator is not None
    users = [
        {"external_id": f"reader-{index:03d}", "email": email(index), "time_zone": ZONES[index % 3]}
        for index in range(USERS)
    ]
    for start in range(0, USERS, 75):
        response = requests.post(
            f"{stack.emulator.url}/users/track",
            json={"attributes": users[start : start + 75]},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        response.raise_for_status()
    segment_id: str = emulator(stack, "POST", "/_emulator/segments", {"name": "Notify readers"})["segment_id"]
    emulator(stack, "POST", "/_emulator/campaigns", {"campaign_id": CAMPAIGN_ID, "name": "Morning read"})
    export_s3 = {
        "endpoint_url": stack.moto_url,
        "bucket": stack.drop_bucket,
        "path": "",
        "region": "us-east-1",
    }
    emulator(stack, "PUT", "/_emulator/config", {"export_s3": export_s3, "export_delay_s": 0.5})
    return segment_id


def optin_csv() -> bytes:
    """Readers 0-29 opened at 11:xx in their own zone (written with Z: the planner places them)."""
    lines = ["email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id"]
    for index in range(30):
        digest = hashlib.sha256(email(index).encode()).hexdigest()
        offset = {"Europe/Paris": 1, "America/New_York": -5, "Asia/Tokyo": 9}[ZONES[index % 3]]
        for day in range(2, 9):
            local = datetime(2026, 11, day, 11, 15)
            utc = local - timedelta(hours=offset)
            lines.append(f"{digest},active,gold,open,{utc:%Y-%m-%dT%H:%M:%S}Z,c-1")
    lines.append("0123,active,gold,open,2026-11-02T10:00:00Z,c-1")  # not a hash: rejected
    return ("\n".join(lines) + "\n").encode()


def scan(stack: LocalStack, logical_id: str) -> list[dict[str, Any]]:
    table = stack.physical_id(logical_id)
    items: list[dict[str, Any]] = stack.dynamodb_client.scan(TableName=table)["Items"]
    return items


def test_a_day_of_dispatches_sends_each_user_once_in_their_slot(stack: LocalStack) -> None:
    # Given a workspace, a program in the bucket and an opt-in export in the drop prefix
    segment_id = seed_workspace(stack)
    program = {
        "program": "morning",
        "campaign_id": CAMPAIGN_ID,
        "segment_id": segment_id,
        "window": {"start": "09:00", "end": "12:00"},
        "slot_minutes": 15,
        "default_time_zone": "Europe/London",
        "grace_minutes": 30,
    }
    stack.put_object("config/notify/morning.yaml", yaml.safe_dump(program).encode())
    stack.put_object("inbound/notify/optin/optin-2026-12.csv", optin_csv())
    logs = [record.logs for record in stack.drain(timeout_s=120)]
    assert len(scan(stack, "NotifyOptinTable")) == 30
    report_keys = [
        item["Key"]
        for item in stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/notify-optin/")[
            "Contents"
        ]
    ]
    assert any(key.endswith(".rejects.csv") for key in report_keys)

    # When the planner runs for the send date and its export continuations are delivered
    first = stack.invoke_record("NotifyPlannerFunction", {"send_date": SEND_DATE})
    assert first.response["programs"]["morning"]["status"] in ("waiting", "planned"), first.response
    logs += [first.logs, *(record.logs for record in stack.drain(timeout_s=120))]

    # Then every reader has a slot; the opt-in readers the one of their 11:xx opens
    schedules = {item["sk"]["S"]: item for item in scan(stack, "SchedulesTable")}
    assert len(schedules) == USERS
    assert all(item["pk"]["S"] == f"notify#morning#{SEND_DATE}" for item in schedules.values())
    for index in range(30):
        assert schedules[f"reader-{index:03d}"]["lt"]["S"][11:16] == "11:00"

    # When the dispatcher runs every 5 minutes through the day
    slots = sorted({item["at"]["S"] for item in schedules.values()})
    now = datetime.fromisoformat(slots[0]) - timedelta(minutes=5)
    end = datetime.fromisoformat(slots[-1]) + timedelta(minutes=10)
    sent_when: dict[str, datetime] = {}
    while now <= end:
        record = stack.invoke_record("NotifyDispatchFunction", {"now": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        logs.append(record.logs)
        report = record.response["programs"]["morning"]
        assert report["skipped_late"] == [] and report["failed"] == [], report
        for send_id in report["send_ids"]:
            sent_when[send_id] = now
        now += timedelta(minutes=5)

    # Then Braze's dispatch log has each reader once, in their slot, at most 50 a call
    calls = emulator(stack, "GET", f"/_emulator/dispatches?campaign_id={CAMPAIGN_ID}")["dispatches"]
    recipients = [(call, recipient) for call in calls for recipient in call["recipients"]]
    assert Counter(recipient["external_id"] for _, recipient in recipients) == Counter(list(schedules))
    assert all(len(call["recipients"]) <= 50 for call in calls)
    for call, recipient in recipients:
        slot = schedules[recipient["external_id"]]["at"]["S"]
        assert recipient["trigger_properties"]["notify_slot"] == slot
        assert (
            timedelta(0) <= sent_when[call["send_id"]] - datetime.fromisoformat(slot) < timedelta(minutes=5)
        )
    statuses = Counter(item["s"]["S"] for item in scan(stack, "SchedulesTable"))
    assert statuses == Counter({"sent": USERS})

    # And a dispatcher run again at the end of the day sends nothing more
    again = stack.invoke("NotifyDispatchFunction", {"now": end.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert again["programs"]["morning"]["sent"] == 0
    assert len(
        emulator(stack, "GET", f"/_emulator/dispatches?campaign_id={CAMPAIGN_ID}")["dispatches"]
    ) == len(calls)
    assert orjson.dumps(again)  # the report is JSON

    # And no e-mail address reached a log line, nor the users file the planner wrote
    assert not any("@example.com" in text for text in logs)
    (users_key,) = [
        item["Key"]
        for item in stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="outbound/notify/")[
            "Contents"
        ]
    ]
    users_file = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=users_key)["Body"].read().decode()
    assert users_file.startswith("external_id,email_sha256,time_zone")
    assert "@" not in users_file
