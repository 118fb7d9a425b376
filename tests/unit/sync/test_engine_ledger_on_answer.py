"""The send ledger is written the moment Braze acknowledges a request, on the sending thread: not
when the run's thread next gets round to the outcome, since a crash in between would make the
resumed run send those events again (found by the chaos suite, tests/chaos)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from cdpbridge.braze import BrazeClient, TrackCap, TrackOutcome, TrackRequest
from cdpbridge.braze.track import ObjectError
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.engine import EngineOptions, SyncEngine, acknowledged_ledger_ids, ledger_id
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.updates import UserUpdate

SCOPE = "file.csv@1"


class AnsweringBraze:
    """Takes every request; counts the answers it gave."""

    def __init__(self) -> None:
        self.answered = threading.Event()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        self.answered.set()
        return TrackOutcome("accepted", 201, "success")

    def snapshot(self) -> dict[str, Any]:
        return {}


class SlowSecondRow:
    """Two events per row (with one object a request, the first leaves while the second is being
    added); mapping the second row blocks until released (the run's thread busy)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def map_row(self, row: SourceRow) -> UserUpdate:
        if row.position.row == 2:
            self.release.wait(10)
        user = row.values["id"]
        events = [
            {"external_id": user, "name": name, "time": "2026-01-01T00:00:00Z"} for name in ("visit", "view")
        ]
        return UserUpdate(row.position, f"external_id:{user}", {"external_id": user}, events=events)


class Rows:
    def __iter__(self) -> Iterator[SourceRow]:
        for number in (1, 2):
            yield SourceRow(RowPosition("file.csv", number, 0), {"id": f"u{number}"})

    def resume_point(self) -> None:
        return None


def test_an_acknowledged_event_is_in_the_ledger_while_the_runs_thread_is_still_busy(tmp_path: Path) -> None:
    # Given one event per request, and a run whose thread is held up mapping the second row
    ledger = SqliteSendLedger(tmp_path / "state.sqlite3")
    braze = AnsweringBraze()
    mapper = SlowSecondRow()
    engine = SyncEngine(
        client=cast(BrazeClient, braze),
        field_state=SqliteFieldStateStore(tmp_path / "state.sqlite3"),
        ledger=ledger,
        options=EngineOptions(workspace="w", chunk_rows=1, track_cap=TrackCap(limit=1)),
        rejects=RejectsWriter(LocalArtifactStore(tmp_path), "rejects"),
        retry_sink=lambda entries: None,
    )
    run = threading.Thread(target=engine.run, args=(Rows(), mapper), kwargs={"scope": SCOPE})
    run.start()
    try:
        # When Braze acknowledged the first row's event
        assert braze.answered.wait(10)
        first = ledger_id(RowPosition("file.csv", 1, 0), "events", 0)
        deadline = time.monotonic() + 5
        while first not in ledger.already_sent(SCOPE, [first]) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Then the ledger holds it although the run's thread has not taken the outcome yet
        assert ledger.already_sent(SCOPE, [first]) == {first}
    finally:
        mapper.release.set()
        run.join(10)


def test_only_objects_braze_took_are_acknowledged() -> None:
    refs = [
        ObjectRef(RowPosition("f", row, 0), f"external_id:u{row}", "events", {}, ledger_id=f"{row}:e0")
        for row in (1, 2, 3)
    ]
    request = TrackRequest()
    request.events.extend([{}, {}, {}])
    request.refs["events"].extend(refs)
    refused = ObjectError("events", 1, refs[1], "refused")
    assert acknowledged_ledger_ids(request, TrackOutcome("partial", 201, "", [refused])) == ["1:e0", "3:e0"]
    split = TrackOutcome("accepted", 201, "", unsent=[refs[2]])
    assert acknowledged_ledger_ids(request, split) == ["1:e0", "2:e0"]
    for status in ("retries_exhausted", "permanent_failure"):
        assert acknowledged_ledger_ids(request, TrackOutcome(status, 503, "")) == []
