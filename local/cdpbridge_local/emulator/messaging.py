"""API-triggered sends: /campaigns/trigger/send, /campaigns/trigger/schedule/create|update|delete
and /canvas/trigger/send. Rules and the dispatch log.

A request is validated whole before anything is applied; a valid one becomes one dispatch in the
log, which records who is sent what and when each recipient would receive it (``deliver_at``):
the request's time for a send, the schedule's time for a schedule (read in each recipient's time
zone with ``in_local_time`` or ``at_optimal_time``; the emulator has no engagement data, so an
optimal time is modelled as the local time).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from cdpbridge_local.emulator.errors import BadRequest
from cdpbridge_local.emulator.state import Profile, UserStore
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
# The time zone furthest ahead (UTC+14): a local time already past there is past somewhere.
_EARLIEST_OFFSET = timedelta(hours=14)
PRIORITIZATION_VALUES = frozenset(
    {"identified", "unidentified", "most_recently_updated", "least_recently_updated"}
)
_RECIPIENT_IDENTIFIERS = ("external_user_id", "user_alias", "email")


@dataclass(frozen=True, slots=True)
class TriggerKind:
    """What differs between a campaign and a Canvas trigger: the id and the properties' names."""

    source: str
    id_key: str
    properties_key: str
    top_keys: frozenset[str]

    @property
    def recipient_keys(self) -> frozenset[str]:
        return frozenset(
            {
                *_RECIPIENT_IDENTIFIERS,
                self.properties_key,
                "send_to_existing_only",
                "attributes",
                "prioritization",
            }
        )


CAMPAIGN = TriggerKind(
    "campaign",
    "campaign_id",
    "trigger_properties",
    frozenset(
        {"campaign_id", "send_id", "trigger_properties", "broadcast", "audience", "recipients", "attachments"}
    ),
)
CANVAS = TriggerKind(
    "canvas",
    "canvas_id",
    "context",
    frozenset({"canvas_id", "context", "broadcast", "audience", "recipients"}),
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
    kind: TriggerKind
    target_id: str
    send_id: str | None
    trigger_properties: dict[str, Any]
    broadcast: bool
    audience: dict[str, Any] | None
    recipients: list[Recipient] = field(default_factory=list)
    schedule: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)


def _optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise BadRequest(f"'{name}' must be an object")
    return value


def check_properties_size(properties: dict[str, Any], name: str, max_bytes: int) -> None:
    """Refuse (400) properties whose JSON is larger than ``max_bytes``."""
    if properties and len(orjson.dumps(properties)) > max_bytes:
        raise BadRequest(f"'{name}' exceeds {max_bytes} bytes")


