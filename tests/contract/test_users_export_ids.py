"""POST /users/export/ids, as Braze documents it (export users by identifier, API limits).

- Rate limit: a family of its own, 250 requests a minute on workspaces onboarded after August 2024
  (2,500 before), not shared with /users/export/segment. (gap row 14)
- ``fields_to_export`` is required for workspaces created after August 2024. (row 15)
- ``invalid_user_ids`` lists every identifier that matched no user, whatever its kind. (row 15)
- At most 50 identifiers a request.
"""

from __future__ import annotations

import pytest

from cdpbridge.braze import BrazeRequestError
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

FIELDS = ["external_id", "email"]


def test_fields_to_export_is_required(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    response = emulator.post("/users/export/ids", {"external_ids": ["u1"]})
    assert response.status_code == 400 and "'fields_to_export' is required" in response.json()["message"]
    # Older workspaces: a setting
    emulator.configure(export_ids_fields_required=False)
    assert emulator.post("/users/export/ids", {"external_ids": ["u1"]}).status_code == 201
    with pytest.raises(BrazeRequestError, match="fields_to_export"):
        braze().export_ids(external_ids=["u1"])


def test_invalid_user_ids_lists_every_identifier_not_found(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "u1", "email": "ada@example.com"}])
    for body in (
        {"external_ids": ["u1", "ghost"]},
        {"user_aliases": [{"alias_name": "nobody", "alias_label": "crm"}]},
        {"email_address": "nobody@example.com"},
        {"phone": "+15550100"},
        {"braze_id": "0" * 24},
    ):
        response = emulator.post("/users/export/ids", {**body, "fields_to_export": FIELDS})
        assert response.status_code == 201 and len(response.json()["invalid_user_ids"]) == 1, body


def test_export_ids_has_its_own_rate_limit_family(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.configure(rate_limits={"users.export": {"limit": 1, "window_s": 3600}})
    emulator.admin("POST", "/segments", {"name": "All", "segment_id": "s1"})
    assert (
        emulator.post("/users/export/ids", {"external_ids": ["u1"], "fields_to_export": FIELDS}).status_code
        == 201
    )
    limited = emulator.post("/users/export/ids", {"external_ids": ["u1"], "fields_to_export": FIELDS})
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Limit"] == "1"
    # The segment export is not in that family
    started = emulator.post("/users/export/segment", {"segment_id": "s1", "fields_to_export": FIELDS})
    assert started.status_code == 201
    assert started.headers["X-RateLimit-Limit"] == "250000"
    assert braze().settings.rate_limit("users.export").limit == 250
