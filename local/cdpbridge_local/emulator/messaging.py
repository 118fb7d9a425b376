"""POST /campaigns/trigger/send and /campaigns/trigger/schedule/create: rules and dispatch records.

A request is validated whole before anything is applied; a valid one becomes one dispatch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cdpbridge_local.emulator.errors import BadRequest
from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import (
    AttributeUpdate,
    Identifier,
    Refusal,
    TrackRules,
    format_time,
    is_email,
    parse_alias,
    parse_time,
    validate_attributes,
)

MAX_RECIPIENTS = 50
SEND_ID_MAX_LENGTH = 64
_RECIPIENT_IDENTIFIERS = ("external_user_id", "user_alias", "email")
_RECIPIENT_KEYS = frozenset(
    {*_RECIPIENT_IDENTIFIERS, "trigger_properties", "send_to_existing_only", "attributes", "prioritization"}
)
_TRIGGER_KEYS = frozenset(
    {"campaign_id", "send_id", "trigger_properties", "broadcast", "audience", "recipients", "schedule"}
)


@dataclass(slots=True)
class Recipient:
    identifier: Identifier
    # The recipient as the request named it, for the dispatch record.
    reference: dict[str, Any]
    trigger_properties: dict[str, Any]
    send_to_existing_only: bool
    attributes: AttributeUpdate | None


@dataclass(slots=True)
class TriggerRequest:
    campaign_id: str
    send_id: str | None
    trigger_properties: dict[str, Any]
    broadcast: bool
    audience: dict[str, Any] | None
    recipients: list[Recipient] = field(default_factory=list)
    schedule: dict[str, Any] | None = None


def _optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise BadRequest(f"'{name}' must be an object")
    return value


def _recipient(index: int, raw: Any, rules: TrackRules) -> Recipient:
    where = f"recipients[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = raw.keys() - _RECIPIENT_KEYS
    if unknown:
        raise BadRequest(f"{where} has unknown fields {sorted(unknown)}")
    named = [key for key in _RECIPIENT_IDENTIFIERS if key in raw]
    if len(named) != 1:
        raise BadRequest(f"{where} needs exactly one of 'external_user_id', 'user_alias' or 'email'")
    kind = named[0]
    value = raw[kind]
    identifier: Identifier
    if kind == "external_user_id":
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{where}.external_user_id must be a non-empty string")
        identifier = Identifier("external_id", value)
    elif kind == "user_alias":
        alias = parse_alias(value)
        if alias is None:
            raise BadRequest(f"{where}.user_alias needs non-empty 'alias_name' and 'alias_label'")
        identifier = Identifier("user_alias", alias)
    else:
        if not is_email(value):
            raise BadRequest(f"{where}.email is not a valid email address")
        identifier = Identifier("email", value.lower())
    trigger_properties = _optional_object(raw, "trigger_properties") or {}
    send_to_existing_only = raw.get("send_to_existing_only", True)
    if not isinstance(send_to_existing_only, bool):
        raise BadRequest(f"{where}.send_to_existing_only must be a boolean")
    raw_attributes = _optional_object(raw, "attributes")
    if send_to_existing_only is False and raw_attributes is None:
        raise BadRequest(f"{where}: 'attributes' are required when send_to_existing_only is false")
    attributes: AttributeUpdate | None = None
    if raw_attributes is not None:
        attributes_object = {**raw_attributes, **_track_identifier(identifier)}
        # The recipient decides whether a profile may be created, not the attributes object.
        attributes_object["_update_existing_only"] = send_to_existing_only
        validated = validate_attributes(attributes_object, rules)
        if isinstance(validated, Refusal):
            raise BadRequest(f"{where}.attributes: {validated.reason}")
        attributes = validated
    return Recipient(
        identifier=identifier,
        reference={kind: value},
        trigger_properties=trigger_properties,
        send_to_existing_only=send_to_existing_only,
        attributes=attributes,
    )


def _track_identifier(identifier: Identifier) -> dict[str, Any]:
    if identifier.kind == "user_alias":
        label, name = identifier.value
        return {"user_alias": {"alias_label": label, "alias_name": name}}
    return {identifier.kind: identifier.value}


def _schedule(body: dict[str, Any]) -> dict[str, Any]:
    schedule = body.get("schedule")
    if not isinstance(schedule, dict):
        raise BadRequest("'schedule' is required and must be an object")
    unknown = schedule.keys() - {"time", "in_local_time", "at_optimal_time"}
    if unknown:
        raise BadRequest(f"'schedule' has unknown fields {sorted(unknown)}")
    moment = parse_time(schedule.get("time"))
    if moment is None:
        raise BadRequest("'schedule.time' is required and must be an ISO 8601 date")
    in_local_time = schedule.get("in_local_time", False)
    at_optimal_time = schedule.get("at_optimal_time", False)
    if not isinstance(in_local_time, bool) or not isinstance(at_optimal_time, bool):
        raise BadRequest("'schedule.in_local_time' and 'schedule.at_optimal_time' must be booleans")
    return {"time": format_time(moment), "in_local_time": in_local_time, "at_optimal_time": at_optimal_time}


def parse_trigger(body: Any, campaigns: dict[str, Any], rules: TrackRules, scheduled: bool) -> TriggerRequest:
    """Validate a trigger body against the reference; raises BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    allowed = _TRIGGER_KEYS if scheduled else _TRIGGER_KEYS - {"schedule"}
    unknown = body.keys() - allowed
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    campaign_id = body.get("campaign_id")
    if not isinstance(campaign_id, str) or not campaign_id:
        raise BadRequest("'campaign_id' is required")
    if campaign_id not in campaigns:
        raise BadRequest(f"Invalid campaign_id: no API-triggered campaign '{campaign_id[:64]}'")
    send_id = body.get("send_id")
    if send_id is not None and (
        not isinstance(send_id, str)
        or not send_id
        or len(send_id) > SEND_ID_MAX_LENGTH
        or not send_id.isascii()
    ):
        raise BadRequest(f"'send_id' must be 1-{SEND_ID_MAX_LENGTH} ASCII characters")
    trigger_properties = _optional_object(body, "trigger_properties") or {}
    audience = _optional_object(body, "audience")
    broadcast = body.get("broadcast", False)
    if not isinstance(broadcast, bool):
        raise BadRequest("'broadcast' must be a boolean")
    raw_recipients = body.get("recipients")
    if raw_recipients is not None and not isinstance(raw_recipients, list):
        raise BadRequest("'recipients' must be an array")
    raw_recipients = raw_recipients or []
    if len(raw_recipients) > MAX_RECIPIENTS:
        raise BadRequest(f"'recipients' holds {len(raw_recipients)} entries, the limit is {MAX_RECIPIENTS}")
    if raw_recipients and broadcast:
        raise BadRequest("'broadcast' cannot be true when 'recipients' are given")
    if not raw_recipients and audience is None and not broadcast:
        raise BadRequest("'broadcast' must be true to send to the whole segment without 'recipients'")
    recipients = [_recipient(index, raw, rules) for index, raw in enumerate(raw_recipients)]
    return TriggerRequest(
        campaign_id=campaign_id,
        send_id=send_id,
        trigger_properties=trigger_properties,
        broadcast=broadcast,
        audience=audience,
        recipients=recipients,
        schedule=_schedule(body) if scheduled else None,
    )


