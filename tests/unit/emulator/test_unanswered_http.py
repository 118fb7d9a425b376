"""Requests the emulator applies but never answers: the apply_then_drop fault and the caller hook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from cdpbridge_local.emulator import EmulatorServer
from cdpbridge_local.emulator.core import CallerStage
from tests.unit.emulator.conftest import EmulatorClient

EVENT = {"external_id": "u1", "name": "visit", "time": "2026-01-01T00:00:00Z", "properties": {"n": 1}}


class StageHook:
    """Says the caller is gone at one stage, once; remembers every question."""

    def __init__(self, stage: CallerStage) -> None:
        self.stage = stage
        self.asked: list[tuple[CallerStage, str]] = []

    def __call__(self, stage: CallerStage, endpoint: str) -> bool:
        self.asked.append((stage, endpoint))
        return stage is self.stage and len([s for s, _ in self.asked if s is self.stage]) == 1


@pytest.fixture
def hooked(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    yield emulator_server
    emulator_server.set_caller_hook(None)


def _track_raises(client: EmulatorClient) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{client.url}/users/track",
            json={"events": [EVENT]},
            headers={"Authorization": "Bearer local-dev-key"},
            timeout=30,
        )


def test_apply_then_drop_applies_the_request_and_keeps_its_body(client: EmulatorClient) -> None:
    # Given every request applied, then its connection dropped
    client.configure(faults={"apply_then_drop": 1.0})
    # When an event is sent
    _track_raises(client)
    # Then Braze holds it although the client saw no answer, and the emulator says so
    assert len(client.user("u1")["events"]) == 1
    stats = client.stats()
    assert stats["faults"] == {"apply_then_drop": 1}
    assert stats["applied_unanswered"] == {"apply_then_drop": 1}
    assert stats["requests"]["users.track"] == {"applied_unanswered_apply_then_drop": 1}
    (lost,) = client.admin("GET", "/unanswered")["requests"]
    assert lost == {"endpoint": "users.track", "cause": "apply_then_drop", "body": {"events": [EVENT]}}


def test_a_caller_gone_before_applying_leaves_nothing_applied(
    client: EmulatorClient, hooked: EmulatorServer
) -> None:
    hook = StageHook(CallerStage.RECEIVED)
    hooked.set_caller_hook(hook)
    _track_raises(client)
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 0}
    assert client.admin("GET", "/unanswered") == {"requests": []}
    assert client.stats()["requests"]["users.track"] == {"caller_gone": 1}
    # And the next request, whose caller stays, is applied and answered
    assert client.track(events=[EVENT]).status_code == 201
    assert hook.asked == [
        (CallerStage.RECEIVED, "users.track"),
        (CallerStage.RECEIVED, "users.track"),
        (CallerStage.APPLIED, "users.track"),
    ]


def test_a_caller_gone_after_applying_is_counted_as_applied_but_unanswered(
    client: EmulatorClient, hooked: EmulatorServer
) -> None:
    hooked.set_caller_hook(StageHook(CallerStage.APPLIED))
    _track_raises(client)
    assert len(client.user("u1")["events"]) == 1
    assert client.stats()["applied_unanswered"] == {"caller_gone": 1}
    (lost,) = client.admin("GET", "/unanswered")["requests"]
    assert (lost["cause"], lost["body"]) == ("caller_gone", {"events": [EVENT]})


def test_a_rejected_request_whose_answer_is_lost_is_not_kept(client: EmulatorClient) -> None:
    # A request Braze refused whole changed nothing: losing its answer cannot double anything.
    client.configure(faults={"apply_then_drop": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{client.url}/users/track",
            json={"events": [{"name": "no identifier"}]},
            headers={"Authorization": "Bearer local-dev-key"},
            timeout=30,
        )
    assert client.admin("GET", "/unanswered") == {"requests": []}
