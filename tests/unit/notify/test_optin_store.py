"""The opt-in history store (SQLite): merged per hash, bounded, the latest group kept."""

from __future__ import annotations

from pathlib import Path

from cdpbridge.integrations.notify.model import GroupKey
from cdpbridge.integrations.notify.observations import EngagementKind
from cdpbridge.integrations.notify.optin import OptinEvent, OptinEventType
from cdpbridge.integrations.notify.optin_store import SqliteOptinStore
from cdpbridge.records import RowPosition

DIGEST = "ab" * 32
BASE = 1_796_000_000


def event(kind: OptinEventType, at: int, segment: str = "active", hour: int | None = 10) -> OptinEvent:
    return OptinEvent(RowPosition("optin.csv", 1), DIGEST, segment, "gold", kind, at, None, hour, "c1")


def test_files_merge_into_one_bounded_history(tmp_path: Path) -> None:
    store = SqliteOptinStore(tmp_path / "state.sqlite3", max_events=3)
    store.record([event(OptinEventType.OPEN, BASE + index * 3600) for index in range(2)])
    store.record([event(OptinEventType.CLICK, BASE + 10 * 3600, segment="inactive", hour=None)])
    store.record([event(OptinEventType.SEND, BASE + 20 * 3600)])
    store.record([event(OptinEventType.SEND, BASE + 20 * 3600)])  # the same row again
    history = store.history([DIGEST, "cd" * 32])
    user = history.users[DIGEST]
    assert set(history.users) == {DIGEST}
    assert user.group == GroupKey("active", "gold")  # the latest row's group
    # The newest three distinct events: the send, the click (hour unknown) and the second open.
    assert list(user.send_times) == [BASE + 20 * 3600]
    assert user.events == [
        (EngagementKind.EMAIL_OPEN, BASE + 3600, 10),
        (EngagementKind.EMAIL_CLICK, BASE + 10 * 3600, None),
    ]


def test_an_empty_batch_writes_nothing(tmp_path: Path) -> None:
    store = SqliteOptinStore(tmp_path / "state.sqlite3")
    assert store.record([]) == 0
    assert store.history([DIGEST]).users == {}