def parse_prioritization(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(item in PRIORITIZATION_VALUES for item in raw):
        raise BadRequest(
            f"{where}.prioritization must be a non-empty array of {sorted(PRIORITIZATION_VALUES)}"
        )
    return list(raw)


def _recipient(
    index: int, raw: Any, rules: TrackRules, trigger_kind: TriggerKind, max_bytes: int
) -> Recipient:
    where = f"recipients[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = raw.keys() - trigger_kind.recipient_keys
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
        # Several profiles may share an address: Braze needs to be told which one.
        if "prioritization" not in raw:
            raise BadRequest(f"{where}: 'prioritization' is required when the recipient is named by email")
        parse_prioritization(raw["prioritization"], where)
        identifier = Identifier("email", value.lower())
    trigger_properties = _optional_object(raw, trigger_kind.properties_key) or {}
    check_properties_size(trigger_properties, f"{where}.{trigger_kind.properties_key}", max_bytes)
    send_to_existing_only = raw.get("send_to_existing_only", True)
    if not isinstance(send_to_existing_only, bool):
        raise BadRequest(f"{where}.send_to_existing_only must be a boolean")
    if send_to_existing_only is False and identifier.kind == "user_alias":
        raise BadRequest(f"{where}: send_to_existing_only false is not supported for user aliases")
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


def parse_schedule(raw: Any, now: datetime) -> dict[str, Any]:
    """``{time, in_local_time, at_optimal_time}``; a local or optimal time carries no zone and must
    not be already past in any time zone."""
    if not isinstance(raw, dict):
        raise BadRequest("'schedule' is required and must be an object")
    unknown = raw.keys() - {"time", "in_local_time", "at_optimal_time"}
    if unknown:
        raise BadRequest(f"'schedule' has unknown fields {sorted(unknown)}")
    text = raw.get("time")
    moment = parse_time(text)
    if moment is None:
        raise BadRequest("'schedule.time' is required and must be an ISO 8601 date")
    in_local_time = raw.get("in_local_time", False)
    at_optimal_time = raw.get("at_optimal_time", False)
    if not isinstance(in_local_time, bool) or not isinstance(at_optimal_time, bool):
        raise BadRequest("'schedule.in_local_time' and 'schedule.at_optimal_time' must be booleans")
    local = in_local_time or at_optimal_time
    if local:
        if not _is_naive_iso(text):
            raise BadRequest(
                "'schedule.time' must have no zone designator with in_local_time or at_optimal_time"
            )
        if in_local_time and moment - _EARLIEST_OFFSET < now:
            raise BadRequest("'schedule.time' has already passed in some time zones (in_local_time)")
    return {
        "time": format_time(moment) if not local else moment.replace(tzinfo=None).isoformat(),
        "in_local_time": in_local_time,
        "at_optimal_time": at_optimal_time,
    }


def _is_naive_iso(text: Any) -> bool:
    try:
        return isinstance(text, str) and datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return False


def parse_trigger(
    body: Any,
    targets: dict[str, Any],
    rules: TrackRules,
    *,
    kind: TriggerKind = CAMPAIGN,
    properties_max_bytes: int,
) -> TriggerRequest:
    """Validate a trigger body against the reference; raises BadRequest naming the field.

    A schedule body is checked the same way; its ``schedule`` is read by :func:`parse_schedule`.
    """
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    unknown = body.keys() - kind.top_keys - {"schedule"}
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    target_id = body.get(kind.id_key)
    if not isinstance(target_id, str) or not target_id:
        raise BadRequest(f"'{kind.id_key}' is required")
    if target_id not in targets:
        raise BadRequest(f"Invalid {kind.id_key}: no API-triggered {kind.source} '{target_id[:64]}'")
    send_id = body.get("send_id")
    if send_id is not None and (
        not isinstance(send_id, str)
        or not send_id
        or len(send_id) > SEND_ID_MAX_LENGTH
        or not send_id.isascii()
    ):
        raise BadRequest(f"'send_id' must be 1-{SEND_ID_MAX_LENGTH} ASCII characters")
    trigger_properties = _optional_object(body, kind.properties_key) or {}
    check_properties_size(trigger_properties, kind.properties_key, properties_max_bytes)
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
    recipients = [
        _recipient(index, raw, rules, kind, properties_max_bytes) for index, raw in enumerate(raw_recipients)
    ]
    return TriggerRequest(
        kind=kind,
        target_id=target_id,
        send_id=send_id,
        trigger_properties=trigger_properties,
        broadcast=broadcast,
        audience=audience,
        recipients=recipients,
        attachments=_attachments(body),
    )


def _attachments(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("attachments")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("file_name"), str)
        and isinstance(item.get("url"), str)
        and item.keys() <= {"file_name", "url"}
        for item in raw
    ):
        raise BadRequest("'attachments' must be an array of {'file_name', 'url'} objects")
    return list(raw)


def deliver_at(schedule: dict[str, Any] | None, received: datetime, profile: Profile | None) -> str:
    """When a recipient would receive the message: now, the scheduled time, or that wall-clock time
    in the recipient's time zone (UTC when the profile has none)."""
    if schedule is None:
        return format_time(received)
    if not (schedule["in_local_time"] or schedule["at_optimal_time"]):
        return str(schedule["time"])
    zone_name = profile.standard.get("time_zone") if profile is not None else None
    zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else UTC
    local = datetime.fromisoformat(schedule["time"]).replace(tzinfo=zone)
    return format_time(local)


def record_dispatch(
    request: TriggerRequest, store: UserStore, schedule: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Apply recipients' attributes and return the dispatch record of a valid request."""
    received = datetime.now(UTC)
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
                "external_id": profile.external_id,
                request.kind.properties_key: recipient.trigger_properties,
                "deliver_at": deliver_at(schedule, received, profile),
            }
        )
    dispatch: dict[str, Any] = {
        "dispatch_id": uuid.uuid4().hex,
        "kind": "schedule" if schedule is not None else "send",
        "source": request.kind.source,
        request.kind.id_key: request.target_id,
        "send_id": request.send_id,
        "broadcast": request.broadcast,
        "audience": request.audience,
        request.kind.properties_key: request.trigger_properties,
        "attachments": request.attachments,
        "recipients": delivered,
        "skipped": skipped,
        "received_at": format_time(received),
        "deliver_at": deliver_at(schedule, received, None),
        "status": "scheduled" if schedule is not None else "sent",
    }
    if schedule is not None:
        dispatch["schedule"] = schedule
        dispatch["schedule_id"] = uuid.uuid4().hex
    return dispatch


def reschedule(dispatch: dict[str, Any], schedule: dict[str, Any], store: UserStore) -> None:
    """A schedule's new time: every recipient's delivery time follows it."""
    dispatch["schedule"] = schedule
    received = datetime.now(UTC)
    dispatch["deliver_at"] = deliver_at(schedule, received, None)
    for recipient in dispatch["recipients"]:
        profile = store.by_braze_id.get(recipient["braze_id"])
        recipient["deliver_at"] = deliver_at(schedule, received, profile)
