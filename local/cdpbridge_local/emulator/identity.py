"""Endpoints that change who a profile is: /users/delete, /users/alias/new, /users/alias/update,
/users/identify and /users/merge.

Every request is validated whole before anything changes. A user holds at most one alias per label.
"""

from __future__ import annotations

from typing import Any

from cdpbridge_local.emulator.errors import BadRequest
from cdpbridge_local.emulator.messaging import parse_prioritization
from cdpbridge_local.emulator.state import Profile, UserStore
from cdpbridge_local.emulator.validation import Identifier, is_email, is_phone, parse_alias

MAX_USERS_PER_DELETE = 50
MAX_ALIASES_PER_REQUEST = 50
MAX_IDENTIFY_PER_REQUEST = 50
MAX_MERGES_PER_REQUEST = 50
_DELETE_KINDS = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")

JsonBody = dict[str, Any]


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    return body


def find_prioritized(store: UserStore, identifier: Identifier, prioritization: list[str]) -> Profile | None:
    """The profile an e-mail or phone names, chosen the way ``prioritization`` asks."""
    index = store.by_email if identifier.kind == "email" else store.by_phone
    candidates = list(index.get(identifier.value, ()))
    for rule in prioritization:
        if rule == "identified":
            candidates = [profile for profile in candidates if profile.external_id is not None]
        elif rule == "unidentified":
            candidates = [profile for profile in candidates if profile.external_id is None]
    if not candidates:
        return None
    if "least_recently_updated" in prioritization:
        return min(candidates, key=lambda profile: profile.updated_seq)
    return max(candidates, key=lambda profile: profile.updated_seq)


def _contact(entry: Any, field: str, where: str) -> tuple[Identifier, list[str]]:
    if not isinstance(entry, dict):
        raise BadRequest(f"{where} must be an object with '{field}' and 'prioritization'")
    value = entry.get(field)
    if not isinstance(value, str):
        raise BadRequest(f"{where}.{field} is required")
    if field == "email":
        if not is_email(value):
            raise BadRequest(f"{where}.email is not a valid email address")
        identifier = Identifier("email", value.lower())
    else:
        if not is_phone(value):
            raise BadRequest(f"{where}.phone is not a valid phone number")
        identifier = Identifier("phone", value)
    return identifier, parse_prioritization(entry.get("prioritization"), where)


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise BadRequest(f"'{name}' must be an array of non-empty strings")
    return value


def delete_users(body: Any, store: UserStore) -> JsonBody:
    """One identifier kind per request; ``deleted`` counts the deletions queued."""
    payload = _object(body)
    unknown = payload.keys() - set(_DELETE_KINDS)
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    kinds = [kind for kind in _DELETE_KINDS if payload.get(kind)]
    if not kinds:
        raise BadRequest(f"name at least one user: one of {', '.join(_DELETE_KINDS)}")
    if len(kinds) > 1:
        raise BadRequest(f"only one kind of identifier per request, got {kinds}")
    kind = kinds[0]
    entries = payload[kind]
    if not isinstance(entries, list):
        raise BadRequest(f"'{kind}' must be an array")
    if len(entries) > MAX_USERS_PER_DELETE:
        raise BadRequest(f"{len(entries)} users in one request, the limit is {MAX_USERS_PER_DELETE}")
    targets: list[Profile | None] = []
    if kind in ("external_ids", "braze_ids"):
        id_kind = "external_id" if kind == "external_ids" else "braze_id"
        targets = [store.find(Identifier(id_kind, value)) for value in _strings(payload, kind)]
    elif kind == "user_aliases":
        for alias in entries:
            parsed = parse_alias(alias)
            if parsed is None:
                raise BadRequest("'user_aliases' must hold {'alias_name', 'alias_label'} objects")
            targets.append(store.find(Identifier("user_alias", parsed)))
    else:
        field = "email" if kind == "email_addresses" else "phone"
        for index, entry in enumerate(entries):
            identifier, prioritization = _contact(entry, field, f"{kind}[{index}]")
            targets.append(find_prioritized(store, identifier, prioritization))
    for profile in targets:
        if profile is not None and profile.braze_id in store.by_braze_id:
            store.delete(profile)
    # Braze deletes asynchronously: it counts the deletions it queued, not the profiles found.
    return {"deleted": len(entries), "message": "success"}


