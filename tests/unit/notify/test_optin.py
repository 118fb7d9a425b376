import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cdpbridge.integrations.notify.hashing import email_sha256
from cdpbridge.integrations.notify.model import GroupKey
from cdpbridge.integrations.notify.observations import EngagementKind
from cdpbridge.integrations.notify.optin import (
    OptinEventType,
    load_optin_history,
    parse_occurred_at,
    read_optin_export,
)
from cdpbridge.records import RowIssue
from cdpbridge.sources import SourceError
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter, iter_rejects, merge_rejects

ALICE = email_sha256("alice@example.com")
BOB = email_sha256("bob@example.com")
HEADER = "email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id\n"


def write(tmp_path: Path, body: str, name: str = "optin.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_good_rows_become_typed_events(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{ALICE},active,gold,open,2026-06-02T09:15:00+02:00,c1\n"
        f"{ALICE.upper()},active,gold,click,2026-06-02T07:20:00Z,c1\n"
        f"{BOB},inactive,,purchase,2026-06-06T18:00:00-04:00,\n",
    )
    issues: list[RowIssue] = []
    events = list(read_optin_export(str(path), issues.append))
    assert issues == []
    assert [event.event_type for event in events] == [
        OptinEventType.OPEN,
        OptinEventType.CLICK,
        OptinEventType.PURCHASE,
    ]
    first, second, third = events
    assert first.email_sha256 == second.email_sha256 == ALICE  # upper-case hex is the same digest
    assert first.occurred_at == int(datetime(2026, 6, 2, 7, 15, tzinfo=UTC).timestamp())
    assert first.utc_offset_s == 7200 and first.local_hour_of_week == 24 + 9  # Tuesday 09:00 as written
    assert second.utc_offset_s is None and second.local_hour_of_week is None  # Z: local time unknown
    assert third.sub_segment is None and third.campaign_id is None
    assert third.local_hour_of_week == 5 * 24 + 18
    assert first.position.row == 1 and third.position.row == 3


def test_bad_rows_are_named_by_file_row_field_and_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{ALICE},active,gold,open,2026-06-02T09:15:00+02:00,c1\n"
        "carol@example.com,active,gold,open,2026-06-02T09:15:00Z,c1\n"
        f"{BOB},active,gold,bounce,2026-06-02T09:15:00Z,c1\n"
        f"{BOB},active,gold,open,2026-06-02 09:15,c1\n"
        f"{BOB},active,gold,open,yesterday,c1\n"
        f"{BOB},active\n"
        f"{BOB},active,gold,send,2026-06-02T09:00:00Z,c1\n",
    )
    issues: list[RowIssue] = []
    events = list(read_optin_export(str(path), issues.append))
    assert [event.position.row for event in events] == [1, 7]
    found = [(issue.position.source, issue.position.row, issue.column, issue.reason) for issue in issues]
    assert found[0] == (str(path), 2, "email_sha256", "not a SHA-256 hex digest (64 hex digits)")
    assert found[1][1:3] == (3, "event_type")
    assert found[2][1:] == (4, "occurred_at", "bad timestamp: no UTC offset (end it with Z or ±HH:MM)")
    assert found[3][1:3] == (5, "occurred_at")
    assert found[4][1] == 6 and found[4][2] is None  # a ragged row, reported by the CSV reader
    assert all(str(issue.position.source) == str(path) for issue in issues)
    # The raw address in the hash column never reaches a rejects detail.
    assert all("carol" not in issue.detail for issue in issues)


def test_missing_columns_refuse_the_file(tmp_path: Path) -> None:
    path = tmp_path / "optin.csv"
    path.write_text(
        f"email_sha256,segment,event_type,occurred_at\n{ALICE},active,open,2026-06-02T09:15:00Z\n"
    )
    with pytest.raises(SourceError, match=r"optin\.csv.*missing columns sub_segment, campaign_id"):
        list(read_optin_export(str(path), lambda issue: None))


def test_parse_occurred_at_bounds() -> None:
    assert parse_occurred_at(" 2026-06-02T09:15:00.5+02:00 ").microsecond == 500_000
    with pytest.raises(ValueError, match="1970-2100"):
        parse_occurred_at("1900-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="empty"):
        parse_occurred_at(" ")


def test_history_joins_groups_local_hours_and_drops_machine_opens(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        # A send at 15:00Z and an open 20 s later: a mail client fetching on delivery.
        f"{ALICE},active,silver,send,2026-06-02T15:00:00Z,c1\n"
        f"{ALICE},active,silver,open,2026-06-02T15:00:20Z,c1\n"
        # A person opening two hours later (Z: local hour from the user's zone).
        f"{ALICE},active,silver,open,2026-06-02T17:00:00Z,c1\n"
        # The segment changed later in the year: the latest row says where the user is now.
        f"{ALICE},active,gold,purchase,2026-09-01T12:00:00+02:00,\n"
        f"{BOB},inactive,low,click,2026-03-01T10:00:00Z,c2\n",
    )
    history = load_optin_history([str(path)], lambda issue: None)
    assert history.rows == 5 and history.sends == 1
    assert history.group_of(ALICE) == GroupKey("active", "gold")
    assert history.group_of(email_sha256("nobody@example.com")) == GroupKey()
    observations = history.observations(ALICE, "ext-alice", ZoneInfo("America/New_York"))
    assert [(o.kind, o.hour_of_week) for o in observations] == [
        (EngagementKind.EMAIL_OPEN, 24 + 13),  # Tuesday 13:00 EDT
        (EngagementKind.PURCHASE, 24 + 12),  # Tuesday 12:00 as written (+02:00)
    ]
    assert {o.user_key for o in observations} == {"ext-alice"}
    assert history.observations(email_sha256("nobody@example.com"), "x", ZoneInfo("UTC")) == []


def test_other_formats_through_the_same_reader(tmp_path: Path) -> None:
    path = tmp_path / "optin.jsonl"
    row = {
        "email_sha256": ALICE,
        "segment": "active",
        "sub_segment": None,
        "event_type": "OPEN",
        "occurred_at": "2026-06-02T09:15:00Z",
        "campaign_id": "c1",
    }
    path.write_text(json.dumps(row) + "\n")
    events = list(read_optin_export(str(path), lambda issue: None))
    assert len(events) == 1 and events[0].event_type is OptinEventType.OPEN and events[0].sub_segment is None


def test_bad_rows_land_in_the_projects_rejects_file(tmp_path: Path) -> None:
    # Given an export with one bad row among good ones
    path = write(
        tmp_path,
        f"{ALICE},active,gold,open,2026-06-02T09:15:00Z,c1\n{BOB},active,gold,opened,2026-06-02T09:15:00Z,c1\n",
    )
    store = LocalArtifactStore(tmp_path / "reports")
    rejects = RejectsWriter(store, "notify/optin")
    # When it is read with the rejects writer as the sink
    events = list(read_optin_export(str(path), rejects.add))
    rejects.flush()
    key = merge_rejects(store, rejects.segment_keys, "notify/optin.rejects.csv")
    # Then the good row went through and the bad one is in the rejects file, by file, row and column
    assert len(events) == 1 and key is not None
    data = store.get("notify/optin.rejects.csv")
    assert data is not None
    [reject] = list(iter_rejects(data))
    assert (reject["source"], reject["row"], reject["column"]) == (str(path), "2", "event_type")
    assert reject["reason"] == "not one of send, open, click, purchase"
