"""The schedules store (SQLite): plan writes are idempotent, every transition is conditional."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cdpbridge.integrations.notify.schedules import (
    ScheduledSend,
    SlotStatus,
    SqliteScheduleStore,
    partition_key,
    rows_of_plan,
)

DAY = date(2026, 12, 8)


def row(user: str, send_at: str = "2026-12-08T09:00:00Z") -> ScheduledSend:
    return ScheduledSend("morning", DAY, user, send_at, "2026-12-08T10:00:00+01:00", "user")


@pytest.fixture
def store(tmp_path: Path) -> SqliteScheduleStore:
    return SqliteScheduleStore(tmp_path / "state.sqlite3", clock=lambda: 1_000.0)


def test_writing_a_plan_twice_changes_nothing(store: SqliteScheduleStore) -> None:
    first = store.write_plan([row("a"), row("b")])
    assert (first.inserted, first.unchanged) == (2, 0)
    again = store.write_plan([row("a"), row("b")])
    assert (again.inserted, again.unchanged, again.moved) == (0, 2, 0)
    assert [found.external_id for found in store.rows("morning", DAY)] == ["a", "b"]


def test_a_replan_moves_planned_rows_and_keeps_claimed_ones(store: SqliteScheduleStore) -> None:
    store.write_plan([row("a"), row("b")])
    assert store.claim(row("a"), "token-1")
    result = store.write_plan([row("a", "2026-12-08T10:00:00Z"), row("b", "2026-12-08T10:00:00Z")])
    assert (result.moved, result.kept_claimed) == (1, 1)
    by_user = {found.external_id: found for found in store.rows("morning", DAY)}
    assert by_user["a"].send_at == "2026-12-08T09:00:00Z"
    assert by_user["a"].status is SlotStatus.CLAIMED
    assert by_user["b"].send_at == "2026-12-08T10:00:00Z"


def test_a_row_is_claimed_once(store: SqliteScheduleStore) -> None:
    store.write_plan([row("a")])
    assert store.claim(row("a"), "first")
    assert not store.claim(row("a"), "second")
    assert not store.skip(row("a"), "late")


def test_only_the_claimant_confirms(store: SqliteScheduleStore) -> None:
    store.write_plan([row("a")])
    store.claim(row("a"), "mine")
    assert not store.finish(row("a"), "theirs", SlotStatus.SENT, "send-1", None)
    assert store.finish(row("a"), "mine", SlotStatus.SENT, "send-1", None)
    (sent,) = store.rows("morning", DAY, SlotStatus.SENT)
    assert (sent.send_id, sent.claim, sent.updated_at) == ("send-1", "mine", 1_000)


def test_skipped_rows_keep_their_reason(store: SqliteScheduleStore) -> None:
    store.write_plan([row("a")])
    assert store.skip(row("a"), "slot 2026-12-08T09:00:00Z more than 30 min late")
    (skipped,) = store.rows("morning", DAY, SlotStatus.SKIPPED)
    assert skipped.reason is not None and "late" in skipped.reason
    assert not store.claim(row("a"), "token")


def test_two_stores_on_one_file_share_the_claims(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    one, two = SqliteScheduleStore(path), SqliteScheduleStore(path)
    one.write_plan([row("a")])
    assert two.claim(row("a"), "two")
    assert not one.claim(row("a"), "one")


def test_keys_and_plan_rows() -> None:
    assert partition_key("morning", DAY) == "notify#morning#2026-12-08"
    (converted,) = rows_of_plan(
        "morning", DAY, [("a", "2026-12-08T09:00:00Z", "2026-12-08T10:00:00+01:00", "user")]
    )
    assert converted == row("a")
