import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cdpbridge.integrations.notify.hashing import email_sha256
from cdpbridge.integrations.notify.model import Basis
from cdpbridge.integrations.notify.observations import EngagementKind, Observation
from cdpbridge.integrations.notify.optin import load_optin_history
from cdpbridge.integrations.notify.planner import (
    PLAN_COLUMNS,
    PlanUser,
    day_slots,
    join_history,
    plan,
    plan_user_from_export,
    write_plan_csv,
)
from cdpbridge.integrations.notify.program import ProgramConfig, SendWindow

NOW = datetime(2026, 12, 7, 6, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def window(start: str, end: str) -> SendWindow:
    return SendWindow.model_validate({"start": start, "end": end})


def program(**changes: object) -> ProgramConfig:
    document: dict[str, object] = {
        "program": "winter-sale",
        "campaign_id": "c",
        "segment_id": "s",
        "send_date": "2026-12-08",
        "window": {"start": "08:00", "end": "20:00"},
        "default_time_zone": "Europe/Berlin",
        "model": {"half_life_days": 180},
    }
    document.update(changes)
    return ProgramConfig.model_validate(document)


def test_slots_skip_the_hour_lost_to_spring_forward() -> None:
    slots = day_slots(NEW_YORK, date(2026, 3, 8), window("01:00", "04:00"), 15)
    assert sorted(slots) == [1, 3]
    assert slots[1].send_at == "2026-03-08T06:00:00Z"
    assert slots[3].send_at == "2026-03-08T07:00:00Z"
    assert slots[3].local_time == "2026-03-08T03:00:00-04:00"


def test_slots_take_the_first_of_a_repeated_hour() -> None:
    slots = day_slots(NEW_YORK, date(2026, 11, 1), window("01:00", "03:00"), 15)
    assert slots[1].send_at == "2026-11-01T05:00:00Z"  # 01:00 EDT, not 01:00 EST an hour later
    assert slots[2].local_time == "2026-11-01T02:00:00-05:00"


def test_slots_start_on_utc_multiples_of_the_slot_size() -> None:
    slots = day_slots(ZoneInfo("Asia/Kathmandu"), date(2026, 12, 8), window("09:00", "12:00"), 60)
    assert {hour: slot.local_time[11:16] for hour, slot in slots.items()} == {
        9: "09:45",
        10: "10:45",
        11: "11:45",
    }
    assert all(slot.send_at.endswith(":00:00Z") for slot in slots.values())
    late_start = day_slots(NEW_YORK, date(2026, 12, 8), window("08:10", "09:00"), 15)
    assert late_start[8].local_time[11:16] == "08:15"


def test_plan_rows_per_user(tmp_path: Path) -> None:
    optin = tmp_path / "optin.csv"
    alice, bob = email_sha256("alice@example.com"), email_sha256("bob@example.com")
    lines = ["email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id"]
    # Alice opens at 17:xx New York time on weekdays; Bob's group (active/gold) is all she gives it.
    lines += [f"{alice},active,gold,open,2026-11-{day:02d}T17:10:00-05:00,c{day}" for day in range(2, 28)]
    lines += [f"{bob},active,gold,send,2026-11-03T15:00:00Z,c1"]
    optin.write_text("\n".join(lines) + "\n")
    history = load_optin_history([str(optin)], lambda issue: None)
    engagement = {
        "carol": [
            Observation("carol", EngagementKind.PUSH_OPEN, int(NOW.timestamp()) - 86_400 * day, 24 + 12)
            for day in range(1, 20)
        ]
    }
    users = [
        PlanUser("alice", alice, "America/New_York"),
        PlanUser("bob", bob, "America/New_York"),
        PlanUser("carol", None, "Asia/Tokyo"),
        PlanUser("dave", None, None),
        PlanUser("erin", None, "Not/AZone"),
        PlanUser("alice", alice, "America/New_York"),
    ]
    config = program()
    inputs = join_history(config, users, optin=history, engagement=engagement)
    assert inputs.report.duplicate_users == 1
    assert inputs.report.default_zone_users == 2 and inputs.report.unknown_zones == {"Not/AZone": 1}
    planned = plan(config, inputs, NOW)
    rows = {row.external_id: row for row in planned.rows}
    assert set(rows) == {"alice", "bob", "carol", "dave", "erin"}
    assert (rows["alice"].local_time, rows["alice"].basis) == ("2026-12-08T17:00:00-05:00", Basis.USER)
    assert rows["alice"].send_at == "2026-12-08T22:00:00Z"
    assert (rows["bob"].local_time[11:16], rows["bob"].basis) == ("17:00", Basis.SUB_SEGMENT)
    assert (rows["carol"].local_time, rows["carol"].basis) == ("2026-12-08T12:00:00+09:00", Basis.USER)
    assert rows["dave"].basis is Basis.WORKSPACE and rows["dave"].local_time.endswith("+01:00")
    assert planned.report.by_basis == {"user": 2, "sub_segment": 1, "workspace": 2}
    for row in planned.rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00Z", row.send_at)
        assert row.local_time.startswith("2026-12-08T")
    assert [row.send_at for row in planned.rows] == sorted(row.send_at for row in planned.rows)

    path = tmp_path / "PLAN.csv"
    assert write_plan_csv(planned.rows, path) == 5
    with path.open(newline="") as plan_file:
        reader = csv.reader(plan_file)
        assert tuple(next(reader)) == PLAN_COLUMNS == ("external_id", "send_at", "local_time", "basis")
        written = list(reader)
    assert len(written) == 5 and {line[3] for line in written} <= {
        "user",
        "sub_segment",
        "segment",
        "workspace",
    }
    assert not (tmp_path / "PLAN.csv.partial").exists()


def test_planning_again_gives_the_same_plan() -> None:
    config = program()
    users = [PlanUser(f"u{index}", None, "Europe/Paris") for index in range(5)]
    engagement = {
        "u1": [
            Observation("u1", EngagementKind.EMAIL_CLICK, int(NOW.timestamp()) - 3600 * i, 24 + 19)
            for i in range(9)
        ]
    }
    first = plan(config, join_history(config, users, engagement=engagement), NOW)
    second = plan(config, join_history(config, users, engagement=engagement), NOW)
    assert first.rows == second.rows


def test_users_from_a_segment_export_are_hashed_at_once() -> None:
    user = plan_user_from_export(
        {
            "external_id": "u1",
            "email": " Alice@Example.com ",
            "time_zone": "America/New_York",
            "braze_id": "b",
        }
    )
    assert user == PlanUser("u1", email_sha256("alice@example.com"), "America/New_York")
    assert plan_user_from_export({"external_id": "u2", "email": "", "time_zone": ""}) == PlanUser("u2")
    assert plan_user_from_export({"braze_id": "anonymous", "email": "x@example.com"}) is None


def test_a_window_inside_a_dst_gap_plans_nobody_there_and_says_so() -> None:
    config = program(send_date="2026-03-08", window={"start": "02:00", "end": "02:30"})
    users = [PlanUser("ny", None, "America/New_York"), PlanUser("berlin", None, "Europe/Berlin")]
    planned = plan(config, join_history(config, users), NOW)
    assert [row.external_id for row in planned.rows] == ["berlin"]
    assert planned.report.without_slot == 1
