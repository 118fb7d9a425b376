"""POST /users/alias/new, as Braze documents it (create new user aliases).

- An alias is added to the user named by ``external_id``, or without it makes an alias-only user.
- A user holds one alias per label: a second alias of the same label is refused. (gap row 21)
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_one_alias_per_label_per_user(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.track(attributes=[{"external_id": "u1"}])
    result = braze().new_aliases([{"external_id": "u1", "alias_name": "a1", "alias_label": "crm"}])
    assert result.aliases_processed == 1
    second = emulator.post(
        "/users/alias/new",
        {"user_aliases": [{"external_id": "u1", "alias_name": "a2", "alias_label": "crm"}]},
    )
    assert second.json()["aliases_processed"] == 0
    assert "alias with this label" in second.json()["errors"][0]["type"]
    assert emulator.user("u1")["user_aliases"] == [{"alias_label": "crm", "alias_name": "a1"}]
