"""POST /subscription/status/set, as Braze documents it (update users' subscription group status).

- One ``subscription_group_id`` and ``subscription_state`` (subscribed or unsubscribed) for up to 50
  ``external_id``, ``email`` or ``phone`` values; 201 ``{"message": "success"}``.
- E-mail and phone together: 400 "Either an email address or a phone number should be provided, but
  not both."
- Rate limit: 5,000 requests a minute; the key needs ``subscription.status.set``.
"""

from __future__ import annotations

import pytest

from cdpbridge.braze import BrazePermanentError, BrazeRequestError
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

BOTH = "Either an email address or a phone number should be provided, but not both."


@pytest.fixture
def groups(emulator: EmulatorClient) -> EmulatorClient:
    emulator.admin("POST", "/subscription-groups", {"subscription_group_id": "news", "channel": "email"})
    emulator.admin("POST", "/subscription-groups", {"subscription_group_id": "texts", "channel": "sms"})
    emulator.track(
        attributes=[
            {"external_id": "u1", "email": "ada@example.com"},
            {"external_id": "u2", "email": "ada@example.com"},
            {"external_id": "u3", "phone": "+15550100"},
        ]
    )
    return emulator


def test_state_is_set_for_ids_and_every_holder_of_an_address(
    groups: EmulatorClient, braze: BrazeClientFactory
) -> None:
    result = braze().subscription_status_set("news", "subscribed", emails=["ada@example.com"])
    assert result.requests == 1
    assert groups.user("u1")["subscription_groups"] == {"news": "subscribed"}
    assert groups.user("u2")["subscription_groups"] == {"news": "subscribed"}
    response = groups.post(
        "/subscription/status/set",
        {"subscription_group_id": "texts", "subscription_state": "unsubscribed", "external_id": "u3"},
    )
    assert response.status_code == 201 and response.json() == {"message": "success"}
    assert groups.user("u3")["subscription_groups"] == {"texts": "unsubscribed"}


def test_email_and_phone_together_is_refused_with_brazes_words(
    groups: EmulatorClient, braze: BrazeClientFactory
) -> None:
    body = {
        "subscription_group_id": "news",
        "subscription_state": "subscribed",
        "email": ["ada@example.com"],
        "phone": ["+15550100"],
    }
    response = groups.post("/subscription/status/set", body)
    assert response.status_code == 400 and response.json()["message"] == BOTH
    with pytest.raises(BrazeRequestError, match="not both"):
        braze().subscription_status_set("news", "subscribed", emails=["a@example.com"], phones=["+15550100"])


def test_at_most_50_values_and_the_client_batches(groups: EmulatorClient, braze: BrazeClientFactory) -> None:
    body = {
        "subscription_group_id": "news",
        "subscription_state": "subscribed",
        "external_id": [f"u{n}" for n in range(51)],
    }
    assert groups.post("/subscription/status/set", body).status_code == 400
    assert (
        braze()
        .subscription_status_set("news", "subscribed", external_ids=[f"u{n}" for n in range(51)])
        .requests
        == 2
    )


def test_permission_and_rate_limit_family(groups: EmulatorClient, braze: BrazeClientFactory) -> None:
    groups.admin("POST", "/keys", {"key": "track-only", "permissions": ["users.track"]})
    body = {"subscription_group_id": "news", "subscription_state": "subscribed", "external_id": "u1"}
    assert groups.post("/subscription/status/set", body, key="track-only").status_code == 403
    response = groups.post("/subscription/status/set", body)
    assert response.headers["X-RateLimit-Limit"] == "5000"
    unknown_group = {**body, "subscription_group_id": "nope"}
    with pytest.raises(BrazePermanentError):
        braze().subscription_status_set("nope", "subscribed", external_ids=["u1"])
    assert groups.post("/subscription/status/set", unknown_group).status_code == 400
