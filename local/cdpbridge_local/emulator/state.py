"""User profiles held by the emulator, and the accounting of what writing to them costs.

Applying an object is all or nothing: every check that can refuse it runs before the first change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cdpbridge_local.emulator.validation import (
    ArrayOperation,
    AttributeUpdate,
    EventRecord,
    Identifier,
    ObjectArrayOperation,
    PurchaseRecord,
    Refusal,
    format_time,
)

_ABSENT: Any = object()

USER_NOT_FOUND = Refusal("user not found and '_update_existing_only' is true")
BRAZE_ID_NOT_FOUND = Refusal("'braze_id' does not match any user (braze_id cannot create users)")


@dataclass(slots=True)
class Profile:
    braze_id: str
    external_id: str | None = None
    # (alias_label, alias_name) pairs. Tuples and lazily created lists keep a profile down to one
    # object the garbage collector must visit: full collections walk every profile.
    aliases: tuple[tuple[str, str], ...] = ()
    standard: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    subscriptions: dict[str, Any] = field(default_factory=dict)
    subscription_groups: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] | None = None
    purchases: list[dict[str, Any]] | None = None
    created_at: str = ""
    created_seq: int = 0
    # Bumped on every write; decides which profile an e-mail or phone shared by several addresses.
    updated_seq: int = 0

    @property
    def email(self) -> str | None:
        value = self.standard.get("email")
        return value if isinstance(value, str) else None

    @property
    def phone(self) -> str | None:
        value = self.standard.get("phone")
        return value if isinstance(value, str) else None

    def attribute(self, name: str) -> Any:
        """A field by name as a segment filter sees it: identifiers, standard fields, then custom."""
        if name == "external_id":
            return self.external_id
        if name == "braze_id":
            return self.braze_id
        if name in self.standard:
            return self.standard[name]
        if name in self.subscriptions:
            return self.subscriptions[name]
        return self.custom.get(name)

    def to_admin_view(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "braze_id": self.braze_id,
            "created_at": self.created_at,
            "user_aliases": [{"alias_label": label, "alias_name": name} for label, name in self.aliases],
            "email": self.email,
            "phone": self.phone,
            # Standard and custom fields together: a standard name never becomes a custom one.
            "attributes": {**self.standard, **self.custom},
            "custom_attributes": dict(self.custom),
            "standard_attributes": dict(self.standard),
            "email_subscribe": self.subscriptions.get("email_subscribe"),
            "push_subscribe": self.subscriptions.get("push_subscribe"),
            "subscription_groups": dict(self.subscription_groups),
            "events": list(self.events or ()),
            "purchases": list(self.purchases or ()),
        }


@dataclass(slots=True)
class WriteTotals:
    """What users.track applied: the billing view of the emulator's stats."""

    data_points: int = 0
    unchanged_writes: int = 0
    attributes: int = 0
    events: int = 0
    purchases: int = 0
    users_created: int = 0


def _same(old: Any, new: Any) -> bool:
    # 1 == True == 1.0 in Python; Braze keeps booleans, integers and floats apart.
    return old == new and type(old) is type(new)


