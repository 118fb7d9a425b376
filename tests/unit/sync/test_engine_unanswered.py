"""A request Braze applied whose answer was lost: the values it carried are no longer known, so the
next value of each is sent, even one equal to what the state held before the request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from cdpbridge.braze import BrazeClient, TrackOutcome, TrackRequest
from cdpbridge.braze.track import ObjectError
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state import RECORD_DIGEST_KEY, SqliteFieldStateStore, SqliteSendLedger, value_digest
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.engine import EngineOptions, RunResult, SyncEngine
from cdpbridge.sync.retry import RetryEntry
from cdpbridge.updates import AttributeWrite, UserUpdate

WORKSPACE = "w"
USER = "external_id:u1"


class LosingBraze:
    """Applies every object to its profiles while ``applies``; ``answer`` is what the client is
    told (a lost answer after the retries is retries exhausted, though Braze took the request)."""

    def __init__(self) -> None:
        self.answer = TrackOutcome("accepted", 201, "success")
        self.applies = True
        self.profiles: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        with self._lock:
            for body in request.attributes if self.applies else []:
                profile = self.profiles.setdefault(body["external_id"], {})
                profile.update({name: value for name, value in body.items() if name != "external_id"})
            answer = self.answer
            if answer.status == "permanent_failure":
                refs = request.refs["attributes"]
                errors = [
                    ObjectError("attributes", index, ref, answer.message) for index, ref in enumerate(refs)
                ]
                return TrackOutcome(
                    answer.status, answer.http_status, answer.message, errors, answer.attempts
                )
            return answer

    def snapshot(self) -> dict[str, Any]:
        return {}


class Rows:
    def __init__(self, plan: str) -> None:
        self.rows = [SourceRow(RowPosition("calls", 1, 0), {"id": "u1", "plan": plan})]

    def __iter__(self) -> Iterator[SourceRow]:
        return iter(self.rows)

    def resume_point(self) -> None:
        return None


class Mapper:
    def map_row(self, row: SourceRow) -> UserUpdate:
        user = row.values["id"]
        return UserUpdate(
            row.position,
            f"external_id:{user}",
            {"external_id": user},
            attributes={"plan": AttributeWrite(row.values["plan"])},
        )


def run(tmp_path: Path, braze: LosingBraze, plan: str) -> tuple[RunResult, list[RetryEntry]]:
    """One run as the relay makes one per batch: a fresh engine, nothing held from before."""
    state = tmp_path / "state.sqlite3"
    retry: list[RetryEntry] = []
    engine = SyncEngine(
        client=cast("BrazeClient", braze),
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        options=EngineOptions(workspace=WORKSPACE, in_flight=1),
        rejects=RejectsWriter(LocalArtifactStore(tmp_path), "rejects"),
        retry_sink=retry.extend,
    )
    return engine.run(Rows(plan), Mapper(), scope="calls"), retry


@pytest.mark.parametrize(
    "lost",
    [
        TrackOutcome("retries_exhausted", None, "connection failed (ProtocolError)", attempts=3),
        # Refused after a retry: the first attempt may have been applied, its answer lost.
        TrackOutcome("permanent_failure", 400, "bad request", attempts=2),
    ],
    ids=["retries exhausted", "refused after a retry"],
)
def test_the_value_after_a_lost_answer_is_sent_though_the_state_held_it_before(
    tmp_path: Path, lost: TrackOutcome
) -> None:
    # Given Braze holds enterprise for u1, as the stored state says (with the record it came from)
    braze = LosingBraze()
    run(tmp_path, braze, "enterprise")
    store = SqliteFieldStateStore(tmp_path / "state.sqlite3")
    store.apply(WORKSPACE, {USER: {RECORD_DIGEST_KEY: b"\x01" * 8}})
    assert braze.profiles["u1"] == {"plan": "enterprise"}
    # When Braze applies team but the client never learns it
    braze.answer = lost
    run(tmp_path, braze, "team")
    assert braze.profiles["u1"] == {"plan": "team"}
    # Then neither the attribute nor the record is known any more
    stored = store.get_many(WORKSPACE, [USER]).get(USER, {})
    assert "plan" not in stored
    assert RECORD_DIGEST_KEY not in stored
    # And the next batch's enterprise is sent, not skipped as unchanged: Braze ends with it
    braze.answer = TrackOutcome("accepted", 201, "success")
    result, retry = run(tmp_path, braze, "enterprise")
    assert (result.counters.attributes_sent, result.counters.attributes_unchanged, retry) == (1, 0, [])
    assert braze.profiles["u1"] == {"plan": "enterprise"}
    assert store.get_many(WORKSPACE, [USER])[USER]["plan"] == value_digest("enterprise")


def test_a_refusal_on_the_first_attempt_keeps_the_state(tmp_path: Path) -> None:
    # Given Braze holds enterprise for u1
    braze = LosingBraze()
    run(tmp_path, braze, "enterprise")
    # When Braze refuses team at once (a single answer: nothing was applied)
    braze.answer = TrackOutcome("permanent_failure", 400, "bad request")
    braze.applies = False
    run(tmp_path, braze, "team")
    braze.applies = True
    # Then the state still knows enterprise, and a later enterprise costs nothing
    braze.answer = TrackOutcome("accepted", 201, "success")
    result, _ = run(tmp_path, braze, "enterprise")
    assert (result.counters.attributes_sent, result.counters.attributes_unchanged) == (0, 1)
