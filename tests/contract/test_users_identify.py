"""POST /users/identify, as Braze documents it (identify users).

- ``aliases_to_identify`` (``external_id`` + ``user_alias``), ``emails_to_identify`` and
  ``phone_numbers_to_identify`` (``external_id`` + address + ``prioritization``), at most 50.
- An alias-only profile is merged into the profile with that external_id, or takes the external_id
  when no profile has it. Answer: ``{"aliases_processed": n, "message": "success"}``.
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

ANON = {"alias_name": "anon-1", "alias_label": "segment_anonymous_id"}


def test_anonymous_profile_merges_into_the_known_one(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.track(attributes=[{"external_id": "u1", "plan": "gold"}])
    emulator.post("/users/alias/new", {"user_aliases": [ANON]})
    emulator.track(attributes=[{"user_alias": ANON, "last_page": "/pricing"}])
    result = braze().identify_users(aliases=[("u1", ANON)])
    assert (result.aliases_processed, result.requests) == (1, 1)
    user = emulator.user("u1")
    assert user["custom_attributes"] == {"plan": "gold", "last_page": "/pricing"}
    assert user["user_aliases"] == [{"alias_label": "segment_anonymous_id", "alias_name": "anon-1"}]
    assert emulator.admin("GET", "/users", params={"count": 1}) == {"count": 1}


def test_anonymous_profile_takes_an_unused_external_id(emulator: EmulatorClient) -> None:
    emulator.post("/users/alias/new", {"user_aliases": [ANON]})
    response = emulator.post(
        "/users/identify", {"aliases_to_identify": [{"external_id": "new", "user_alias": ANON}]}
    )
    assert response.status_code == 201 and response.json() == {"aliases_processed": 1, "message": "success"}
    assert emulator.user("new")["user_aliases"] == [
        {"alias_label": "segment_anonymous_id", "alias_name": "anon-1"}
    ]


def test_emails_to_identify_need_prioritization_and_50_at_most(emulator: EmulatorClient) -> None:
    missing = {"emails_to_identify": [{"external_id": "u1", "email": "a@example.com"}]}
    assert emulator.post("/users/identify", missing).status_code == 400
    too_many = {"aliases_to_identify": [{"external_id": f"u{n}", "user_alias": ANON} for n in range(51)]}
    assert emulator.post("/users/identify", too_many).status_code == 400