def _deep_merge(held: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    merged = dict(held)
    for key, value in incoming.items():
        current = merged.get(key)
        if type(value) is dict and type(current) is dict and not (len(value) == 1 and "$time" in value):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


class UserStore:
    """Profiles and their indexes: external id, braze id, alias, e-mail and phone."""

    def __init__(
        self, array_max_length: int = 25, braze_id_seed: int = 0, object_array_max_bytes: int = 100 * 1024
    ) -> None:
        # Read on every array operation; the emulator updates them when its config changes.
        self.array_max_length = array_max_length
        self.object_array_max_bytes = object_array_max_bytes
        self._braze_id_seed = braze_id_seed
        self.clear()

    def clear(self) -> None:
        self.by_braze_id: dict[str, Profile] = {}
        self.by_external_id: dict[str, Profile] = {}
        self.by_alias: dict[tuple[str, str], Profile] = {}
        self.by_email: dict[str, list[Profile]] = {}
        self.by_phone: dict[str, list[Profile]] = {}
        self.totals = WriteTotals()
        # Array-of-objects updates dropped because the array would outgrow its size limit, and
        # requests whose nested updates were dropped (an invalid $time or a null).
        self.object_array_updates_dropped = 0
        self.nested_updates_dropped = 0
        self._sequence = 0

    def __len__(self) -> int:
        return len(self.by_braze_id)

    # -- look-ups -------------------------------------------------------------------------------

    def find(self, identifier: Identifier) -> Profile | None:
        kind = identifier.kind
        if kind == "external_id":
            return self.by_external_id.get(identifier.value)
        if kind == "user_alias":
            return self.by_alias.get(identifier.value)
        if kind == "braze_id":
            return self.by_braze_id.get(identifier.value)
        index = self.by_email if kind == "email" else self.by_phone
        candidates = index.get(identifier.value)
        if not candidates:
            return None
        # Several profiles may share an address: Braze takes the most recently updated profile
        # that has an external_id, and only without one the most recently updated of all.
        identified = [profile for profile in candidates if profile.external_id is not None]
        return max(identified or candidates, key=lambda profile: profile.updated_seq)

    def profiles(self) -> list[Profile]:
        return list(self.by_braze_id.values())

    # -- creation and identity --------------------------------------------------------------------

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def create(self, identifier: Identifier | None = None) -> Profile:
        sequence = self._next_sequence()
        digest = hashlib.blake2b(f"{self._braze_id_seed}:{sequence}".encode(), digest_size=12).hexdigest()
        profile = Profile(
            braze_id=digest,
            created_at=format_time(datetime.now(UTC)),
            created_seq=sequence,
            updated_seq=sequence,
        )
        self.by_braze_id[profile.braze_id] = profile
        if identifier is not None:
            kind = identifier.kind
            if kind == "external_id":
                profile.external_id = identifier.value
                self.by_external_id[identifier.value] = profile
            elif kind == "user_alias":
                self.add_alias(profile, identifier.value)
            elif kind == "email":
                self._set_contact(profile, "email", identifier.value)
            elif kind == "phone":
                self._set_contact(profile, "phone", identifier.value)
        self.totals.users_created += 1
        return profile

    def add_alias(self, profile: Profile, alias: tuple[str, str]) -> None:
        profile.aliases = (*profile.aliases, alias)
        self.by_alias[alias] = profile

    @staticmethod
    def alias_with_label(profile: Profile, label: str) -> tuple[str, str] | None:
        """The profile's alias of ``label``: a user holds at most one alias per label."""
        for alias in profile.aliases:
            if alias[0] == label:
                return alias
        return None

    def rename_alias(self, profile: Profile, old: tuple[str, str], new: tuple[str, str]) -> None:
        profile.aliases = tuple(new if alias == old else alias for alias in profile.aliases)
        del self.by_alias[old]
        self.by_alias[new] = profile

    def remove_alias(self, profile: Profile, alias: tuple[str, str]) -> None:
        profile.aliases = tuple(held for held in profile.aliases if held != alias)
        self.by_alias.pop(alias, None)

    def set_external_id(self, profile: Profile, external_id: str) -> None:
        profile.external_id = external_id
        self.by_external_id[external_id] = profile
        self.touch(profile)

    def touch(self, profile: Profile) -> None:
        self._sequence += 1
        profile.updated_seq = self._sequence

    def delete(self, profile: Profile) -> None:
        self.by_braze_id.pop(profile.braze_id, None)
        if profile.external_id is not None:
            self.by_external_id.pop(profile.external_id, None)
        for alias in profile.aliases:
            self.by_alias.pop(alias, None)
        self._unindex_contact(profile, "email")
        self._unindex_contact(profile, "phone")

    def _index_for(self, field_name: str) -> dict[str, list[Profile]]:
        return self.by_email if field_name == "email" else self.by_phone

    @staticmethod
    def _index_key(field_name: str, value: str) -> str:
        return value.lower() if field_name == "email" else value

    def _unindex_contact(self, profile: Profile, field_name: str) -> None:
        held = profile.standard.get(field_name)
        if not isinstance(held, str):
            return
        index = self._index_for(field_name)
        key = self._index_key(field_name, held)
        holders = index.get(key)
        if holders is not None:
            holders[:] = [holder for holder in holders if holder is not profile]
            if not holders:
                del index[key]

    def _set_contact(self, profile: Profile, field_name: str, value: str | None) -> None:
        self._unindex_contact(profile, field_name)
        if value is None:
            profile.standard.pop(field_name, None)
            return
        profile.standard[field_name] = value
        self._index_for(field_name).setdefault(self._index_key(field_name, value), []).append(profile)

    def set_contact(self, profile: Profile, field_name: str, value: str | None) -> None:
        """Set or clear a profile's e-mail or phone, keeping the address indexes right."""
        self._set_contact(profile, field_name, value)

    def _resolve(self, identifier: Identifier, update_existing_only: bool) -> Profile | Refusal | None:
        """The profile an object is about; None when a new one may be created for it."""
        profile = self.find(identifier)
        if profile is not None:
            return profile
        if identifier.kind == "braze_id":
            return BRAZE_ID_NOT_FOUND
        if update_existing_only:
            return USER_NOT_FOUND
        return None

    # -- users.track ------------------------------------------------------------------------------

    def apply_attributes(self, update: AttributeUpdate) -> Refusal | None:
        identifier = update.identifier
        found: Profile | Refusal | None
        if identifier.kind == "external_id":
            found = self.by_external_id.get(identifier.value)
            if found is None and update.update_existing_only:
                return USER_NOT_FOUND
        else:
            found = self._resolve(identifier, update.update_existing_only)
            if isinstance(found, Refusal):
                return found
        if update.increments or update.array_operations or update.object_array_operations:
            refusal = self._state_refusal(update, found.custom if found is not None else {})
            if refusal is not None:
                return refusal
        profile = found if found is not None else self.create(update.identifier)

        custom = profile.custom
        incoming = update.custom
        for name in update.merged_objects:
            held_object = custom.get(name)
            if type(held_object) is dict:
                incoming[name] = _deep_merge(held_object, incoming[name])
        unchanged = 0
        has_unset = False
        held = custom.get
        for name, value in incoming.items():
            old = held(name, _ABSENT)
            if value is None:
                has_unset = True
                if old is _ABSENT:
                    unchanged += 1
            elif old == value and type(old) is type(value):
                unchanged += 1
        custom.update(incoming)
        if has_unset:
            # An unset leaves no key behind (the bulk update above stored it as None).
            for name in [name for name, value in incoming.items() if value is None]:
                del custom[name]

        for operation in update.array_operations:
            unchanged += self._apply_array_operation(custom, operation)
        for object_operation in update.object_array_operations:
            self._apply_object_array_operation(custom, object_operation)
        for name, amount in update.increments.items():
            custom[name] = custom.get(name, 0) + amount
        if update.standard:
            unchanged += self._apply_standard(profile, update.standard)
        if update.subscriptions:
            unchanged += self._apply_subscriptions(profile, update.subscriptions)

        self._sequence += 1
        profile.updated_seq = self._sequence
        totals = self.totals
        totals.data_points += update.data_points
        totals.unchanged_writes += unchanged
        totals.attributes += 1
        return None

    def _state_refusal(self, update: AttributeUpdate, held: dict[str, Any]) -> Refusal | None:
        for name in update.increments:
            current = held.get(name)
            if current is not None and type(current) is not int and type(current) is not float:
                return Refusal(f"'inc' on '{name[:255]}' which does not hold a number")
        for operation in update.array_operations:
            current = held.get(operation.name)
            if current is not None and type(current) is not list:
                return Refusal(f"'add'/'remove' on '{operation.name[:255]}' which does not hold an array")
        for object_operation in update.object_array_operations:
            current = held.get(object_operation.name)
            if current is not None and type(current) is not list:
                name = object_operation.name[:255]
                return Refusal(f"'$add'/'$remove'/'$update' on '{name}' which does not hold an array")
        return None

    def _apply_array_operation(self, custom: dict[str, Any], operation: ArrayOperation) -> int:
        held = custom.get(operation.name)
        values: list[Any] = list(held) if type(held) is list else []
        before = list(values)
        for item in operation.add:
            # Adding an element already present moves it to the end (it becomes the newest).
            values = [existing for existing in values if not _same(item, existing)]
            values.append(item)
        if operation.remove:
            values = [item for item in values if not any(_same(item, gone) for gone in operation.remove)]
        # Braze keeps the newest elements when an array outgrows its maximum.
        overflow = len(values) - self.array_max_length
        if overflow > 0:
            values = values[overflow:]
        custom[operation.name] = values
        return 1 if values == before and type(held) is list else 0

    def _apply_object_array_operation(self, custom: dict[str, Any], operation: ObjectArrayOperation) -> None:
        held = custom.get(operation.name)
        items: list[Any] = list(held) if type(held) is list else []
        for key, value in operation.remove:
            items = [item for item in items if not (type(item) is dict and _same(item.get(key), value))]
        for key, value, new_object in operation.update:
            for position, item in enumerate(items):
                if type(item) is dict and _same(item.get(key), value):
                    if operation.merge:
                        items[position] = _deep_merge(item, new_object)
                    else:
                        items[position] = {key: value, **new_object}
        items.extend(operation.add)
        # Braze drops an update that would take the array over its size limit (still a success).
        if len(orjson.dumps(items)) > self.object_array_max_bytes:
            self.object_array_updates_dropped += 1
            return
        custom[operation.name] = items

    def _apply_standard(self, profile: Profile, standard: dict[str, Any]) -> int:
        unchanged = 0
        held = profile.standard
        for name, value in standard.items():
            old = held.get(name, _ABSENT)
            if (old is _ABSENT and value is None) or (old is not _ABSENT and _same(old, value)):
                unchanged += 1
            if name in ("email", "phone"):
                self._set_contact(profile, name, value)
            elif value is None:
                held.pop(name, None)
            else:
                held[name] = value
        return unchanged

    def _apply_subscriptions(self, profile: Profile, subscriptions: dict[str, Any]) -> int:
        unchanged = 0
        for name, value in subscriptions.items():
            if name == "subscription_groups":
                for group in value:
                    group_id = group["subscription_group_id"]
                    if profile.subscription_groups.get(group_id) == group["subscription_state"]:
                        unchanged += 1
                    profile.subscription_groups[group_id] = group["subscription_state"]
            else:
                if profile.subscriptions.get(name) == value:
                    unchanged += 1
                profile.subscriptions[name] = value
                if name == "email_subscribe":
                    self.set_email_subscribe_for_address(profile.email, value)
        return unchanged

    def set_email_subscribe_for_address(self, email: str | None, state: str) -> None:
        """The e-mail subscription state belongs to the address: every profile with it follows."""
        if email is None:
            return
        for holder in self.by_email.get(email.lower(), ()):
            holder.subscriptions["email_subscribe"] = state

    def apply_event(self, event: EventRecord) -> Refusal | None:
        found = self._resolve(event.identifier, event.update_existing_only)
        if isinstance(found, Refusal):
            return found
        profile = found if found is not None else self.create(event.identifier)
        record: dict[str, Any] = {"name": event.name, "time": event.time, "properties": event.properties}
        if event.app_id is not None:
            record["app_id"] = event.app_id
        if profile.events is None:
            profile.events = [record]
        else:
            profile.events.append(record)
        self.totals.data_points += event.data_points
        self.totals.events += 1
        return None

    def apply_purchase(self, purchase: PurchaseRecord) -> Refusal | None:
        found = self._resolve(purchase.identifier, purchase.update_existing_only)
        if isinstance(found, Refusal):
            return found
        profile = found if found is not None else self.create(purchase.identifier)
        record: dict[str, Any] = {
            "product_id": purchase.product_id,
            "currency": purchase.currency,
            "price": purchase.price,
            "quantity": purchase.quantity,
            "time": purchase.time,
            "properties": purchase.properties,
        }
        if purchase.app_id is not None:
            record["app_id"] = purchase.app_id
        # A quantity of X counts as X purchases of one item each.
        quantity = record.pop("quantity")
        records = [{**record, "quantity": 1} for _ in range(quantity)]
        if profile.purchases is None:
            profile.purchases = records
        else:
            profile.purchases.extend(records)
        self.totals.data_points += purchase.data_points
        self.totals.purchases += 1
        return None
