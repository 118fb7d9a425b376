"""Planning from the stores: engagement profiles into the model's observations, export archives."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cdpbridge.engagement import EngagementKind as StoredKind
from cdpbridge.engagement import Observation as StoredObservation
from cdpbridge.engagement import SqliteEngagementStore
from cdpbridge.integrations.notify.hashing import email_sha256
from cdpbridge.integrations.notify.observations import EngagementKind, hour_of_week, time_zone
from cdpbridge.integrations.notify.planning import (
    SegmentDownloadError,
    UrlExportCounters,
    engagement_history,
    users_of_archive,
)


def test_engagement_profiles_become_model_observations_at_the_same_hour(tmp_path: Path) -> None:
    store = SqliteEngagementStore(tmp_path / "state.sqlite3")
    moment = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # Monday
    at = int(moment.timestamp())
    paris_hour = hour_of_week(moment, time_zone("Europe/Paris"))
    assert paris_hour == 10  # Monday 10:xx in Paris: both sides count from Monday 00:00 local
    store.record(
        {
            "user-1": [
                StoredObservation(at, paris_hour, StoredKind.EMAIL_OPEN, 1),
                StoredObservation(at + 60, paris_hour, StoredKind.SMS_CLICK, 2),
                StoredObservation(at + 120, paris_hour, StoredKind.PURCHASE, 3),
            ],
            "user-2": [StoredObservation(at, 3, StoredKind.CONTENT_CARD_CLICK, 4)],
        }
    )
    history = engagement_history(store, ["user-1", "user-2", "user-3"])
    assert set(history) == {"user-1"}  # user-2 has only kinds the model does not read
    kinds = sorted(observation.kind.value for observation in history["user-1"])
    assert kinds == [EngagementKind.EMAIL_OPEN.value, EngagementKind.PURCHASE.value]
    assert {observation.hour_of_week for observation in history["user-1"]} == {paris_hour}


def archive(*members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for index, member in enumerate(members):
            zipped.writestr(f"{index}.txt", member)
    return buffer.getvalue()


def test_export_archive_users_are_hashed_and_counted() -> None:
    lines = [
        orjson.dumps({"external_id": "a", "email": "A@Example.com", "time_zone": "Europe/Paris"}),
        orjson.dumps({"email": "nobody@example.com"}),
        b"{not json",
        b"",
    ]
    counters = UrlExportCounters()
    users = list(users_of_archive(archive(b"\n".join(lines), orjson.dumps({"external_id": "b"})), counters))
    assert [(user.external_id, user.time_zone) for user in users] == [("a", "Europe/Paris"), ("b", None)]
    assert users[0].email_sha256 == email_sha256("a@example.com")
    assert (counters.users, counters.without_external_id, counters.unreadable_lines) == (2, 1, 1)


def test_a_broken_archive_is_an_error() -> None:
    with pytest.raises(SegmentDownloadError, match="not a zip"):
        list(users_of_archive(b"garbage", UrlExportCounters()))
