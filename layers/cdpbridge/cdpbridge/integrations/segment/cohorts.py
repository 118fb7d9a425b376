"""Engage audiences as Braze cohorts: membership changes into Cohort Import API calls.

An audience call (``context.personas.computation_class == "audience"``) says a user entered or left:
an identify call carries the audience key as a trait (true/false), a track call is "Audience
Entered" or "Audience Exited". Within a batch the latest change per user and audience wins by the
call's timestamp; each audience then costs one create-or-rename request and one membership request
per 1,000 ids (the client splits them). The cohort id is Engage's computation id (stable when the
audience is renamed), its name the audience key unless the config names it. Braze adds only users
that exist, so the users.track writes of the same batch go first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from cdpbridge.braze import BrazeClient, CohortChange
from cdpbridge.integrations.segment.calls import CallError, SegmentCall, parse_call
from cdpbridge.integrations.segment.options import AnonymousCalls, SegmentOptions

ENTERED_EVENT: Final = "Audience Entered"
EXITED_EVENT: Final = "Audience Exited"


@dataclass(frozen=True, slots=True)
class CohortCredentials:
    """The partner key Braze issued to the partner and the customer's Data Import Key."""

    partner_api_key: str
    data_import_key: str


@dataclass(frozen=True, slots=True)
class Member:
    external_id: str | None = None
    alias_name: str | None = None
    alias_label: str | None = None


@dataclass(slots=True)
class AudienceChanges:
    cohort_id: str
    audience_key: str
    # member -> (call time in ms, entered)
    latest: dict[Member, tuple[int, bool]] = field(default_factory=dict)


def membership(call: SegmentCall) -> bool | None:
    """True (entered), False (left) or None (not an audience membership call)."""
    personas = call.personas
    if personas is None or not personas.is_audience:
        return None
    if call.type == "identify":
        value = call.traits.get(personas.computation_key)
        return value if isinstance(value, bool) else None
    if call.type == "track":
        if call.event == ENTERED_EVENT:
            return True
        if call.event == EXITED_EVENT:
            return False
    return None


class CohortChanges:
    """Collects audience membership changes of one batch (or file); the latest per user wins."""

    def __init__(self, options: SegmentOptions) -> None:
        self._options = options
        self._wanted = frozenset(options.cohorts.audiences)
        self.audiences: dict[str, AudienceChanges] = {}

    def add_record(self, record: dict[str, Any]) -> None:
        try:
            call = parse_call(record)
        except CallError:
            return  # the users.track pass reports it
        self.add(call)

    def add(self, call: SegmentCall) -> None:
        entered = membership(call)
        if entered is None or call.personas is None:
            return
        key = call.personas.computation_key
        if self._wanted and key not in self._wanted:
            return
        member = self._member(call)
        if member is None:
            return
        cohort_id = call.personas.computation_id or key
        changes = self.audiences.setdefault(cohort_id, AudienceChanges(cohort_id, key))
        earlier = changes.latest.get(member)
        if earlier is None or earlier[0] <= call.timestamp_ms:
            changes.latest[member] = (call.timestamp_ms, entered)

    def _member(self, call: SegmentCall) -> Member | None:
        if call.user_id is not None:
            return Member(external_id=call.user_id)
        if self._options.anonymous is AnonymousCalls.ALIAS and call.anonymous_id is not None:
            return Member(alias_name=call.anonymous_id, alias_label=self._options.alias_label)
        return None


def cohort_changes(changes: AudienceChanges) -> list[CohortChange]:
    """The membership requests' changes: adds then removes, external ids then aliases."""
    result: list[CohortChange] = []
    for entered in (True, False):
        members = [member for member, (_, state) in changes.latest.items() if state is entered]
        user_ids = [member.external_id for member in members if member.external_id is not None]
        aliases = [
            {"alias_name": member.alias_name, "alias_label": member.alias_label}
            for member in members
            if member.alias_name is not None
        ]
        if user_ids:
            result.append(CohortChange(user_ids=user_ids, should_remove=not entered))
        if aliases:
            result.append(CohortChange.model_validate({"aliases": aliases, "should_remove": not entered}))
    return result


@dataclass(slots=True)
class CohortSyncResult:
    cohorts: int = 0
    requests: int = 0
    ids_sent: int = 0


def sync_cohorts(
    changes: CohortChanges,
    client: BrazeClient,
    credentials: CohortCredentials,
    options: SegmentOptions,
) -> CohortSyncResult:
    """Creates or renames each changed audience's cohort, then sends its membership changes."""
    result = CohortSyncResult()
    partner = options.cohorts.partner
    for audience in changes.audiences.values():
        if not audience.latest:
            continue
        name = options.cohorts.names.get(audience.audience_key, audience.audience_key)
        client.cohort_upsert(
            partner, credentials.partner_api_key, credentials.data_import_key, audience.cohort_id, name
        )
        sent = client.cohort_update_users(
            partner,
            credentials.partner_api_key,
            credentials.data_import_key,
            audience.cohort_id,
            cohort_changes(audience),
        )
        result.cohorts += 1
        result.requests += 1 + sent.requests
        result.ids_sent += sent.ids_sent
    return result


def read_cohort_credentials(secret_id: str, client: Any) -> CohortCredentials:
    """The secret's JSON {"partner_api_key": ..., "data_import_key": ...}; an error naming what is missing."""
    text = client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None
    keys = ("partner_api_key", "data_import_key")
    if not isinstance(document, dict) or not all(
        isinstance(document.get(k), str) and document[k] for k in keys
    ):
        raise ValueError(f"secret {secret_id!r} must hold JSON with non-empty {' and '.join(keys)}")
    return CohortCredentials(document["partner_api_key"], document["data_import_key"])


def collect(records: Iterable[dict[str, Any]], options: SegmentOptions) -> CohortChanges:
    changes = CohortChanges(options)
    for record in records:
        changes.add_record(record)
    return changes


__all__ = [
    "ENTERED_EVENT",
    "EXITED_EVENT",
    "CohortChanges",
    "CohortCredentials",
    "CohortSyncResult",
    "cohort_changes",
    "collect",
    "membership",
    "read_cohort_credentials",
    "sync_cohorts",
]
