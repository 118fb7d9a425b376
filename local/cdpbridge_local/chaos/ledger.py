"""What Braze should hold after a chaos run, and the comparison with what the emulator holds.

Attributes that are set, cleared or added to are idempotent: resending them changes nothing, so the
expected value is exact whatever happened. Events, purchases and increments are not: each is
expected once per good input row, plus once more for every request Braze applied whose answer was
lost (the emulator keeps those requests' bodies), minus the objects held in a retry file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# An event or purchase as counted: the user, then a canonical text of what identifies it.
ObjectKey = tuple[str, str]


def event_key(external_id: str, name: str, properties: Mapping[str, Any]) -> ObjectKey:
    return external_id, orjson.dumps(
        {"name": name, "properties": properties}, option=orjson.OPT_SORT_KEYS
    ).decode()


def purchase_key(external_id: str, product_id: str, properties: Mapping[str, Any]) -> ObjectKey:
    return external_id, orjson.dumps(
        {"product_id": product_id, "properties": properties}, option=orjson.OPT_SORT_KEYS
    ).decode()


@dataclass(slots=True)
class ExpectedState:
    """Braze's expected profiles: exact attributes per user (arrays added to compared as sets),
    increments per (user, attribute), and the multiset of events and purchases."""

    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    set_like: set[str] = field(default_factory=set)  # attribute names Braze treats as sets
    increments: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: Counter[ObjectKey] = field(default_factory=Counter)
    purchases: Counter[ObjectKey] = field(default_factory=Counter)

    def merge(self, other: ExpectedState) -> None:
        overlap = set(self.attributes) & set(other.attributes)
        if overlap:
            raise ValueError(f"two scenarios write the same users: {sorted(overlap)[:5]}")
        self.attributes.update(other.attributes)
        self.set_like |= other.set_like
        self.increments.update(other.increments)
        self.events.update(other.events)
        self.purchases.update(other.purchases)


@dataclass(slots=True)
class TrackObjects:
    """The non-idempotent writes of some users.track objects (from request bodies or retry files)."""

    increments: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: Counter[ObjectKey] = field(default_factory=Counter)
    purchases: Counter[ObjectKey] = field(default_factory=Counter)

    def add_body(self, body: Mapping[str, Any]) -> None:
        for attributes in body.get("attributes") or ():
            self.add_object("attributes", attributes)
        for event in body.get("events") or ():
            self.add_object("events", event)
        for purchase in body.get("purchases") or ():
            self.add_object("purchases", purchase)

    def add_object(self, kind: str, item: Mapping[str, Any]) -> None:
        external_id = str(item.get("external_id"))
        if kind == "attributes":
            for name, value in item.items():
                if isinstance(value, dict) and isinstance(value.get("inc"), int):
                    self.increments[(external_id, name)] += value["inc"]
        elif kind == "events":
            self.events[event_key(external_id, str(item["name"]), item.get("properties") or {})] += 1
        elif kind == "purchases":
            key = purchase_key(external_id, str(item["product_id"]), item.get("properties") or {})
            self.purchases[key] += int(item.get("quantity", 1))

    def total(self) -> int:
        return sum(self.events.values()) + sum(self.purchases.values()) + len(+self.increments)


def unanswered_objects(unanswered: Iterable[Mapping[str, Any]]) -> TrackObjects:
    """The writes of the users.track requests the emulator applied but could not answer."""
    objects = TrackObjects()
    for request in unanswered:
        body = request.get("body")
        if request.get("endpoint") == "users.track" and isinstance(body, dict):
            objects.add_body(body)
    return objects


def retry_file_objects(lines: Iterable[bytes]) -> TrackObjects:
    """The writes held in retry files (JSON lines of cdpbridge.sync.retry.RetryEntry)."""
    objects = TrackObjects()
    for line in lines:
        if line.strip():
            entry = orjson.loads(line)
            objects.add_object(str(entry["kind"]), entry["body"])
    return objects


@dataclass(frozen=True, slots=True)
class Mismatch:
    external_id: str
    what: str
    expected: Any
    held: Any

    def __str__(self) -> str:
        return f"{self.external_id}: {self.what}: expected {self.expected!r}, Braze holds {self.held!r}"


def _held_counts(profiles: Mapping[str, Mapping[str, Any]]) -> tuple[Counter[ObjectKey], Counter[ObjectKey]]:
    events: Counter[ObjectKey] = Counter()
    purchases: Counter[ObjectKey] = Counter()
    for external_id, profile in profiles.items():
        for event in profile.get("events") or ():
            events[event_key(external_id, event["name"], event.get("properties") or {})] += 1
        for purchase in profile.get("purchases") or ():
            purchases[
                purchase_key(external_id, purchase["product_id"], purchase.get("properties") or {})
            ] += 1
    return events, purchases


def _attribute_mismatches(
    expected: ExpectedState,
    profiles: Mapping[str, Mapping[str, Any]],
    extra: TrackObjects,
    held_back: TrackObjects,
) -> list[Mismatch]:
    mismatches: list[Mismatch] = []
    for external_id in sorted(set(expected.attributes) | set(profiles)):
        profile = profiles.get(external_id)
        wanted = expected.attributes.get(external_id)
        if profile is None or wanted is None:
            mismatches.append(Mismatch(external_id, "user", wanted is not None, profile is not None))
            continue
        wanted = dict(wanted)
        for (user, name), amount in expected.increments.items():
            if user == external_id:
                total = amount + extra.increments[(user, name)] - held_back.increments[(user, name)]
                wanted[name] = total
        held = dict(profile.get("custom_attributes") or {}) | dict(profile.get("standard_attributes") or {})
        for name in sorted(set(wanted) | set(held)):
            want, have = wanted.get(name), held.get(name)
            if name in expected.set_like and isinstance(want, list) and isinstance(have, list):
                want, have = sorted(want), sorted(have)
            if want != have:
                mismatches.append(Mismatch(external_id, f"attribute {name}", want, have))
    return mismatches


def compare(
    expected: ExpectedState,
    profiles: Mapping[str, Mapping[str, Any]],
    window: TrackObjects,
    held_back: TrackObjects,
) -> list[Mismatch]:
    """Every difference between Braze's profiles and the expected state, once the writes of the
    lost-answer window are added (each such request is applied twice) and retry files' removed."""
    mismatches = _attribute_mismatches(expected, profiles, window, held_back)
    held_events, held_purchases = _held_counts(profiles)
    for kind, wanted, extra, back, held in (
        ("event", expected.events, window.events, held_back.events, held_events),
        ("purchase", expected.purchases, window.purchases, held_back.purchases, held_purchases),
    ):
        for key in sorted(set(wanted) | set(held)):
            want = wanted[key] + extra[key] - back[key]
            if held[key] != want:
                mismatches.append(Mismatch(key[0], f"{kind} {key[1]}", want, held[key]))
    return mismatches
