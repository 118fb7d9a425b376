"""Cohort import for partners: POST /partners/<partner>/cohorts and /partners/<partner>/cohorts/users.

Partners authenticate in the body (partner_api_key plus the customer's Data Import Key as
client_secret). Cohort import never creates users: ids that match no profile are counted, not added.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cdpbridge_local.emulator.errors import ApiError, BadRequest
from cdpbridge_local.emulator.state import Profile, UserStore
from cdpbridge_local.emulator.validation import Identifier, format_time, parse_alias, parse_time

MAX_IDS_PER_REQUEST = 1000


class PartnerDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: str = Field(min_length=1)
    partner_api_key: str = Field(min_length=1)
    data_import_key: str = Field(min_length=1)


class CohortLock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: str = Field(min_length=1)
    cohort_id: str = Field(min_length=1)
    locked: bool = True


@dataclass(slots=True)
class Cohort:
    partner: str
    cohort_id: str
    name: str | None = None
    created_at: str | None = None
    locked: bool = False
    # braze_id -> None: an insertion-ordered set of members.
    members: dict[str, None] = field(default_factory=dict)
    unmatched_ids: int = 0


class CohortRegistry:
    def __init__(self) -> None:
        self.partners: dict[str, PartnerDefinition] = {}
        self.clear_cohorts()

    def clear_cohorts(self) -> None:
        self.cohorts: dict[tuple[str, str], Cohort] = {}

    def add_partner(self, definition: PartnerDefinition) -> None:
        self.partners[definition.partner] = definition

    def lock(self, request: CohortLock) -> Cohort:
        key = (request.partner, request.cohort_id)
        cohort = self.cohorts.get(key) or Cohort(partner=request.partner, cohort_id=request.cohort_id)
        cohort.locked = request.locked
        self.cohorts[key] = cohort
        return cohort

    def _authenticate(self, partner: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        known = self.partners.get(partner)
        api_key = body.get("partner_api_key")
        secret = body.get("client_secret")
        # Braze's two documented 401 texts: the partner's key, then the customer's Data Import Key.
        if (
            known is None
            or not isinstance(api_key, str)
            or not hmac.compare_digest(api_key, known.partner_api_key)
        ):
            raise ApiError(401, "Invalid Partner API key")
        if not isinstance(secret, str) or not hmac.compare_digest(secret, known.data_import_key):
            raise ApiError(401, "Invalid client secret")
        return body

    @staticmethod
    def _cohort_id(body: dict[str, Any]) -> str:
        cohort_id = body.get("cohort_id")
        if not isinstance(cohort_id, str) or not cohort_id:
            raise BadRequest("'cohort_id' is required")
        return cohort_id

    def upsert(self, partner: str, body: Any) -> Cohort:
        """Create or rename a cohort; ``created_at`` (ISO 8601) is required."""
        payload = self._authenticate(partner, body)
        cohort_id = self._cohort_id(payload)
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("'name' is required")
        created_at = payload.get("created_at")
        if not isinstance(created_at, str) or parse_time(created_at) is None:
            raise BadRequest("'created_at' is required and must be an ISO 8601 date")
        key = (partner, cohort_id)
        cohort = self.cohorts.get(key)
        if cohort is not None and cohort.locked:
            raise ApiError(423, f"Cohort '{cohort_id}' is locked")
        if cohort is None:
            cohort = Cohort(partner=partner, cohort_id=cohort_id)
            self.cohorts[key] = cohort
        cohort.name = name
        cohort.created_at = cohort.created_at or format_time(parse_time(created_at) or datetime.now(UTC))
        return cohort

    def change_members(self, partner: str, body: Any, store: UserStore) -> Cohort | None:
        """Apply membership deltas. An empty ``cohort_changes`` is a connection check: it succeeds
        even for a cohort that does not exist (Segment sends one when a destination is set up)."""
        payload = self._authenticate(partner, body)
        cohort_id = self._cohort_id(payload)
        changes = payload.get("cohort_changes")
        if not isinstance(changes, list):
            raise BadRequest("'cohort_changes' must be an array")
        cohort = self.cohorts.get((partner, cohort_id))
        if not changes:
            return cohort
        if cohort is None or cohort.name is None:
            raise BadRequest(f"cohort '{cohort_id}' does not exist; create it first")
        if cohort.locked:
            raise ApiError(423, f"Cohort '{cohort_id}' is locked")
        planned: list[tuple[list[Identifier | None], bool]] = []
        total_ids = 0
        for index, change in enumerate(changes):
            identifiers, should_remove = self._change(index, change)
            total_ids += len(identifiers)
            planned.append((identifiers, should_remove))
        if total_ids > MAX_IDS_PER_REQUEST:
            raise BadRequest(f"{total_ids} ids in one request, the limit is {MAX_IDS_PER_REQUEST}")
        # Changes apply in order, so the latest add or remove of a user wins.
        for identifiers, should_remove in planned:
            for identifier in identifiers:
                profile: Profile | None = store.find(identifier) if identifier is not None else None
                if profile is None:
                    cohort.unmatched_ids += 1
                elif should_remove:
                    cohort.members.pop(profile.braze_id, None)
                else:
                    cohort.members[profile.braze_id] = None
        return cohort

    @staticmethod
    def _change(index: int, change: Any) -> tuple[list[Identifier | None], bool]:
        where = f"cohort_changes[{index}]"
        if not isinstance(change, dict):
            raise BadRequest(f"{where} must be an object")
        unknown = change.keys() - {"user_ids", "device_ids", "aliases", "should_remove"}
        if unknown:
            raise BadRequest(f"{where} has unknown fields {sorted(unknown)}")
        should_remove = change.get("should_remove", False)
        if not isinstance(should_remove, bool):
            raise BadRequest(f"{where}.should_remove must be a boolean")
        identifiers: list[Identifier | None] = []
        for user_id in _list_of(change, "user_ids", where):
            if not isinstance(user_id, str) or not user_id:
                raise BadRequest(f"{where}.user_ids must hold non-empty strings")
            identifiers.append(Identifier("external_id", user_id))
        for alias in _list_of(change, "aliases", where):
            parsed = parse_alias(alias)
            if parsed is None:
                raise BadRequest(f"{where}.aliases must hold {{'alias_name', 'alias_label'}} objects")
            identifiers.append(Identifier("user_alias", parsed))
        for device_id in _list_of(change, "device_ids", where):
            if not isinstance(device_id, str) or not device_id:
                raise BadRequest(f"{where}.device_ids must hold non-empty strings")
            # The emulator tracks no devices, so a device id never matches a profile.
            identifiers.append(None)
        if not identifiers:
            raise BadRequest(f"{where} names no users")
        return identifiers, should_remove

    def admin_view(self, store: UserStore) -> list[dict[str, Any]]:
        views = []
        for cohort in self.cohorts.values():
            members = []
            for braze_id in cohort.members:
                profile = store.by_braze_id.get(braze_id)
                if profile is not None:
                    members.append(
                        {
                            "braze_id": braze_id,
                            "external_id": profile.external_id,
                            "user_aliases": [
                                {"alias_label": label, "alias_name": name} for label, name in profile.aliases
                            ],
                        }
                    )
            views.append(
                {
                    "partner": cohort.partner,
                    "cohort_id": cohort.cohort_id,
                    "name": cohort.name,
                    "created_at": cohort.created_at,
                    "locked": cohort.locked,
                    "member_count": len(members),
                    "members": members,
                    "unmatched_ids": cohort.unmatched_ids,
                }
            )
        return views


def _list_of(change: dict[str, Any], name: str, where: str) -> list[Any]:
    value = change.get(name, [])
    if not isinstance(value, list):
        raise BadRequest(f"{where}.{name} must be an array")
    return value
