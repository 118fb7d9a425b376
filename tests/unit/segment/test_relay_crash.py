"""A relay killed after Braze applied a call and before the state was written: the state must not
hide the next value, since a later batch runs before the killed one comes back."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from cdpbridge.braze import BrazeClient, TrackOutcome, TrackRequest
from cdpbridge.integrations.segment.relay import MINIMAL_CONFIG, QueuedMessage, RelayServices, relay_batch
from cdpbridge.mapping import load_mapping
from cdpbridge.state import FieldStateSnapshot, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions

CONFIG = load_mapping(MINIMAL_CONFIG)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even the engine's settling of what Braze took."""


class DyingStore:
    """The field state until ``dead``; from then on the process is gone and nothing is written."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteFieldStateStore(path)
        self.dead = False

    def get_many(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        return self.store.get_many(workspace, user_keys)

    def apply(
        self,
        workspace: str,
        changes: Mapping[str, Mapping[str, bytes | None]],
        known: FieldStateSnapshot | None = None,
    ) -> None:
        if self.dead:
            raise Killed
        self.store.apply(workspace, changes, known)


class Braze:
    """Applies each request, then calls ``on_apply`` (where a test kills the relay)."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}
        self.on_apply = lambda: None
        self._lock = threading.Lock()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        with self._lock:
            for body in request.attributes:
                profile = self.profiles.setdefault(body["external_id"], {})
                profile.update({name: value for name, value in body.items() if name != "external_id"})
            self.on_apply()
            return TrackOutcome("accepted", 201, "success")

    def snapshot(self) -> dict[str, Any]:
        return {}


def identify(message: str, time: str, plan: str) -> QueuedMessage:
    call = {
        "type": "identify",
        "messageId": message,
        "userId": "u1",
        "timestamp": f"2026-12-01T{time}:00.000Z",
        "traits": {"plan": plan},
    }
    return QueuedMessage(f"sqs-{message}", orjson.dumps([call]).decode())


def test_a_relay_killed_after_braze_applied_a_call_leaves_the_next_value_to_be_sent(tmp_path: Path) -> None:
    braze = Braze()
    store = DyingStore(tmp_path / "state.sqlite3")

    def services() -> RelayServices:
        return RelayServices(
            client=cast("BrazeClient", braze),
            field_state=store,  # type: ignore[arg-type]  # the store's reads and writes, as used
            ledger=SqliteSendLedger(tmp_path / "state.sqlite3"),
            artifacts=LocalArtifactStore(tmp_path / "reports"),
            options=EngineOptions(workspace="w"),
            reports_prefix="",
        )

    team = identify("m2", "00:34", "team")
    assert relay_batch([identify("m1", "00:24", "enterprise")], CONFIG, services(), batch_id="b1")
    # Given the relay is killed once Braze applied team, before the state could learn it
    braze.on_apply = lambda: setattr(store, "dead", True)
    with pytest.raises(Killed):
        relay_batch([team], CONFIG, services(), batch_id="b2")
    braze.on_apply = lambda: None
    store.dead = False
    assert braze.profiles["u1"] == {"plan": "team"}
    # When a newer enterprise runs before the killed batch comes back, then the killed batch
    newer = relay_batch([identify("m3", "02:20", "enterprise")], CONFIG, services(), batch_id="b3")
    again = relay_batch([team], CONFIG, services(), batch_id="b4")
    # Then enterprise was sent, team dropped as older: Braze ends with the newest call's value
    assert (newer.counters.attributes_sent, again.counters.attributes_superseded) == (1, 1)
    assert braze.profiles["u1"] == {"plan": "enterprise"}