def record_dispatch(request: TriggerRequest, store: UserStore) -> dict[str, Any]:
    """Apply recipients' attributes and return the dispatch record of a valid request."""
    delivered: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for recipient in request.recipients:
        profile = store.find(recipient.identifier)
        if profile is None and recipient.send_to_existing_only:
            skipped.append({**recipient.reference, "reason": "user not found (send_to_existing_only)"})
            continue
        if recipient.attributes is not None:
            refusal = store.apply_attributes(recipient.attributes)
            if refusal is not None:
                skipped.append({**recipient.reference, "reason": refusal.reason})
                continue
            profile = store.find(recipient.identifier)
        elif profile is None:
            profile = store.create(recipient.identifier)
        assert profile is not None
        delivered.append(
            {
                **recipient.reference,
                "braze_id": profile.braze_id,
                "trigger_properties": recipient.trigger_properties,
            }
        )
    dispatch: dict[str, Any] = {
        "dispatch_id": uuid.uuid4().hex,
        "kind": "schedule" if request.schedule is not None else "send",
        "campaign_id": request.campaign_id,
        "send_id": request.send_id,
        "broadcast": request.broadcast,
        "audience": request.audience,
        "trigger_properties": request.trigger_properties,
        "recipients": delivered,
        "skipped": skipped,
        "received_at": format_time(datetime.now(UTC)),
    }
    if request.schedule is not None:
        dispatch["schedule"] = request.schedule
        dispatch["schedule_id"] = uuid.uuid4().hex
    return dispatch
