"""POST /v2/subscription/status/set, as Braze documents it: several subscription groups in one
request, each ``{subscription_group_id, subscription_state, external_ids, emails | phones}``.

- E-mail and phone together in a group are refused as in v1; at most 50 values of each per group.
- 201 ``{"message": "success"}``; same permission and rate limit as v1.
"""

from __future__ import annotations

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


def test_several_groups_in_one_request(emulator: EmulatorClient, braze: BrazeClientFactory) -> None:
    emulator.admin("POST", "/subscription-groups", {"subscription_group_id": "news", "channel": "email"})
    emulator.admin("POST", "/subscription-groups", {"subscription_group_id": "texts", "channel": "sms"})
    emulator.track(attributes=[{"external_id": "u1", "email": "ada@example.com", "phone": "+15550100"}])
    result = braze().subscription_status_set_v2(
        [
            {
                "subscription_group_id": "news",
                "subscription_state": "subscribed",
                "emails": ["ada@example.com"],
            },
            {"subscription_group_id": "texts", "subscription_state": "unsubscribed", "external_ids": ["u1"]},
        ]
    )
    assert result.requests == 1
    assert emulator.user("u1")["subscription_groups"] == {"news": "subscribed", "texts": "unsubscribed"}
    both = {
        "subscription_groups": [
            {
                "subscription_group_id": "news",
                "subscription_state": "subscribed",
                "emails": ["ada@example.com"],
                "phones": ["+15550100"],
            }
        ]
    }
    refused = emulator.post("/v2/subscription/status/set", both)
    assert refused.status_code == 400 and "not both" in refused.json()["message"]
