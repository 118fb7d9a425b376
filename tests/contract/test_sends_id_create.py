"""POST /sends/id/create, as Braze documents it (create send IDs for message send tracking).

- ``campaign_id`` and an optional ``send_id``; 201 ``{"message": "success", "send_id": ...}``.
- At most 100 send identifiers a day per campaign (answered as a rate limit).
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_send_ids_are_created_up_to_the_daily_limit(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.admin("POST", "/campaigns", {"campaign_id": "c1", "name": "Welcome"})
    emulator.configure(custom_send_ids_per_campaign_per_day=2)
    assert braze().create_send_id("c1", "batch-1").send_id == "batch-1"
    generated = emulator.post("/sends/id/create", {"campaign_id": "c1"})
    assert generated.status_code == 201 and generated.json()["send_id"]
    over = emulator.post("/sends/id/create", {"campaign_id": "c1", "send_id": "batch-3"})
    assert over.status_code == 429 and over.headers["X-RateLimit-Remaining"] == "0"
    assert emulator.post("/sends/id/create", {"campaign_id": "nope"}).status_code == 400
