"""POST /users/delete, as Braze documents it (delete users).

- Users are named by ``external_ids``, ``user_aliases``, ``braze_ids``, ``email_addresses`` or
  ``phone_numbers`` (e-mail and phone entries with ``prioritization``); one kind of identifier per
  request; at most 50. (gap row 20)
- ``deleted`` counts the deletions queued (Braze deletes asynchronously). (row 20)
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

PRIORITIZATION = ["identified", "most_recently_updated"]


def test_users_are_deleted_by_email_and_phone_with_prioritization(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.track(
        attributes=[
            {"external_id": "u1", "email": "ada@example.com"},
            {"external_id": "u2", "phone": "+15550100"},
        ]
    )
    body = {"email_addresses": [{"email": "ada@example.com", "prioritization": PRIORITIZATION}]}
    response = emulator.post("/users/delete", body)
    assert response.status_code == 202 and response.json() == {"deleted": 1, "message": "success"}
    result = braze().delete_users(phones=["+15550100"])
    assert (result.deleted, result.requests) == (1, 1)
    assert emulator.admin("GET", "/users", params={"count": 1}) == {"count": 0}


def test_one_identifier_kind_per_request(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.track(attributes=[{"external_id": "u1"}, {"external_id": "u2", "email": "b@example.com"}])
    mixed = {
        "external_ids": ["u1"],
        "email_addresses": [{"email": "b@example.com", "prioritization": PRIORITIZATION}],
    }
    refused = emulator.post("/users/delete", mixed)
    assert refused.status_code == 400 and "one kind of identifier" in refused.json()["message"]
    # The client splits the kinds into requests of their own
    result = braze().delete_users(external_ids=["u1"], emails=["b@example.com"])
    assert (result.deleted, result.requests) == (2, 2)


def test_deleted_counts_queued_deletions(emulator: EmulatorClient) -> None:
    response = emulator.post("/users/delete", {"external_ids": ["ghost-1", "ghost-2"]})
    assert response.json()["deleted"] == 2
