"""What a mapper makes of one source row: the Braze writes it asks for, before dedupe and batching."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cdpbridge.records import RowIssue, RowPosition


class WriteMode(StrEnum):
    """How one attribute value is written; decides whether dedupe may skip it."""

    SET = "set"  # replace the value; dedupe compares the hash of the value
    UNSET = "unset"  # send null; dedupe compares against the hash of null
    SET_IF_EMPTY = "set_if_empty"  # only when Braze holds no value for the attribute
    ADD = "add"  # {"add": [...]} on an array; deduped per element (sync/dedupe.py: _plan_list)
    REMOVE = "remove"  # {"remove": [...]} on an array; deduped per element, like add
    INCREMENT = "increment"  # {"inc": n}; never deduped, state invalidated after ack
    MERGE = "merge"  # nested object merged with _merge_objects; never deduped, state invalidated
    # A change of the members one scope (a partner's feed) holds in an array attribute: the value
    # is a MemberChange; each member's presence is tracked in state, so only changes are sent.
    MEMBERS = "members"


@dataclass(frozen=True, slots=True)
class MemberChange:
    """Members of an array attribute that one scope adds and removes (the value of a MEMBERS write).

    The state keeps, per user, whether each member of the scope is present or absent as Braze last
    acknowledged: an add of a present member and a remove of an absent one are not sent again.
    ``complete``: ``add`` is every member the scope holds for the user, so present members not in
    it are removed in the same write. ``limit``: the most members the array may hold; adds beyond
    it are left out and reported. ``record_only``: nothing is sent, the adds are recorded as
    present (a partner's first snapshot whose members Braze is not to receive).
    """

    scope: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    complete: bool = False
    limit: int | None = None
    record_only: bool = False


@dataclass(frozen=True, slots=True)
class AttributeWrite:
    """One attribute of one user. ``value`` is JSON-ready and is what Braze receives for the key.

    For SET it is the final value (scalar, list, dict, or None); for UNSET it is None; for ADD and
    REMOVE it is the list of values; for INCREMENT the integer; for MERGE the partial object.
    """

    value: Any
    mode: WriteMode = WriteMode.SET
    # The source column this came from, so a Braze error on it can be reported against the column.
    column: str | None = None
    # When the source says the value was true (milliseconds since the epoch), for sources whose
    # records can arrive out of order: a write older than the one applied last for the same user
    # and attribute is dropped (dedupe keeps the applied time beside the digest). None: file order.
    as_of: int | None = None


@dataclass(slots=True)
class UserUpdate:
    """Every write a single source row asks for, keyed by one Braze identifier."""

    position: RowPosition
    # Stable key for dedupe state and for grouping, e.g. "external_id:123" or "alias:label:name".
    user_key: str
    # The identifier members exactly as users.track wants them, e.g. {"external_id": "123"} or
    # {"user_alias": {"alias_name": "a", "alias_label": "l"}} or {"email": "x@y.z"}.
    identifier: dict[str, Any]
    update_existing_only: bool = False
    attributes: dict[str, AttributeWrite] = field(default_factory=dict)
    # JSON-ready event and purchase objects without identifier members (the engine adds them).
    events: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)
    # Field-level problems found while mapping; with on_invalid=reject_row they make the row a reject.
    issues: list[RowIssue] = field(default_factory=list)
    # True when the row must not be sent at all: an issue under on_invalid=reject_row, or no usable
    # identifier (under skip_field too). With skip_field the invalid values are simply left out.
    rejected: bool = False
    # Why a usable record asks for nothing on purpose (a call kind the config does not map, a
    # record delivered twice): counted by reason in the report, neither sent nor rejected.
    skipped: str | None = None
    # The digest of the source record this update was mapped from (``Mapper.record_digest``), when
    # the record can be recognised by it: stored once Braze acknowledged all of the record.
    record_digest: bytes | None = None