def new_aliases(body: Any, store: UserStore) -> JsonBody:
    payload = _object(body)
    entries = payload.get("user_aliases")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("'user_aliases' must be a non-empty array")
    if len(entries) > MAX_ALIASES_PER_REQUEST:
        raise BadRequest(f"{len(entries)} aliases in one request, the limit is {MAX_ALIASES_PER_REQUEST}")
    planned: list[tuple[tuple[str, str], str | None]] = []
    for index, entry in enumerate(entries):
        alias = parse_alias(entry)
        if alias is None:
            raise BadRequest(f"user_aliases[{index}] needs non-empty 'alias_name' and 'alias_label'")
        external_id = entry.get("external_id")
        if external_id is not None and (not isinstance(external_id, str) or not external_id):
            raise BadRequest(f"user_aliases[{index}].external_id must be a non-empty string")
        planned.append((alias, external_id))
    errors: list[JsonBody] = []
    processed = 0
    for index, (alias, external_id) in enumerate(planned):
        holder = store.by_alias.get(alias)
        if external_id is None:
            if holder is None:
                store.create(Identifier("user_alias", alias))
            processed += 1
            continue
        profile = store.by_external_id.get(external_id)
        if profile is None:
            errors.append({"type": "'external_id' does not match any user", "index": index})
        elif holder is not None and holder is not profile:
            errors.append({"type": "the alias already belongs to another user", "index": index})
        elif holder is None and store.alias_with_label(profile, alias[0]) is not None:
            errors.append({"type": "the user already has an alias with this label", "index": index})
        else:
            if holder is None:
                store.add_alias(profile, alias)
            processed += 1
    response: JsonBody = {"aliases_processed": processed, "message": "success"}
    if errors:
        response["errors"] = errors
    return response


def update_aliases(body: Any, store: UserStore) -> JsonBody:
    """``alias_updates``: ``{alias_label, old_alias_name, new_alias_name}``; the label stays."""
    payload = _object(body)
    entries = payload.get("alias_updates")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("'alias_updates' must be a non-empty array")
    if len(entries) > MAX_ALIASES_PER_REQUEST:
        raise BadRequest(
            f"{len(entries)} alias updates in one request, the limit is {MAX_ALIASES_PER_REQUEST}"
        )
    planned: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for index, entry in enumerate(entries):
        values = [entry.get(name) if isinstance(entry, dict) else None for name in _ALIAS_UPDATE_FIELDS]
        if not all(isinstance(value, str) and value for value in values):
            raise BadRequest(f"alias_updates[{index}] needs non-empty {', '.join(_ALIAS_UPDATE_FIELDS)}")
        label, old_name, new_name = (str(value) for value in values)
        planned.append(((label, old_name), (label, new_name)))
    errors: list[JsonBody] = []
    for index, (old, new) in enumerate(planned):
        profile = store.by_alias.get(old)
        if profile is None:
            errors.append({"type": "no user has the old alias", "index": index})
        elif new in store.by_alias:
            errors.append({"type": "the new alias already belongs to a user", "index": index})
        else:
            store.rename_alias(profile, old, new)
    response: JsonBody = {"message": "success"}
    if errors:
        response["errors"] = errors
    return response


_ALIAS_UPDATE_FIELDS = ("alias_label", "old_alias_name", "new_alias_name")


def merge_into(store: UserStore, keep: Profile, merged: Profile) -> None:
    """What Braze carries over from a merged profile: fields the kept one lacks, all events and
    purchases, subscription groups it lacks and aliases of labels it lacks; the merged one is gone."""
    for name, value in merged.custom.items():
        keep.custom.setdefault(name, value)
    for name, value in merged.subscriptions.items():
        keep.subscriptions.setdefault(name, value)
    for group_id, state in merged.subscription_groups.items():
        keep.subscription_groups.setdefault(group_id, state)
    if merged.events:
        keep.events = [*(keep.events or ()), *merged.events]
    if merged.purchases:
        keep.purchases = [*(keep.purchases or ()), *merged.purchases]
    standard = {name: value for name, value in merged.standard.items() if name not in keep.standard}
    aliases = [alias for alias in merged.aliases if store.alias_with_label(keep, alias[0]) is None]
    store.delete(merged)
    for name, value in standard.items():
        if name in ("email", "phone"):
            store.set_contact(keep, name, value)
        else:
            keep.standard[name] = value
    for alias in aliases:
        store.add_alias(keep, alias)
    store.touch(keep)


