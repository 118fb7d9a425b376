"""Segment calls as the S3 and Webhooks destinations deliver them (the Segment Spec's common fields).

Only what the integration reads is parsed: type, ids, messageId, timestamp, traits, properties,
event and ``context.personas`` (Engage's note of which computed trait or audience a call is for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

CALL_TYPES: Final = frozenset({"identify", "track", "page", "screen", "group", "alias"})
AUDIENCE_CLASS: Final = "audience"


class CallError(ValueError):
    """A record that is not a usable Segment call; ``field`` names the key at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Personas:
    """``context.personas``: which Engage computation produced the call."""

    computation_class: str  # "audience", "trait", "computed_trait", "sql_trait", ...
    computation_key: str
    computation_id: str | None = None

    @property
    def is_audience(self) -> bool:
        return self.computation_class == AUDIENCE_CLASS


@dataclass(frozen=True, slots=True)
class SegmentCall:
    type: str
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    # The call's own time: when it happened at the source, in milliseconds since the epoch.
    timestamp_ms: int
    timestamp: str  # the same as ISO 8601 UTC, for Braze's event "time"
    traits: dict[str, Any]
    properties: dict[str, Any]
    event: str | None
    name: str | None
    group_id: str | None
    previous_id: str | None
    personas: Personas | None


def parse_call(record: dict[str, Any]) -> SegmentCall:
    """A call from one decoded record; CallError naming the field when it cannot be used."""
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in CALL_TYPES:
        raise CallError("type", f"not a Segment call type ({_shown(kind)})")
    timestamp_ms, timestamp = _call_time(record)
    context = record.get("context")
    personas = _personas(context.get("personas") if isinstance(context, dict) else None)
    event = record.get("event")
    if kind == "track" and (not isinstance(event, str) or not event.strip()):
        raise CallError("event", "a track call needs an event name")
    return SegmentCall(
        type=kind,
        message_id=_optional_id(record, "messageId"),
        user_id=_optional_id(record, "userId"),
        anonymous_id=_optional_id(record, "anonymousId"),
        timestamp_ms=timestamp_ms,
        timestamp=timestamp,
        traits=_object(record, "traits"),
        properties=_object(record, "properties"),
        event=event if isinstance(event, str) else None,
        name=record.get("name") if isinstance(record.get("name"), str) else None,
        group_id=_optional_id(record, "groupId"),
        previous_id=_optional_id(record, "previousId"),
        personas=personas,
    )


def parse_time(text: str) -> datetime:
    """ISO 8601 as Segment writes it ("2026-12-01T10:00:00.000Z"); naive times are UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _call_time(record: dict[str, Any]) -> tuple[int, str]:
    # The spec's timestamp is when the call happened; receivedAt stands in for a call without one.
    for key in ("timestamp", "receivedAt"):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise CallError(key, f"not an ISO 8601 time ({_shown(value)})")
        try:
            moment = parse_time(value).astimezone(UTC)
        except ValueError:
            raise CallError(key, f"not an ISO 8601 time ({_shown(value)})") from None
        return int(moment.timestamp() * 1000), moment.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
    raise CallError("timestamp", "missing: the call's time decides which value is the latest")


def _personas(value: Any) -> Personas | None:
    if not isinstance(value, dict):
        return None
    computation_class = value.get("computation_class")
    computation_key = value.get("computation_key")
    if not isinstance(computation_class, str) or not isinstance(computation_key, str):
        return None
    computation_id = value.get("computation_id")
    return Personas(
        computation_class, computation_key, computation_id if isinstance(computation_id, str) else None
    )


def _optional_id(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CallError(key, f"not a string ({_shown(value)})")
    text = str(value).strip()
    return text or None


def _object(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CallError(key, f"not an object ({_shown(value)})")
    return value


def _shown(value: Any) -> str:
    """A type name, never the value: calls carry personal data."""
    return "missing" if value is None else type(value).__name__


__all__ = ["CALL_TYPES", "CallError", "Personas", "SegmentCall", "parse_call", "parse_time"]
