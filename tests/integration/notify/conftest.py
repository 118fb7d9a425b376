"""Notify against the Braze emulator over real HTTP: a workspace with users, a segment, a campaign."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from cdpbridge_local.currents_data import avro_bytes, land, load_sample
from cdpbridge_local.emulator import EmulatorServer

from ..emulator_admin import Braze

CAMPAIGN_ID = "notify-campaign-1"
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo")


@pytest.fixture(scope="package")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@dataclass
class Workspace:
    braze: Braze
    segment_id: str
    external_ids: list[str]

    def dispatches(self) -> list[dict[str, Any]]:
        response = self.braze.session.get(
            f"{self.braze.url}/_emulator/dispatches", params={"campaign_id": CAMPAIGN_ID}, timeout=10
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["dispatches"]
        return found


def email_of(index: int) -> str:
    return f"Person.{index}@Example.com "


def email_digest(index: int) -> str:
    return hashlib.sha256(email_of(index).strip().lower().encode()).hexdigest()


@pytest.fixture
def workspace(braze: Braze) -> Workspace:
    """160 users: most in Paris (more than 50 share a slot), some in New York and Tokyo, some
    without a zone; a segment of them all and the API-triggered campaign."""
    braze.configure(export_delay_s=0.2)
    users = []
    for index in range(160):
        user: dict[str, Any] = {"external_id": f"user-{index:03d}", "email": email_of(index).strip()}
        if index % 10:
            user["time_zone"] = ZONES[0] if index < 120 else ZONES[index % 3]
        users.append(user)
    for start in range(0, len(users), 75):
        braze.seed(*users[start : start + 75])
    segment_id = braze.add_segment("notify audience")
    braze.session.post(
        f"{braze.url}/_emulator/campaigns", json={"campaign_id": CAMPAIGN_ID, "name": "Notify"}, timeout=10
    ).raise_for_status()
    return Workspace(braze, segment_id, [user["external_id"] for user in users])


def write_program(path: Path, segment_id: str, **overrides: Any) -> Path:
    program = {
        "program": "morning",
        "campaign_id": CAMPAIGN_ID,
        "segment_id": segment_id,
        "send_date": "2026-12-08",
        "window": {"start": "09:00", "end": "12:00"},
        "slot_minutes": 15,
        "default_time_zone": "Europe/London",
        "grace_minutes": 30,
        **overrides,
    }
    path.write_text(yaml.safe_dump(program), encoding="utf-8")
    return path


def write_optin(path: Path) -> Path:
    """Users 0-39 opened at 10:xx local (written with their Paris offset); a few bad rows."""
    lines = ["email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id"]
    for index in range(40):
        for day in range(1, 8):
            lines.append(f"{email_digest(index)},active,gold,open,2026-11-{day:02d}T10:20:00+01:00,c1")
    lines.append("not-a-hash,active,gold,open,2026-11-02T10:20:00+01:00,c1")
    lines.append(f"{email_digest(1)},active,gold,teleport,2026-11-02T10:20:00+01:00,c1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CURRENTS_FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "currents"
NEW_YORK = ZoneInfo("America/New_York")


def new_york_users() -> list[str]:
    return [f"user-{index:03d}" for index in range(120, 160) if index % 10 and ZONES[index % 3] == ZONES[1]]


def write_currents(root: Path) -> Path:
    """E-mail opens of the New York users at 11:40 local on ten days (plus machine opens at 09:05,
    which must not count), in Braze's layout."""
    sample = load_sample(CURRENTS_FIXTURES / "users.messages.email.Open.avro")
    events = []
    for user in new_york_users():
        for day in range(10):
            for hour, minute, machine in ((11, 40, "false"), (9, 5, "true")):
                local = datetime(2026, 11, 20 + day, hour, minute, tzinfo=NEW_YORK)
                event = dict(sample.record)
                event.update(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user}/{day}/{hour}")),
                    time=int(local.timestamp()),
                    external_user_id=user,
                    timezone="America/New_York",
                )
                if "machine_open" in event:
                    event["machine_open"] = machine
                events.append(event)
    land(root, sample.event_type, avro_bytes(sample.schema, events))
    return root
