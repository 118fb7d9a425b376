"""The snapshot roster on both backends: first-snapshot claims, seen marks, unseen pages, forgetting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.state import (
    DynamoDbSnapshotRoster,
    RosterEntry,
    SnapshotRoster,
    SqliteSnapshotRoster,
    snapshot_roster,
)
from cdpbridge.state.tables import RUN_STATE_TABLE, TableSpec


@pytest.fixture(params=["sqlite", "dynamodb"])
def roster(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    dynamodb_client: Any,
    make_table: Callable[[TableSpec], str],
) -> Iterator[SnapshotRoster]:
    if request.param == "sqlite":
        store = SqliteSnapshotRoster(tmp_path / "state.sqlite3")
        yield store
        store.close()
    else:
        yield DynamoDbSnapshotRoster(make_table(RUN_STATE_TABLE), dynamodb_client)


def entry(user: str, member: str) -> RosterEntry:
    return RosterEntry(f"external_id:{user}", member, {"external_id": user})


def unseen(roster: SnapshotRoster, run: str) -> list[tuple[str, str]]:
    return [(item.user_key, item.member) for page in roster.unseen("ws/feed", run) for item in page]


def test_the_first_run_of_a_feed_claims_it_and_keeps_it_across_invocations(roster: SnapshotRoster) -> None:
    assert roster.begin("ws/feed", "run-1") is True
    assert roster.begin("ws/feed", "run-1") is True  # a resumed invocation of the same run
    assert roster.begin("ws/feed", "run-2") is False
    assert roster.begin("ws/other", "run-2") is True
    # And a first run that failed gives the claim up (another run's release changes nothing)
    roster.release("ws/other", "run-9")
    assert roster.begin("ws/other", "run-3") is False
    roster.release("ws/other", "run-2")
    assert roster.begin("ws/other", "run-3") is True


def test_pairs_the_run_did_not_see_come_back_ordered_by_user_and_can_be_forgotten(
    roster: SnapshotRoster,
) -> None:
    # Given a first run that saw three pairs, and a second that saw one of them again
    roster.mark_seen("ws/feed", "run-1", [entry("u2", "a"), entry("u1", "b"), entry("u1", "a")])
    roster.mark_seen("ws/feed", "run-2", [entry("u1", "a")])
    # Then the other two are unseen by the second run, with the identifier to write to
    assert unseen(roster, "run-2") == [("external_id:u1", "b"), ("external_id:u2", "a")]
    (first_page,) = list(roster.unseen("ws/feed", "run-2"))
    assert first_page[0].identifier == {"external_id": "u1"}
    # And once forgotten they are gone
    roster.forget("ws/feed", first_page)
    assert unseen(roster, "run-2") == []
    assert unseen(roster, "run-3") == [("external_id:u1", "a")]


def test_unseen_pages_cover_a_feed_larger_than_a_page(
    roster: SnapshotRoster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_roster, "PAGE_SIZE", 7)
    roster.mark_seen("ws/feed", "run-1", [entry(f"u{index:03d}", "a") for index in range(30)])
    pages = list(roster.unseen("ws/feed", "run-2"))
    assert sum(len(page) for page in pages) == 30
    assert len(pages) >= 4


def test_keeping_a_user_marks_all_of_its_pairs_seen(roster: SnapshotRoster) -> None:
    roster.mark_seen("ws/feed", "run-1", [entry("u1", "a"), entry("u1", "b"), entry("u10", "a")])
    roster.keep_users("ws/feed", "run-2", ["external_id:u1"])
    assert unseen(roster, "run-2") == [("external_id:u10", "a")]
