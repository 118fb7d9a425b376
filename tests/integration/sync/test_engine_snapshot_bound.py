"""The engine's snapshot of acknowledged state stays bounded while requests are in flight, and a
bounded snapshot changes nothing about what is written."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import pytest

from cdpbridge.state import FieldStateSnapshot, FieldStateStore
from cdpbridge.sync import engine
from cdpbridge.sync.job import JobServices
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, customer_rows, write_customers_csv

from .conftest import Braze, Runner

pytestmark = pytest.mark.integration

USERS = 3000
CHUNK_ROWS = 150
IN_FLIGHT = 4
KEPT = 300


class RecordingFieldState:
    """A field-state store that notes how many users the engine's snapshot covers at each commit."""

    def __init__(self, inner: FieldStateStore) -> None:
        self.inner = inner
        self.covered_at_commit: list[int] = []

    def get_many(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        return self.inner.get_many(workspace, user_keys)

    def apply(
        self,
        workspace: str,
        changes: Mapping[str, Mapping[str, bytes | None]],
        known: FieldStateSnapshot | None = None,
    ) -> None:
        self.covered_at_commit.append(0 if known is None else len(known.covered))
        self.inner.apply(workspace, changes, known)

    def close(self) -> None:
        self.inner.close()


def changed_values(count: int) -> int:
    before = customer_rows(count)
    after = customer_rows(count, generation=1, change_share=0.1)
    return sum(a != b for old, new in zip(before, after, strict=True) for a, b in zip(old, new, strict=True))


def test_the_snapshot_stays_bounded_and_the_delta_stays_exact(
    tmp_path: Path, braze: Braze, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small bound, and a Braze slow enough that requests are always in flight
    monkeypatch.setattr(engine, "_KNOWN_USERS_KEPT", KEPT)
    braze.configure(latency_ms=20)
    options = {"chunk_rows": CHUNK_ROWS, "in_flight": IN_FLIGHT, "state_flush_users": 100}

    def services() -> tuple[RecordingFieldState, JobServices]:
        built = runner.services(**options)
        recording = RecordingFieldState(built.field_state)
        built.field_state = recording
        return recording, built

    # When a file of ten times as many users runs, then its delta
    day1 = write_customers_csv(tmp_path / "day1.csv", USERS)
    day2 = write_customers_csv(tmp_path / "day2.csv", USERS, generation=1, change_share=0.1)
    first_state, first_services = services()
    first = runner.run(day1, CUSTOMER_MAPPING_YAML, services=first_services)
    second_state, second_services = services()
    second = runner.run(day2, CUSTOMER_MAPPING_YAML, services=second_services)

    # Then the snapshot never covered more than the bound, a chunk and the users in flight
    ceiling = KEPT + CHUNK_ROWS + IN_FLIGHT * 75
    for recording in (first_state, second_state):
        assert recording.covered_at_commit
        assert max(recording.covered_at_commit) <= ceiling < USERS
    # And the runs are as exact as with an unbounded snapshot
    assert first.counters.attributes_sent == USERS * 19
    assert second.counters.attributes_sent == changed_values(USERS)
    assert second.counters.data_points_sent == braze.stats()["data_points"] - USERS * 19
    assert braze.stats()["unchanged_writes"] == 0
