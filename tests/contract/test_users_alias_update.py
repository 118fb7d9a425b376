"""POST /users/alias/update, as Braze documents it (update user aliases).

- ``alias_updates`` of ``{alias_label, old_alias_name, new_alias_name}``, at most 50: the alias
  keeps its label and user and takes the new name. 202 ``{"message": "success"}``.
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_alias_takes_its_new_name(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.track(attributes=[{"external_id": "u1"}])
    emulator.post(
        "/users/alias/new",
        {"user_aliases": [{"external_id": "u1", "alias_name": "old", "alias_label": "crm"}]},
    )
    assert braze().update_aliases([("crm", "old", "new")]).requests == 1
    assert emulator.user("u1")["user_aliases"] == [{"alias_label": "crm", "alias_name": "new"}]
    response = emulator.post(
        "/users/alias/update",
        {
            "alias_updates": [
                {"alias_label": "crm", "old_alias_name": "x", "new_alias_name": "y"} for _ in range(51)
            ]
        },
    )
    assert response.status_code == 400
