"""POST /users/track as a whole request: caps, processing order, partial errors and the response."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cdpbridge_local.emulator.config import TrackCap
from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import (
    AttributeUpdate,
    Refusal,
    TrackRules,
    validate_attributes,
    validate_event,
    validate_purchase,
)

TRACK_ARRAYS = ("attributes", "events", "purchases")
NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
MAX_INPUT_LENGTH_EXCEEDED = "Max Input Length Exceeded"


@dataclass(slots=True)
class TrackOutcome:
    status: int
    body: dict[str, Any]
    # The per-object errors, also counted by reason in the emulator's stats.
    errors: list[dict[str, Any]] = field(default_factory=list)


def _bad_request(message: str, errors: list[dict[str, Any]] | None = None) -> TrackOutcome:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return TrackOutcome(400, body, errors or [])


def cap_refusal(lengths: dict[str, int], cap: TrackCap) -> TrackOutcome | None:
    if cap.mode == "per_array":
        over = [
            {"type": f"{name}: {count} objects, the limit is {cap.limit} per array", "input_array": name}
            for name, count in lengths.items()
            if count > cap.limit
        ]
        return _bad_request(MAX_INPUT_LENGTH_EXCEEDED, over) if over else None
    total = sum(lengths.values())
    if total > cap.limit:
        reason = f"{total} objects in attributes, events and purchases together, the limit is {cap.limit}"
        return _bad_request(MAX_INPUT_LENGTH_EXCEEDED, [{"type": reason}])
    return None


def process_track(
    payload: Any, store: UserStore, cap: TrackCap, rules: TrackRules, now: datetime
) -> TrackOutcome:
    """Validate and apply one users.track body; attributes first, then events, then purchases."""
    if type(payload) is not dict:
        return _bad_request("The request body must be a JSON object")
    arrays: dict[str, list[Any]] = {}
    for name in TRACK_ARRAYS:
        value = payload.get(name)
        if value is None:
            value = []
        elif type(value) is not list:
            return _bad_request(f"'{name}' must be an array")
        arrays[name] = value
    lengths = {name: len(value) for name, value in arrays.items()}
    if not any(lengths.values()):
        return _bad_request(NOTHING_VALID)
    over_cap = cap_refusal(lengths, cap)
    if over_cap is not None:
        return over_cap

    errors: list[dict[str, Any]] = []
    processed = dict.fromkeys(TRACK_ARRAYS, 0)

    # Validated before any is applied: an invalid $time or a null in one nested object drops the
    # nested updates of every object of the request.
    updates = [validate_attributes(obj, rules) for obj in arrays["attributes"]]
    if any(type(update) is AttributeUpdate and update.drops_nested for update in updates):
        store.nested_updates_dropped += 1
        for update in updates:
            if type(update) is AttributeUpdate:
                update.without_nested()
    for index, update in enumerate(updates):
        refusal = update if isinstance(update, Refusal) else store.apply_attributes(update)
        if refusal is None:
            processed["attributes"] += 1
        else:
            errors.append({"type": refusal.reason, "input_array": "attributes", "index": index})

    for index, obj in enumerate(arrays["events"]):
        event = validate_event(obj, rules, now)
        refusal = event if isinstance(event, Refusal) else store.apply_event(event)
        if refusal is None:
            processed["events"] += 1
        else:
            errors.append({"type": refusal.reason, "input_array": "events", "index": index})

    for index, obj in enumerate(arrays["purchases"]):
        purchase = validate_purchase(obj, rules, now)
        refusal = purchase if isinstance(purchase, Refusal) else store.apply_purchase(purchase)
        if refusal is None:
            processed["purchases"] += 1
        else:
            errors.append({"type": refusal.reason, "input_array": "purchases", "index": index})

    if errors and not any(processed.values()):
        return _bad_request(NOTHING_VALID, errors)
    body: dict[str, Any] = {"message": "success"}
    # A count only for the arrays the request carried.
    for name in TRACK_ARRAYS:
        if name in payload:
            body[f"{name}_processed"] = processed[name]
    if errors:
        body["errors"] = errors
    return TrackOutcome(201, body, errors)
