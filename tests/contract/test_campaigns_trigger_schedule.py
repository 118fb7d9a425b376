"""POST /campaigns/trigger/schedule/create, /update and /delete, as Braze documents them.

- create takes the trigger/send body plus ``schedule: {time, in_local_time, at_optimal_time}`` and
  answers a ``schedule_id``; update takes ``campaign_id``, ``schedule_id`` and a new ``schedule``;
  delete takes ``campaign_id`` and ``schedule_id``. (gap row 18)
- With ``in_local_time`` or ``at_optimal_time`` the time carries no zone designator; with
  ``in_local_time``, a time already past in some time zone is a 400. (row 18)
- The emulator's dispatch log shows each recipient's delivery time: the schedule's time, or that
  wall-clock time in the recipient's zone; update moves it, delete cancels the dispatch.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from cdpbridge.braze import BrazeRequestError, TriggerSchedule
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


@pytest.fixture
def campaign(emulator: EmulatorClient) -> str:
    emulator.admin("POST", "/campaigns", {"campaign_id": "c1", "name": "Reminder"})
    emulator.track(
        attributes=[
            {"external_id": "paris", "time_zone": "Europe/Paris"},
            {"external_id": "tokyo", "time_zone": "Asia/Tokyo"},
        ]
    )
    return "c1"


RECIPIENTS = [{"external_user_id": "paris"}, {"external_user_id": "tokyo"}]


def test_local_time_is_read_in_each_recipients_zone(
    braze: BrazeClientFactory, emulator: EmulatorClient, campaign: str
) -> None:
    schedule = TriggerSchedule(time=datetime(2031, 6, 1, 9, 0), in_local_time=True)
    result = braze().schedule_trigger(campaign, schedule=schedule, recipients=RECIPIENTS)
    [dispatch] = emulator.admin("GET", "/dispatches")["dispatches"]
    assert dispatch["schedule_id"] == result.schedule_id and dispatch["status"] == "scheduled"
    deliveries = {recipient["external_id"]: recipient["deliver_at"] for recipient in dispatch["recipients"]}
    assert deliveries == {"paris": "2031-06-01T07:00:00.000Z", "tokyo": "2031-06-01T00:00:00.000Z"}


def test_local_or_optimal_time_takes_no_zone_designator(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    for flag in ("in_local_time", "at_optimal_time"):
        body = {
            "campaign_id": campaign,
            "broadcast": True,
            "schedule": {"time": "2031-06-01T09:00:00Z", flag: True},
        }
        refused = emulator.post("/campaigns/trigger/schedule/create", body)
        assert refused.status_code == 400 and "no zone designator" in refused.json()["message"]
    with pytest.raises(BrazeRequestError, match="naive"):
        braze().schedule_trigger(
            campaign, broadcast=True, schedule={"time": "2031-06-01T09:00:00+00:00", "in_local_time": True}
        )


def test_in_local_time_already_past_somewhere_is_400(emulator: EmulatorClient, campaign: str) -> None:
    soon = datetime.now().replace(microsecond=0).isoformat()
    body = {"campaign_id": campaign, "broadcast": True, "schedule": {"time": soon, "in_local_time": True}}
    refused = emulator.post("/campaigns/trigger/schedule/create", body)
    assert refused.status_code == 400 and "already passed" in refused.json()["message"]


def test_update_moves_the_delivery_and_delete_cancels_it(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    client = braze()
    created = client.schedule_trigger(
        campaign, schedule={"time": "2031-06-01T09:00:00Z"}, recipients=[{"external_user_id": "paris"}]
    )
    assert created.schedule_id is not None
    client.update_schedule(campaign, created.schedule_id, {"time": "2031-06-02T10:00:00Z"})
    [dispatch] = emulator.admin("GET", "/dispatches")["dispatches"]
    assert dispatch["recipients"][0]["deliver_at"] == "2031-06-02T10:00:00.000Z"
    client.delete_schedule(campaign, created.schedule_id)
    [dispatch] = emulator.admin("GET", "/dispatches")["dispatches"]
    assert dispatch["status"] == "cancelled"
    # A cancelled schedule can no longer be changed
    again = emulator.post(
        "/campaigns/trigger/schedule/delete", {"campaign_id": campaign, "schedule_id": created.schedule_id}
    )
    assert again.status_code == 400
