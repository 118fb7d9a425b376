"""Asks Braze what a profile holds (for set_if_empty), in calls of 50 identifiers, and counts the cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdpbridge.braze import BrazeClient
from cdpbridge.updates import UserUpdate

EXPORT_IDS_BATCH = 50

# Braze returns standard fields at the top level of an exported profile, custom ones below this key.
_CUSTOM = "custom_attributes"
# fields_to_export takes only Braze's export field names: a custom attribute is read from
# custom_attributes, and naming it in fields_to_export makes Braze refuse the whole call (400).
# Standard fields export under their own name, except the location (an attribute Braze cannot
# export, such as email_open_tracking_disabled, reads as empty and is therefore written).
_EXPORT_FIELD_OF = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "dob": "dob",
    "home_city": "home_city",
    "country": "country",
    "language": "language",
    "time_zone": "time_zone",
    "gender": "gender",
    "email_subscribe": "email_subscribe",
    "push_subscribe": "push_subscribe",
    "subscription_groups": "subscription_groups",
    "push_tokens": "push_tokens",
    "current_location": "last_coordinates",
}
_NOT_EXPORTABLE = frozenset({"email_open_tracking_disabled", "email_click_tracking_disabled"})


class BrazeProfileLookup:
    def __init__(self, client: BrazeClient) -> None:
        self.client = client

    def fetch(
        self, updates: Sequence[UserUpdate], attributes: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any] | None], int]:
        """Returns user_key -> {attribute: value} (None when Braze has no such user) and the calls made."""
        found: dict[str, dict[str, Any] | None] = {u.user_key: None for u in updates}
        standard = {_EXPORT_FIELD_OF[name] for name in attributes if name in _EXPORT_FIELD_OF}
        fields = sorted({*standard, _CUSTOM, "external_id", "user_aliases", "email", "phone", "braze_id"})
        calls = 0
        by_kind: dict[str, list[UserUpdate]] = {}
        for update in updates:
            by_kind.setdefault(next(iter(update.identifier)), []).append(update)
        for kind, group in by_kind.items():
            for start in range(0, len(group), EXPORT_IDS_BATCH):
                batch = group[start : start + EXPORT_IDS_BATCH]
                result = self.client.export_ids(fields_to_export=fields, **_identifiers_argument(kind, batch))
                calls += result.requests
                index = _index_by_identifier(kind, batch)
                for profile in result.users:
                    for key in _profile_keys(kind, profile):
                        user_key = index.get(key)
                        if user_key is not None:
                            found[user_key] = _attribute_values(profile, attributes)
        return found, calls


def _identifiers_argument(kind: str, batch: Sequence[UserUpdate]) -> dict[str, Any]:
    values = [update.identifier[kind] for update in batch]
    if kind == "external_id":
        return {"external_ids": values}
    if kind == "braze_id":
        return {"braze_ids": values}
    if kind == "email":
        return {"emails": values}
    if kind == "phone":
        return {"phones": values}
    if kind == "user_alias":
        return {"user_aliases": values}
    raise ValueError(f"users cannot be looked up by {kind!r}")


def _identifier_key(kind: str, value: Any) -> str:
    if kind == "user_alias":
        return f"{value['alias_label']}\x00{value['alias_name']}"
    if kind == "email":
        return str(value).lower()
    return str(value)


def _index_by_identifier(kind: str, batch: Sequence[UserUpdate]) -> dict[str, str]:
    return {_identifier_key(kind, update.identifier[kind]): update.user_key for update in batch}


def _profile_keys(kind: str, profile: dict[str, Any]) -> list[str]:
    if kind == "user_alias":
        return [_identifier_key(kind, alias) for alias in profile.get("user_aliases") or []]
    value = profile.get(kind)
    return [] if value is None else [_identifier_key(kind, value)]


def _attribute_values(profile: dict[str, Any], attributes: Sequence[str]) -> dict[str, Any]:
    custom = profile.get(_CUSTOM) or {}
    values: dict[str, Any] = {}
    for name in attributes:
        if name in _EXPORT_FIELD_OF:
            values[name] = profile.get(_EXPORT_FIELD_OF[name])
        elif name in _NOT_EXPORTABLE:
            values[name] = None
        else:
            values[name] = custom.get(name)
    return values
