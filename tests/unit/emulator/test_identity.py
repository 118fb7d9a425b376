"""Identity changes and subscription states applied to a UserStore directly, without HTTP."""

from __future__ import annotations

import pytest

from cdpbridge_local.emulator import identity, subscriptions
from cdpbridge_local.emulator.errors import BadRequest
from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import Identifier
from cdpbridge_local.emulator.workspace import SubscriptionGroupDefinition


def store_with_shared_email() -> UserStore:
    store = UserStore()
    known = store.create(Identifier("external_id", "known"))
    store.set_contact(known, "email", "ada@example.com")
    anonymous = store.create(Identifier("user_alias", ("web", "anon")))
    store.set_contact(anonymous, "email", "ada@example.com")
    store.touch(anonymous)
    return store


def test_prioritization_picks_among_profiles_sharing_an_address() -> None:
    store = store_with_shared_email()
    email = Identifier("email", "ada@example.com")
    assert identity.find_prioritized(store, email, ["identified"]).external_id == "known"  # type: ignore[union-attr]
    latest = identity.find_prioritized(store, email, ["most_recently_updated"])
    assert latest is not None and latest.external_id is None
    oldest = identity.find_prioritized(store, email, ["least_recently_updated"])
    assert oldest is not None and oldest.external_id == "known"


def test_merge_keeps_the_kept_values_and_adds_what_it_lacks() -> None:
    store = UserStore()
    keep = store.create(Identifier("external_id", "keep"))
    keep.custom.update({"city": "Lyon"})
    gone = store.create(Identifier("external_id", "gone"))
    gone.custom.update({"city": "Paris", "plan": "gold"})
    store.add_alias(gone, ("crm", "c1"))
    identity.merge_into(store, keep, gone)
    assert keep.custom == {"city": "Lyon", "plan": "gold"}
    assert keep.aliases == (("crm", "c1"),) and store.by_alias[("crm", "c1")] is keep
    assert "gone" not in store.by_external_id


def test_identify_refuses_entries_without_an_external_id() -> None:
    with pytest.raises(BadRequest, match="needs an 'external_id'"):
        identity.identify(
            {"aliases_to_identify": [{"user_alias": {"alias_name": "a", "alias_label": "b"}}]}, UserStore()
        )


def test_subscription_channel_decides_which_addresses_a_group_takes() -> None:
    groups = {"texts": SubscriptionGroupDefinition(subscription_group_id="texts", channel="sms")}
    body = {"subscription_group_id": "texts", "subscription_state": "subscribed", "email": "a@example.com"}
    with pytest.raises(BadRequest, match="give phones, not emails"):
        subscriptions.parse_v1(body, groups)
    body = {"subscription_group_id": "texts", "subscription_state": "maybe", "phone": ["+15550100"]}
    with pytest.raises(BadRequest, match="'subscribed' or 'unsubscribed'"):
        subscriptions.parse_v1(body, groups)
