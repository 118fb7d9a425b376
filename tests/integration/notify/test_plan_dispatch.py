"""cdpbridge notify plan and dispatch against the emulator: the dispatch log is the evidence."""

from __future__ import annotations

import csv
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge.integrations.notify.dispatcher import Dispatcher
from cdpbridge.integrations.notify.program import load_program
from cdpbridge.integrations.notify.schedules import ScheduledSend, SlotStatus, SqliteScheduleStore
from cdpbridge_local.cli import main
from cdpbridge_local.commands.notify import read_plan_csv

from ..emulator_admin import API_KEY
from .conftest import CAMPAIGN_ID, Workspace, new_york_users, write_currents, write_optin, write_program


def plan(tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    program = write_program(tmp_path / "PROGRAM.yaml", workspace.segment_id)
    out = tmp_path / "PLAN.csv"
    code = main(
        [
            "notify", "plan", "--program", str(program),
            "--engagement", str(write_currents(tmp_path / "currents")),
            "--optin", str(write_optin(tmp_path / "optin.csv")),
            "--braze-url", workspace.braze.url, "--api-key", API_KEY,
            "--state", str(tmp_path / "state.sqlite3"), "--out", str(out),
            "--now", "2026-12-07T06:00:00Z",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["segment_users"] == 160
    assert summary["optin_rejected_rows"] == 2
    return program, out


def dispatch(
    program: Path, plan_csv: Path, now: datetime, workspace: Workspace, state: Path, capsys: Any
) -> dict[str, Any]:
    code = main(
        [
            "notify", "dispatch", "--program", str(program), "--plan", str(plan_csv),
            "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--braze-url", workspace.braze.url, "--api-key", API_KEY, "--state", str(state),
        ]
    )  # fmt: skip
    report: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    assert code == 0, orjson.dumps(report).decode()
    return report


def plan_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["external_id", "send_at", "local_time", "basis"]
        return {row["external_id"]: row for row in reader}


def sent_recipients(workspace: Workspace) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (dispatch, recipient) for dispatch in workspace.dispatches() for recipient in dispatch["recipients"]
    ]


def test_a_day_of_dispatches_sends_each_planned_user_once_in_their_slot(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    program, plan_csv = plan(tmp_path, workspace, capsys)
    planned = plan_rows(plan_csv)
    assert sorted(planned) == workspace.external_ids
    # Paris users with opt-in opens at 10:xx are planned from their own history at 10:00 local.
    assert planned["user-001"]["basis"] in ("user", "sub_segment")
    assert planned["user-001"]["local_time"].startswith("2026-12-08T10:00:00+01:00")
    # New York users opened at 11:40 on Currents (their machine opens at 09:05 do not count).
    for user in new_york_users():
        assert planned[user]["local_time"] == "2026-12-08T11:00:00-05:00", planned[user]
    first = min(datetime.fromisoformat(row["send_at"]) for row in planned.values())
    last = max(datetime.fromisoformat(row["send_at"]) for row in planned.values())
    state = tmp_path / "dispatch.sqlite3"
    now = first - timedelta(minutes=10)
    dispatch_times: dict[str, datetime] = {}
    while now <= last + timedelta(minutes=10):
        report = dispatch(program, plan_csv, now, workspace, state, capsys)
        assert not report["skipped_late"]
        for send_id in report["send_ids"]:
            dispatch_times[send_id] = now
        now += timedelta(minutes=5)

    pairs = sent_recipients(workspace)
    sent = Counter(recipient["external_id"] for _, recipient in pairs)
    assert sent == Counter(workspace.external_ids)  # every planned user, once
    calls = workspace.dispatches()
    assert all(len(call["recipients"]) <= 50 for call in calls)
    assert max(len(call["recipients"]) for call in calls) == 50  # a crowded slot was split
    for call, recipient in pairs:
        slot = planned[recipient["external_id"]]["send_at"]
        assert recipient["trigger_properties"]["notify_slot"] == slot
        # Sent by the first dispatch at or after the slot, within the 5-minute schedule.
        sent_at = dispatch_times[call["send_id"]]
        assert timedelta(0) <= sent_at - datetime.fromisoformat(slot) < timedelta(minutes=5)
        assert call["send_id"].startswith("notify-morning-")


def test_overlapping_dispatchers_send_nothing_twice(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    program_path, plan_csv = plan(tmp_path, workspace, capsys)
    program = load_program(program_path)
    state = tmp_path / "dispatch.sqlite3"
    rows, problems = read_plan_csv(plan_csv, program)
    assert not problems
    SqliteScheduleStore(state).write_plan(rows)
    now = max(datetime.fromisoformat(row.send_at) for row in rows)
    reports = []

    def run() -> None:
        store = SqliteScheduleStore(state)
        client = BrazeClient(BrazeSettings(rest_endpoint=workspace.braze.url), API_KEY)
        reports.append(Dispatcher(program, store, client).dispatch(now, [program.send_date]))

    workers = [threading.Thread(target=run) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent = Counter(recipient["external_id"] for _, recipient in sent_recipients(workspace))
    # Slots up to `now` are due; the grace period keeps the early ones from being sent late.
    late = {user for report in reports for user, _ in report.skipped_late}
    assert set(sent) | late == {row.external_id for row in rows}
    assert all(count == 1 for count in sent.values())
    assert not set(sent) & late
    assert sum(report.sent for report in reports) == len(sent)


def test_a_dispatcher_killed_half_way_does_not_resend(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    program_path, plan_csv = plan(tmp_path, workspace, capsys)
    program = load_program(program_path)
    state = tmp_path / "dispatch.sqlite3"
    rows, _ = read_plan_csv(plan_csv, program)
    store = SqliteScheduleStore(state)
    store.write_plan(rows)
    crowded = Counter(row.send_at for row in rows).most_common(1)[0][0]
    now = datetime.fromisoformat(crowded)

    class Killed(BaseException):
        """The process dying between the Braze call and the confirmation."""

    def die(_: Any) -> None:
        raise Killed

    client = BrazeClient(BrazeSettings(rest_endpoint=workspace.braze.url), API_KEY)
    with pytest.raises(Killed):
        Dispatcher(program, store, client, after_send=die).dispatch(now, [program.send_date])
    first_call = sent_recipients(workspace)
    assert len(first_call) == 50
    claimed = store.rows(program.program, program.send_date, SlotStatus.CLAIMED)
    assert len(claimed) == 50

    later = now + timedelta(minutes=program.grace_minutes + 1)
    report = dispatch(program_path, plan_csv, now + timedelta(minutes=5), workspace, state, capsys)
    assert report["sent"] > 0
    report = dispatch(program_path, plan_csv, later, workspace, state, capsys)
    assert report["unconfirmed"] == 50
    sent = Counter(recipient["external_id"] for _, recipient in sent_recipients(workspace))
    assert all(count == 1 for count in sent.values())
    assert sum(1 for row in rows if row.send_at == crowded) == sum(
        1 for user in sent if next(r for r in rows if r.external_id == user).send_at == crowded
    )


def test_late_slots_are_skipped_and_reported(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    program_path, plan_csv = plan(tmp_path, workspace, capsys)
    planned = plan_rows(plan_csv)
    last = max(datetime.fromisoformat(row["send_at"]) for row in planned.values())
    state = tmp_path / "dispatch.sqlite3"
    report = dispatch(program_path, plan_csv, last + timedelta(hours=2), workspace, state, capsys)
    assert report["sent"] == 0
    assert {entry["external_id"] for entry in report["skipped_late"]} == set(planned)
    assert workspace.dispatches() == []
    again = dispatch(program_path, plan_csv, last + timedelta(hours=3), workspace, state, capsys)
    assert again["due"] == 0 and again["skipped_late"] == []
    store = SqliteScheduleStore(state)
    skipped = store.rows("morning", datetime(2026, 12, 8, tzinfo=UTC).date(), SlotStatus.SKIPPED)
    assert len(skipped) == len(planned)
    assert all(isinstance(row, ScheduledSend) and "late" in (row.reason or "") for row in skipped)


def test_a_replan_keeps_what_was_sent(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    program_path, plan_csv = plan(tmp_path, workspace, capsys)
    planned = plan_rows(plan_csv)
    first = min(datetime.fromisoformat(row["send_at"]) for row in planned.values())
    state = tmp_path / "dispatch.sqlite3"
    sent = dispatch(program_path, plan_csv, first, workspace, state, capsys)["sent"]
    assert sent > 0
    # The same plan loaded again (a retried dispatch, a re-plan) sends nobody twice.
    again = dispatch(program_path, plan_csv, first, workspace, state, capsys)
    assert again["sent"] == 0 and again["due"] == 0
    assert CAMPAIGN_ID in {call["campaign_id"] for call in workspace.dispatches()}


def test_slots_beyond_brazes_send_id_cap_still_go_out(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.braze.configure(custom_send_ids_per_campaign_per_day=1)
    program_path, plan_csv = plan(tmp_path, workspace, capsys)
    planned = plan_rows(plan_csv)
    slots = sorted({row["send_at"] for row in planned.values()})
    assert len(slots) >= 2
    state = tmp_path / "dispatch.sqlite3"
    first = dispatch(program_path, plan_csv, datetime.fromisoformat(slots[0]), workspace, state, capsys)
    second = dispatch(program_path, plan_csv, datetime.fromisoformat(slots[1]), workspace, state, capsys)
    assert first["send_ids"] and not first["send_ids_not_created"]
    assert second["send_ids_not_created"] and not second["send_ids"]
    calls = workspace.dispatches()
    assert {call["send_id"] for call in calls} == {first["send_ids"][0], None}
    sent = Counter(recipient["external_id"] for _, recipient in sent_recipients(workspace))
    assert sum(sent.values()) == first["sent"] + second["sent"] == len(sent)
