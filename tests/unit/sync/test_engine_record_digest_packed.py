"""The unchanged-record scenarios again, with the store read as the engine reads a real one: states
left packed (get_many_packed), the record entry read in place, only mapped users decoded."""

from __future__ import annotations

from typing import Any

import pytest

from cdpbridge.state import FieldStateSnapshot
from tests.unit.sync import test_engine_record_digest as scenarios
from tests.unit.sync.test_engine_record_digest import *  # noqa: F403 - the scenarios, collected again here


class PackedCountingStore(scenarios.CountingStore):
    def get_many_packed(self, workspace: str, user_keys: Any) -> FieldStateSnapshot:
        self.reads += 1
        return self.store.get_many_packed(workspace, user_keys)


@pytest.fixture(autouse=True)
def packed_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "CountingStore", PackedCountingStore)


def test_the_packed_path_is_the_one_taken(setup: scenarios.Setup) -> None:
    braze = scenarios.FakeBraze()
    scenarios.run(setup, braze, scenarios.FILE)
    _, mapper, store = scenarios.run(setup, braze, scenarios.FILE)
    assert isinstance(store, PackedCountingStore)
    assert mapper.mapped == 0 and store.reads == 1
