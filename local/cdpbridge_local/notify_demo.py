"""The Notify step of `cdpbridge demo`: a program over the profiles the demo synced, planned by the
planner function (segment export through the bucket) and dispatched over its day, every 5 minutes."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import yaml

PROGRAM = "demo-morning"
CAMPAIGN_ID = "notify-demo-campaign"
SEND_DATE = "2026-12-08"


def run_notify_step(stack: Any, admin: Any) -> None:
    """Needs the emulator's segment exports going to the drop bucket (the BlueConic step sets it)."""
    emulator = stack.emulator.url
    print(f"== Notify: program '{PROGRAM}' planned for {SEND_DATE} and dispatched through its day")
    started = time.monotonic()
    # The first 300 CRM customers, so that the step stays short.
    audience = {
        "name": "Notify audience",
        "filter": {"attribute": "external_id", "op": "in", "value": [f"C{n:08d}" for n in range(300)]},
    }
    segment = admin.post(f"{emulator}/_emulator/segments", json=audience, timeout=10)
    segment.raise_for_status()
    admin.post(
        f"{emulator}/_emulator/campaigns",
        json={"campaign_id": CAMPAIGN_ID, "name": "Morning read"},
        timeout=10,
    ).raise_for_status()
    program = {
        "program": PROGRAM,
        "campaign_id": CAMPAIGN_ID,
        "segment_id": segment.json()["segment_id"],
        "window": {"start": "09:00", "end": "11:00"},
        "slot_minutes": 15,
        "default_time_zone": "Europe/Berlin",
    }
    stack.put_object(f"config/notify/{PROGRAM}.yaml", yaml.safe_dump(program).encode())
    stack.invoke("NotifyPlannerFunction", {"send_date": SEND_DATE, "programs": [PROGRAM]})
    stack.drain(timeout_s=300)
    table = stack.physical_id("SchedulesTable")
    pages = stack.dynamodb_client.get_paginator("scan").paginate(TableName=table)
    rows = [row for page in pages for row in page["Items"]]
    slots = sorted({row["at"]["S"] for row in rows})
    print(f"   planned {len(rows):,} users into {len(slots)} slots, {slots[0]} to {slots[-1]}")
    now = datetime.fromisoformat(slots[0])
    runs = 0
    while now <= datetime.fromisoformat(slots[-1]) + timedelta(minutes=5):
        stack.invoke("NotifyDispatchFunction", {"now": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        runs += 1
        now += timedelta(minutes=5)
    calls: list[dict[str, Any]] = admin.get(
        f"{emulator}/_emulator/dispatches", params={"campaign_id": CAMPAIGN_ID}, timeout=10
    ).json()["dispatches"]
    sent = Counter(recipient["external_id"] for call in calls for recipient in call["recipients"])
    print(
        f"   {runs} dispatcher runs: {len(calls):,} /campaigns/trigger/send calls "
        f"(at most {max((len(call['recipients']) for call in calls), default=0)} recipients each), "
        f"{len(sent):,} users sent, each {'once' if set(sent.values()) <= {1} else 'MORE THAN ONCE'}"
    )
    print(f"   planned and dispatched in {time.monotonic() - started:.1f} s\n")
