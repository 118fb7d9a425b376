"""A replay that fails part-way commits what Braze already acknowledged, as a run does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from cdpbridge.braze import BrazeClient, TrackCap
from cdpbridge.records import RowPosition
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger, value_digest
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.engine import EngineOptions, SyncEngine
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.sync.retry import RetryEntry
from tests.unit.sync.job_helpers import FakeBraze

SCOPE = "old.csv@1"


class ReadFailed(Exception):
    """Stands for a retry file that cannot be read on (a lost connection to the bucket, say)."""


def entries_then_failure(count: int) -> Iterator[RetryEntry]:
    for number in range(count):
        body = {"external_id": f"u{number}", "tier": "gold"}
        ref = ObjectRef(
            RowPosition("old.csv", number + 1, 0),
            f"external_id:u{number}",
            "attributes",
            body,
            {"tier": value_digest("gold")},
            None,
            1,
        )
        yield RetryEntry(SCOPE, ref, "retries_exhausted")
    raise ReadFailed


def test_a_replay_that_fails_part_way_commits_what_braze_acknowledged(tmp_path: Path) -> None:
    # Given a replay whose entries stop with an error after three objects
    state = tmp_path / "state.sqlite3"
    store = SqliteFieldStateStore(state)
    braze = FakeBraze()
    engine = SyncEngine(
        client=cast("BrazeClient", braze),
        field_state=store,
        ledger=SqliteSendLedger(state),
        # One object a request: the first ones are acknowledged before the entries fail.
        options=EngineOptions(workspace="w", in_flight=1, track_cap=TrackCap(limit=1)),
        rejects=RejectsWriter(LocalArtifactStore(tmp_path), "rejects"),
        retry_sink=lambda entries: None,
    )

    # When it runs, Then the error comes through
    with pytest.raises(ReadFailed):
        engine.replay(entries_then_failure(3))

    # And the objects Braze took (the last one was still being filled into a request) are
    # committed as its state, and only those
    sent = sorted(item["external_id"] for item in braze.objects("attributes"))
    assert sent == ["u0", "u1"]
    known = store.get_many("w", [f"external_id:u{number}" for number in range(3)])
    assert {user: digests.get("tier") for user, digests in known.items()} == {
        f"external_id:{user}": value_digest("gold") for user in sent
    }
