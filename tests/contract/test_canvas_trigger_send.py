"""POST /canvas/trigger/send, as Braze documents it (send API-triggered Canvas messages).

- ``canvas_id``, ``context`` (at most 50 KB), ``broadcast``, ``audience``, at most 50 ``recipients``
  each with a ``context``; 201 with a ``dispatch_id``, plus a ``notice`` when the Canvas is paused
  or archived. Needs ``canvas.trigger.send``; shares the sending rate limit.
- The emulator logs the dispatch (Canvas, recipients, context, delivery time) in its admin API.
"""

from __future__ import annotations

import pytest

from cdpbridge.braze import BrazeRequestError
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_canvas_send_is_logged_with_each_recipients_context(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.admin("POST", "/canvases", {"canvas_id": "cv1", "name": "Onboarding"})
    emulator.track(attributes=[{"external_id": "u1"}])
    result = braze().canvas_trigger_send(
        "cv1", recipients=[{"external_user_id": "u1", "context": {"step": 2}}], context={"plan": "gold"}
    )
    assert result.dispatch_id and result.notice is None
    [dispatch] = emulator.admin("GET", "/dispatches", params={"canvas_id": "cv1"})["dispatches"]
    assert dispatch["source"] == "canvas" and dispatch["context"] == {"plan": "gold"}
    assert dispatch["recipients"][0]["context"] == {"step": 2}


def test_paused_canvas_answers_201_with_a_notice(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.admin("POST", "/canvases", {"canvas_id": "cv1", "name": "Old", "status": "paused"})
    result = braze().canvas_trigger_send("cv1", broadcast=True)
    assert result.notice is not None and "paused" in result.notice


def test_canvas_rules(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.admin("POST", "/canvases", {"canvas_id": "cv1", "name": "Onboarding"})
    unknown = emulator.post("/canvas/trigger/send", {"canvas_id": "nope", "broadcast": True})
    assert unknown.status_code == 400
    big = {f"k{n}": "x" * 100 for n in range(600)}
    assert (
        emulator.post(
            "/canvas/trigger/send", {"canvas_id": "cv1", "broadcast": True, "context": big}
        ).status_code
        == 400
    )
    with pytest.raises(BrazeRequestError, match="at most 50"):
        braze().canvas_trigger_send("cv1", recipients=[{"external_user_id": f"u{n}"} for n in range(51)])
    emulator.admin("POST", "/keys", {"key": "campaigns-only", "permissions": ["campaigns.trigger.send"]})
    body = {"canvas_id": "cv1", "broadcast": True}
    assert emulator.post("/canvas/trigger/send", body, key="campaigns-only").status_code == 403
