"""POST /campaigns/trigger/send, as Braze documents it (send API-triggered campaign messages).

- ``recipients`` (at most 50) name a user by ``external_user_id``, ``user_alias`` or ``email``; a
  recipient named by ``email`` needs ``prioritization``. (gap row 17)
- ``attachments`` (``file_name``, ``url``) are allowed; ``trigger_properties`` at most 50 KB. (row 17)
- ``send_to_existing_only: false`` is not supported for user aliases. (row 17)
- Rate limit: 250,000 requests an hour shared with the other sending endpoints, and 250 a minute for
  broadcasts. (row 14)
- 201 with a ``dispatch_id``. The emulator logs every dispatch (recipients, properties, delivery
  time) in its admin API.
"""

from __future__ import annotations

import pytest

from cdpbridge.braze import BrazeRequestError
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient


@pytest.fixture
def campaign(emulator: EmulatorClient) -> str:
    emulator.admin("POST", "/campaigns", {"campaign_id": "c1", "name": "Welcome"})
    emulator.track(attributes=[{"external_id": "u1", "email": "ada@example.com"}])
    return "c1"


def test_email_recipients_need_prioritization(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    recipient = {"email": "ada@example.com"}
    refused = emulator.post("/campaigns/trigger/send", {"campaign_id": campaign, "recipients": [recipient]})
    assert refused.status_code == 400 and "'prioritization' is required" in refused.json()["message"]
    with pytest.raises(BrazeRequestError, match="prioritization"):
        braze().trigger_send(campaign, recipients=[recipient])
    prioritized = {**recipient, "prioritization": ["identified", "most_recently_updated"]}
    assert braze().trigger_send(campaign, recipients=[prioritized]).dispatch_id


def test_attachments_are_allowed_and_trigger_properties_are_limited_to_50kb(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    attachment = {"file_name": "terms", "url": "https://example.com/terms.pdf"}
    result = braze().trigger_send(campaign, recipients=[{"external_user_id": "u1"}], attachments=[attachment])
    assert result.dispatch_id
    big = {f"p{n}": "x" * 100 for n in range(600)}
    body = {"campaign_id": campaign, "broadcast": True, "trigger_properties": big}
    refused = emulator.post("/campaigns/trigger/send", body)
    assert refused.status_code == 400 and "exceeds 51200 bytes" in refused.json()["message"]
    with pytest.raises(BrazeRequestError, match="51200"):
        braze().trigger_send(campaign, broadcast=True, trigger_properties=big)


def test_send_to_existing_only_false_is_refused_for_aliases(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    recipient = {
        "user_alias": {"alias_name": "anon", "alias_label": "web"},
        "send_to_existing_only": False,
        "attributes": {"first_name": "Ada"},
    }
    refused = emulator.post("/campaigns/trigger/send", {"campaign_id": campaign, "recipients": [recipient]})
    assert refused.status_code == 400 and "not supported for user aliases" in refused.json()["message"]
    with pytest.raises(BrazeRequestError, match="aliases"):
        braze().trigger_send(campaign, recipients=[recipient])


def test_broadcasts_have_a_per_minute_family(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    emulator.configure(rate_limits={"campaigns.trigger.broadcast": {"limit": 1, "window_s": 3600}})
    assert (
        emulator.post("/campaigns/trigger/send", {"campaign_id": campaign, "broadcast": True}).status_code
        == 201
    )
    limited = emulator.post("/campaigns/trigger/send", {"campaign_id": campaign, "broadcast": True})
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Limit"] == "1"
    # Sends to recipients are not in that family
    assert (
        emulator.post(
            "/campaigns/trigger/send", {"campaign_id": campaign, "recipients": [{"external_user_id": "u1"}]}
        ).status_code
        == 201
    )
    assert braze().settings.rate_limit("campaigns.trigger.broadcast").limit == 250


def test_every_dispatch_is_logged_with_recipients_properties_and_delivery_time(
    emulator: EmulatorClient, braze: BrazeClientFactory, campaign: str
) -> None:
    result = braze().trigger_send(
        campaign,
        recipients=[{"external_user_id": "u1", "trigger_properties": {"coupon": "A1"}}],
        trigger_properties={"season": "winter"},
    )
    [dispatch] = emulator.admin("GET", "/dispatches", params={"campaign_id": campaign})["dispatches"]
    assert dispatch["dispatch_id"] == result.dispatch_id and dispatch["source"] == "campaign"
    assert dispatch["trigger_properties"] == {"season": "winter"} and dispatch["status"] == "sent"
    [recipient] = dispatch["recipients"]
    assert recipient["external_id"] == "u1" and recipient["trigger_properties"] == {"coupon": "A1"}
    assert recipient["deliver_at"] == dispatch["received_at"]