def _identify_entries(payload: dict[str, Any]) -> list[tuple[str, Identifier, list[str]]]:
    planned: list[tuple[str, Identifier, list[str]]] = []
    for index, entry in enumerate(_list(payload, "aliases_to_identify")):
        where = f"aliases_to_identify[{index}]"
        external_id = entry.get("external_id") if isinstance(entry, dict) else None
        alias = parse_alias(entry.get("user_alias")) if isinstance(entry, dict) else None
        if not isinstance(external_id, str) or not external_id or alias is None:
            raise BadRequest(f"{where} needs an 'external_id' and a 'user_alias'")
        planned.append((external_id, Identifier("user_alias", alias), []))
    for name, field in (("emails_to_identify", "email"), ("phone_numbers_to_identify", "phone")):
        for index, entry in enumerate(_list(payload, name)):
            where = f"{name}[{index}]"
            identifier, prioritization = _contact(entry, field, where)
            external_id = entry.get("external_id")
            if not isinstance(external_id, str) or not external_id:
                raise BadRequest(f"{where} needs an 'external_id'")
            planned.append((external_id, identifier, prioritization))
    return planned


def _list(payload: dict[str, Any], name: str) -> list[Any]:
    value = payload.get(name) or []
    if not isinstance(value, list):
        raise BadRequest(f"'{name}' must be an array")
    return value


def identify(body: Any, store: UserStore) -> JsonBody:
    """Alias-only (or e-mail- or phone-only) profiles become known under an external_id: merged into
    the profile that has it, or given it when nobody has it yet."""
    payload = _object(body)
    unknown = payload.keys() - {"aliases_to_identify", "emails_to_identify", "phone_numbers_to_identify"}
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    planned = _identify_entries(payload)
    if not planned:
        raise BadRequest(
            "name at least one of aliases_to_identify, emails_to_identify, phone_numbers_to_identify"
        )
    if len(planned) > MAX_IDENTIFY_PER_REQUEST:
        raise BadRequest(
            f"{len(planned)} identifications in one request, the limit is {MAX_IDENTIFY_PER_REQUEST}"
        )
    processed = 0
    for external_id, identifier, prioritization in planned:
        if identifier.kind == "user_alias":
            source = store.by_alias.get(identifier.value)
        else:
            source = find_prioritized(store, identifier, [*prioritization, "unidentified"])
        known = store.by_external_id.get(external_id)
        if source is None:
            if (
                known is not None
                and identifier.kind == "user_alias"
                and store.alias_with_label(known, identifier.value[0]) is None
            ):
                store.add_alias(known, identifier.value)
                processed += 1
            continue
        if source.external_id is not None:
            # Only an unidentified profile can be identified.
            continue
        if known is None:
            store.set_external_id(source, external_id)
        elif known is not source:
            merge_into(store, known, source)
        processed += 1
    return {"aliases_processed": processed, "message": "success"}


def _merge_identifier(raw: Any, where: str) -> tuple[Identifier, list[str]]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    if isinstance(raw.get("external_id"), str) and raw["external_id"]:
        return Identifier("external_id", raw["external_id"]), []
    alias = parse_alias(raw.get("user_alias"))
    if alias is not None:
        return Identifier("user_alias", alias), []
    if "email" in raw:
        return _contact(raw, "email", where)
    if "phone" in raw:
        return _contact(raw, "phone", where)
    raise BadRequest(f"{where} needs an external_id, a user_alias, or an email or phone with prioritization")


def merge(body: Any, store: UserStore) -> JsonBody:
    """``merge_updates``: ``{identifier_to_merge, identifier_to_keep}``; the merged profile goes."""
    payload = _object(body)
    entries = payload.get("merge_updates")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("'merge_updates' must be a non-empty array")
    if len(entries) > MAX_MERGES_PER_REQUEST:
        raise BadRequest(f"{len(entries)} merges in one request, the limit is {MAX_MERGES_PER_REQUEST}")
    planned = []
    for index, entry in enumerate(entries):
        where = f"merge_updates[{index}]"
        if not isinstance(entry, dict):
            raise BadRequest(f"{where} must be an object")
        planned.append(
            (
                _merge_identifier(entry.get("identifier_to_merge"), f"{where}.identifier_to_merge"),
                _merge_identifier(entry.get("identifier_to_keep"), f"{where}.identifier_to_keep"),
            )
        )
    for to_merge, to_keep in planned:
        merged = _resolve(store, *to_merge)
        keep = _resolve(store, *to_keep)
        if merged is not None and keep is not None and merged is not keep:
            merge_into(store, keep, merged)
    return {"message": "success"}


def _resolve(store: UserStore, identifier: Identifier, prioritization: list[str]) -> Profile | None:
    if identifier.kind in ("email", "phone"):
        return find_prioritized(store, identifier, prioritization)
    return store.find(identifier)
