"""/subscription/status/set and /v2/subscription/status/set: subscription group states.

Groups are defined through the admin API with their channel; an e-mail group takes external ids or
e-mail addresses, an SMS or WhatsApp group external ids or phone numbers, never e-mail and phone
together. A state set for an address applies to every profile holding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpbridge_local.emulator.errors import BadRequest
from cdpbridge_local.emulator.state import Profile, UserStore
from cdpbridge_local.emulator.validation import is_email, is_phone
from cdpbridge_local.emulator.workspace import SubscriptionGroupDefinition

MAX_IDS_PER_GROUP = 50
SUBSCRIPTION_STATES = frozenset({"subscribed", "unsubscribed"})
EMAIL_AND_PHONE = "Either an email address or a phone number should be provided, but not both."


@dataclass(slots=True)
class StatusChange:
    group_id: str
    state: str
    external_ids: list[str]
    emails: list[str]
    phones: list[str]


def _values(raw: Any, name: str, where: str) -> list[str]:
    """One string or an array of strings (v1 takes both)."""
    if raw is None:
        return []
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise BadRequest(f"{where}'{name}' must be a string or an array of non-empty strings")
    return values


def _change(
    group_id: Any,
    state: Any,
    ids: tuple[list[str], list[str], list[str]],
    groups: dict[str, SubscriptionGroupDefinition],
    where: str,
) -> StatusChange:
    if not isinstance(group_id, str) or not group_id:
        raise BadRequest(f"{where}'subscription_group_id' is required")
    group = groups.get(group_id)
    if group is None:
        raise BadRequest(f"{where}Invalid subscription_group_id: no group '{group_id[:64]}'")
    if state not in SUBSCRIPTION_STATES:
        raise BadRequest(f"{where}'subscription_state' must be 'subscribed' or 'unsubscribed'")
    external_ids, emails, phones = ids
    if emails and phones:
        raise BadRequest(EMAIL_AND_PHONE)
    if not (external_ids or emails or phones):
        raise BadRequest(f"{where}name at least one user: external_id, email or phone")
    for name, values in (("external_id", external_ids), ("email", emails), ("phone", phones)):
        if len(values) > MAX_IDS_PER_GROUP:
            raise BadRequest(f"{where}{len(values)} values of '{name}', the limit is {MAX_IDS_PER_GROUP}")
    if group.channel == "email" and phones:
        raise BadRequest(f"{where}group '{group_id[:64]}' is an email group: give emails, not phones")
    if group.channel != "email" and emails:
        raise BadRequest(
            f"{where}group '{group_id[:64]}' is an {group.channel} group: give phones, not emails"
        )
    if not all(is_email(email) for email in emails):
        raise BadRequest(f"{where}'email' holds an invalid email address")
    if not all(is_phone(phone) for phone in phones):
        raise BadRequest(f"{where}'phone' holds an invalid phone number")
    return StatusChange(group_id, state, external_ids, emails, phones)


def parse_v1(body: Any, groups: dict[str, SubscriptionGroupDefinition]) -> list[StatusChange]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    unknown = body.keys() - {"subscription_group_id", "subscription_state", "external_id", "email", "phone"}
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    ids = (
        _values(body.get("external_id"), "external_id", ""),
        _values(body.get("email"), "email", ""),
        _values(body.get("phone"), "phone", ""),
    )
    return [_change(body.get("subscription_group_id"), body.get("subscription_state"), ids, groups, "")]


def parse_v2(body: Any, groups: dict[str, SubscriptionGroupDefinition]) -> list[StatusChange]:
    if not isinstance(body, dict) or not isinstance(body.get("subscription_groups"), list):
        raise BadRequest("'subscription_groups' must be a non-empty array")
    entries = body["subscription_groups"]
    if not entries:
        raise BadRequest("'subscription_groups' must be a non-empty array")
    changes = []
    for index, entry in enumerate(entries):
        where = f"subscription_groups[{index}]: "
        if not isinstance(entry, dict):
            raise BadRequest(f"{where}must be an object")
        unknown = entry.keys() - {
            "subscription_group_id",
            "subscription_state",
            "external_ids",
            "emails",
            "phones",
        }
        if unknown:
            raise BadRequest(f"{where}unknown fields {sorted(unknown)}")
        ids = (
            _values(entry.get("external_ids"), "external_ids", where),
            _values(entry.get("emails"), "emails", where),
            _values(entry.get("phones"), "phones", where),
        )
        changes.append(
            _change(entry.get("subscription_group_id"), entry.get("subscription_state"), ids, groups, where)
        )
    return changes


def apply(changes: list[StatusChange], store: UserStore) -> None:
    """Unknown external ids and addresses are skipped: this endpoint creates no profile."""
    for change in changes:
        profiles: list[Profile] = []
        for external_id in change.external_ids:
            profile = store.by_external_id.get(external_id)
            if profile is not None:
                profiles.append(profile)
        for email in change.emails:
            profiles.extend(store.by_email.get(email.lower(), ()))
        for phone in change.phones:
            profiles.extend(store.by_phone.get(phone, ()))
        for profile in profiles:
            profile.subscription_groups[change.group_id] = change.state
            store.touch(profile)
