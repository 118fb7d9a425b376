"""POST /users/merge, as Braze documents it (merge users).

- ``merge_updates`` of ``{identifier_to_merge, identifier_to_keep}`` (external_id, user_alias, or
  e-mail/phone with prioritization), at most 50; the kept profile gains what it lacks (attributes,
  events, purchases) and the merged one is removed. 202 ``{"message": "success"}``.
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_merged_profile_is_folded_into_the_kept_one(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.track(
        attributes=[
            {"external_id": "old", "plan": "gold", "city": "Paris"},
            {"external_id": "new", "city": "Lyon"},
        ],
        events=[{"external_id": "old", "name": "login", "time": "2026-01-01T00:00:00Z"}],
    )
    result = braze().merge_users([({"external_id": "old"}, {"external_id": "new"})])
    assert result.requests == 1
    kept = emulator.user("new")
    assert kept["custom_attributes"] == {"city": "Lyon", "plan": "gold"}
    assert [event["name"] for event in kept["events"]] == ["login"]
    assert emulator.admin_response("GET", "/users/old").status_code == 404
    response = emulator.post("/users/merge", {"merge_updates": []})
    assert response.status_code == 400
