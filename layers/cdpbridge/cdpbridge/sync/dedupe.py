"""Decides, per attribute, whether a write can be skipped because Braze already holds the value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cdpbridge.records import RowIssue
from cdpbridge.state import NULL_DIGEST, value_digest
from cdpbridge.state.digest import (
    DIGEST_SIZE,
    LIST_ELEMENT_ABSENT,
    LIST_ELEMENT_PREFIX,
    LIST_ELEMENT_PRESENT,
    LIST_TRACKED,
    remembered_str_digest,
)
from cdpbridge.sync.counters import FREE_ATTRIBUTES, attribute_data_points, nested_key_count
from cdpbridge.updates import AttributeWrite, MemberChange, UserUpdate, WriteMode

# After these, the value Braze holds is not known to us: the digest is forgotten once Braze acknowledges
# (add and remove keep what they did to each element instead: see _plan_list).
_STATE_UNKNOWN_AFTER = frozenset({WriteMode.ADD, WriteMode.REMOVE, WriteMode.INCREMENT, WriteMode.MERGE})
_LIST_WRITES = frozenset({WriteMode.ADD, WriteMode.REMOVE})
LIST_ELEMENTS_TRACKED: Final = 25
"""Element entries kept per array attribute: Braze's default array maximum. A list that would need
more is sent whole, as it comes, and its entries forgotten (Braze truncates arrays over the
maximum, so beyond it which elements Braze holds is no longer known)."""
_SET = WriteMode.SET
_NO_STATE: dict[str, bytes] = {}

APPLIED_AT_PREFIX: Final = "$applied_at:"
"""Field state keeps, beside an attribute's digest, when the value applied last was true (for writes
that carry ``as_of``) under this prefix and the attribute's name; Braze attribute names never start
with "$", so the two never meet. Kept in the same per-user record: no second read per chunk."""


def applied_at_key(name: str) -> str:
    return APPLIED_AT_PREFIX + name


def encode_applied_at(as_of: int) -> bytes:
    """Milliseconds since the epoch as 8 big-endian bytes: the size of a digest, so the stores'
    packing holds it unchanged."""
    return as_of.to_bytes(DIGEST_SIZE, "big", signed=True)


def decode_applied_at(stored: bytes) -> int:
    return int.from_bytes(stored, "big", signed=True)


MEMBER_PRESENT: Final = value_digest(True)
"""State of one member of a MEMBERS scope that Braze acknowledged (or that was recorded) as held."""
MEMBER_ABSENT: Final = NULL_DIGEST
"""State of one member of a MEMBERS scope whose removal Braze acknowledged."""
OVER_ARRAY_MAXIMUM: Final = "over the array maximum"


def _written_by(state_key: str) -> str:
    """The attribute whose write commits ``state_key`` (a member entry names its attribute)."""
    return state_key[1:].partition("@")[0] if state_key.startswith("~") else state_key


def member_state_prefix(attribute: str, scope: str) -> str:
    """Where the members of ``scope`` in ``attribute`` are kept in a user's state: one entry each,
    named ``<prefix><member>``. The leading "~" keeps them apart from attribute names a mapping
    writes (Braze attribute names are the mapping's, a "~" never starts one of ours)."""
    return f"~{attribute}@{scope}/"


LOOKUP_PENDING: Final = b""
"""Stands, in the state a later row of the same user is planned against, for an attribute whose
set_if_empty still awaits its lookup. Whatever the lookup decides, the attribute is not empty
afterwards, so a later set_if_empty is skipped; and no value digests to it, so a later set or unset
is sent."""


@dataclass(slots=True)
class PlannedUser:
    """What is left of one UserUpdate after dedupe: the writes to send and the state to commit on ack."""

    update: UserUpdate
    writes: dict[str, AttributeWrite] = field(default_factory=dict)
    # attribute -> the JSON value users.track receives for each of ``writes`` (braze_value)
    values: dict[str, Any] = field(default_factory=dict)
    # attribute -> digest to store once Braze acknowledged (None = forget the attribute)
    digests: dict[str, bytes | None] = field(default_factory=dict)
    data_points: int = 0
    unchanged: int = 0
    unchanged_data_points: int = 0
    set_if_empty_skipped: int = 0
    # writes dropped because a newer value (by ``as_of``) was applied or planned before them
    superseded: int = 0
    # set_if_empty writes whose outcome depends on a lookup of what Braze holds
    pending_lookups: dict[str, AttributeWrite] = field(default_factory=dict)
    # Whether ``writes`` holds an increment (it goes through the send ledger) or a merge (the body
    # needs _merge_objects): known here so the engine need not look through the writes again.
    has_increment: bool = False
    has_merge: bool = False
    # An add or remove, sent or found unchanged element by element (see _plan_list).
    has_list_write: bool = False
    # State learnt without a write (MEMBERS record_only): committed as it is, nothing is sent.
    recorded: dict[str, bytes] = field(default_factory=dict)
    # Problems found while planning (members over the array maximum): reported, the rest is sent.
    issues: list[RowIssue] = field(default_factory=list)

    def digests_of(self, writes: Mapping[str, AttributeWrite]) -> dict[str, bytes | None]:
        """The state to commit once ``writes`` (this plan's, or some of them) are acknowledged: their
        digests, and the member entries of their MEMBERS writes."""
        if writes is self.writes:
            return self.digests
        # Reserved entries (the record's digest, list elements: named with a leading "$", as no
        # attribute is) go with any of the plan's writes.
        return {
            key: digest for key, digest in self.digests.items() if key[0] == "$" or _written_by(key) in writes
        }

    def attributes_object(self, writes: Mapping[str, AttributeWrite]) -> dict[str, Any]:
        """The users.track attributes object that sends ``writes``: this plan's, or some of them."""
        values = self.values if writes is self.writes else {name: self.values[name] for name in writes}
        update = self.update
        body = {**update.identifier, **values}
        if self.has_merge:
            body["_merge_objects"] = True
        if update.update_existing_only:
            body["_update_existing_only"] = True
        elif "user_alias" in update.identifier:
            # Braze updates only existing aliases unless told otherwise: creating must be asked for.
            body["_update_existing_only"] = False
        return body


def braze_value(write: AttributeWrite) -> Any:
    """The JSON value users.track receives for one attribute."""
    mode = write.mode
    if mode is WriteMode.ADD:
        return {"add": write.value}
    if mode is WriteMode.REMOVE:
        return {"remove": write.value}
    if mode is WriteMode.INCREMENT:
        return {"inc": write.value}
    if mode is WriteMode.UNSET:
        return None
    return write.value


def plan_user(  # noqa: PLR0912, PLR0915 - runs once per user: one branch per kind of write
    update: UserUpdate,
    known: dict[str, bytes] | None,
    full_refresh: bool,
    list_elements_tracked: int = LIST_ELEMENTS_TRACKED,
) -> PlannedUser:
    """Drops the writes Braze already holds; ``known`` is what it holds for this user before this
    update: the acknowledged state, overlaid with what earlier rows of the same run planned."""
    planned = PlannedUser(update=update)
    state = known or _NO_STATE
    compare = not full_refresh and bool(state)
    writes = planned.writes
    values = planned.values
    digests = planned.digests
    data_points = 0
    for name, write in update.attributes.items():
        if write.as_of is not None and _superseded(name, write.as_of, state, digests):
            planned.superseded += 1
            continue
        mode = write.mode
        if mode is _SET:
            # Most writes of most files: decided here, without the general helpers; a text value
            # seen before has its digest remembered (value_digest's own memo, looked up inline).
            value = write.value
            digest = remembered_str_digest(value) if value.__class__ is str else None
            if digest is None:
                digest = value_digest(value)
            if name in FREE_ATTRIBUTES:
                points = 0
            elif value.__class__ is dict:
                points = max(1, nested_key_count(value))
            else:
                points = 1
            if compare and state.get(name) == digest:
                planned.unchanged += 1
                planned.unchanged_data_points += points
                continue
            writes[name] = write
            values[name] = value
            digests[name] = digest
            data_points += points
            continue
        if mode in _LIST_WRITES and write.value.__class__ is list:
            _plan_list(planned, name, write, state, full_refresh=full_refresh, limit=list_elements_tracked)
            continue
        if mode in _STATE_UNKNOWN_AFTER:
            writes[name] = write
            values[name] = braze_value(write)
            digests[name] = None
            data_points += attribute_data_points(name, write)
            if mode is WriteMode.INCREMENT:
                planned.has_increment = True
            elif mode is WriteMode.MERGE:
                planned.has_merge = True
            continue
        if mode is WriteMode.MEMBERS:
            _plan_members(planned, name, write, state, full_refresh)
            continue
        if mode is WriteMode.SET_IF_EMPTY:
            stored = state.get(name)
            if stored is None or stored == LIST_TRACKED:
                # Nothing acknowledged by us (or only adds and removes, which may have emptied the
                # array): only Braze knows whether the attribute is empty.
                planned.pending_lookups[name] = write
            elif stored == NULL_DIGEST:
                _keep_set(planned, name, write, value_digest(write.value))
            else:
                planned.set_if_empty_skipped += 1
            continue
        digest = NULL_DIGEST if mode is WriteMode.UNSET else value_digest(write.value)
        if not full_refresh and state.get(name) == digest:
            planned.unchanged += 1
            planned.unchanged_data_points += attribute_data_points(name, write)
            continue
        _keep_set(planned, name, write, digest)
    planned.data_points += data_points
    return planned


def _superseded(name: str, as_of: int, state: Mapping[str, bytes], digests: dict[str, bytes | None]) -> bool:
    """Whether a value applied (or planned) for ``name`` is newer than ``as_of``; if not, ``as_of``
    becomes the attribute's applied time, committed with the digests once Braze acknowledged.

    The time is recorded even when the value turns out unchanged, so that within a run an older
    value arriving later is still dropped; a tie keeps the later record (source order)."""
    key = applied_at_key(name)
    applied = state.get(key)
    if applied and decode_applied_at(applied) > as_of:
        return True
    digests[key] = encode_applied_at(as_of)
    return False


def _plan_members(
    planned: PlannedUser, name: str, write: AttributeWrite, state: Mapping[str, bytes], full_refresh: bool
) -> None:
    """Turns a MemberChange into the add/remove Braze has not acknowledged yet, with one state entry
    per member changed (present after an add, absent after a remove)."""
    change: MemberChange = write.value
    prefix = member_state_prefix(name, change.scope)
    held = {
        key[len(prefix) :]
        for key, digest in state.items()
        if key.startswith(prefix) and digest == MEMBER_PRESENT
    }
    wanted = dict.fromkeys(change.add)
    removing = [member for member in change.remove if member not in wanted]
    if change.complete:
        removing += sorted(held.difference(wanted, removing))
    if change.record_only:
        planned.recorded.update({prefix + member: MEMBER_PRESENT for member in wanted})
        planned.recorded.update({prefix + member: MEMBER_ABSENT for member in removing})
        return
    adds = [member for member in wanted if full_refresh or member not in held]
    # A remove is skipped only when Braze acknowledged it before: an unknown member may be held.
    removes = [member for member in removing if full_refresh or state.get(prefix + member) != MEMBER_ABSENT]
    if change.limit is not None:
        kept_after = len(held.difference(removes)) + len([member for member in adds if member not in held])
        over = kept_after - change.limit
        if over > 0:
            dropped = [member for member in adds if member not in held][-over:]
            adds = [member for member in adds if member not in dropped]
            planned.issues.append(
                RowIssue(
                    planned.update.position,
                    write.column,
                    OVER_ARRAY_MAXIMUM,
                    f"'{name}' would hold {kept_after} members, at most {change.limit} are kept; "
                    f"not kept: {', '.join(dropped)}",
                )
            )
    if not adds and not removes:
        planned.unchanged += 1
        return
    value: dict[str, list[str]] = {}
    if adds:
        value["add"] = adds
    if removes:
        value["remove"] = removes
    planned.writes[name] = AttributeWrite(value, WriteMode.MEMBERS, write.column)
    planned.values[name] = value
    planned.digests.update({prefix + member: MEMBER_PRESENT for member in adds})
    planned.digests.update({prefix + member: MEMBER_ABSENT for member in removes})
    planned.data_points += len(adds) + len(removes)


def _plan_list(
    planned: PlannedUser,
    name: str,
    write: AttributeWrite,
    state: dict[str, bytes],
    *,
    full_refresh: bool,
    limit: int,
) -> None:
    """An add or remove sent for the elements whose acknowledged state is not already what it asks
    (in the array for add, out of it for remove); nothing when every element is."""
    planned.has_list_write = True
    elements: list[Any] = write.value
    prefix = f"{LIST_ELEMENT_PREFIX}{name}:"
    tracked = not full_refresh and state.get(name) == LIST_TRACKED
    entries = [key for key in state if key.startswith(prefix)] if state else []
    wanted = LIST_ELEMENT_PRESENT if write.mode is WriteMode.ADD else LIST_ELEMENT_ABSENT
    keys = [prefix + value_digest(element).hex() for element in elements]
    changes: dict[str, bytes | None] = {}
    if tracked:
        sent = [element for element, key in zip(elements, keys, strict=True) if state.get(key) != wanted]
        kept = len(entries) + len({key for key in keys if key not in state})
    else:
        # What earlier entries said no longer holds (another write replaced the array since).
        changes = dict.fromkeys(entries)
        sent = elements
        kept = len(set(keys))
    free = name in FREE_ATTRIBUTES
    saved = len(elements) - len(sent)
    if not sent:
        planned.unchanged += 1
        planned.unchanged_data_points += 0 if free else saved
        return
    if kept > limit:
        # Past the array maximum: sent as it comes, and which elements Braze holds is unknown.
        sent = elements
        saved = 0
        changes = dict.fromkeys(entries)
        changes[name] = None
    else:
        changes.update(dict.fromkeys(keys, wanted))
        changes[name] = LIST_TRACKED
    planned.writes[name] = write if sent is elements else AttributeWrite(sent, write.mode, write.column)
    planned.values[name] = {"add" if write.mode is WriteMode.ADD else "remove": sent}
    planned.digests.update(changes)
    planned.data_points += 0 if free else len(sent)
    planned.unchanged_data_points += 0 if free else saved


def _keep_set(planned: PlannedUser, name: str, write: AttributeWrite, digest: bytes) -> None:
    planned.writes[name] = write
    planned.values[name] = braze_value(write)
    planned.digests[name] = digest
    planned.data_points += attribute_data_points(name, write)


def resolve_lookup(planned: PlannedUser, braze_values: dict[str, Any] | None) -> dict[str, bytes]:
    """Applies what /users/export/ids said Braze holds to the pending set_if_empty writes.

    ``braze_values`` maps attribute names to the values Braze returned for this user (None when
    the user does not exist). Returns the digests learnt, to be stored as acknowledged state.
    """
    learnt: dict[str, bytes] = {}
    for name, write in planned.pending_lookups.items():
        current = None if braze_values is None else braze_values.get(name)
        if current is None or current in ("", []):
            learnt[name] = NULL_DIGEST
            _keep_set(
                planned,
                name,
                AttributeWrite(write.value, WriteMode.SET, write.column),
                value_digest(write.value),
            )
        else:
            learnt[name] = value_digest(current)
            planned.set_if_empty_skipped += 1
    planned.pending_lookups.clear()
    return learnt
