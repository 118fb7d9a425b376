"""users.track requests: the batching builder and the outcome of sending one request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

TrackKind = Literal["attributes", "events", "purchases"]
TRACK_KINDS: tuple[TrackKind, ...] = ("attributes", "events", "purchases")
_KIND_SET = frozenset(TRACK_KINDS)


@dataclass(frozen=True, slots=True)
class TrackCap:
    """How many objects one users.track request may carry.

    ``per_array``: ``limit`` attributes, ``limit`` events and ``limit`` purchases (the classic contract).
    ``total``: ``limit`` objects across the three arrays (newer contracts answer "Max Input Length
    Exceeded" otherwise).
    """

    mode: Literal["per_array", "total"] = "per_array"
    limit: int = 75

    def __post_init__(self) -> None:
        if self.mode not in ("per_array", "total"):
            raise ValueError(f"track cap mode must be 'per_array' or 'total', not {self.mode!r}")
        if not 1 <= self.limit <= 1000:
            raise ValueError(f"track cap limit must be between 1 and 1000, not {self.limit}")


@dataclass(slots=True)
class TrackRequest:
    """One users.track body plus, for every object, the caller's reference (same kind, same index)."""

    attributes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, list[object]] = field(
        default_factory=lambda: {"attributes": [], "events": [], "purchases": []}
    )

    def object_count(self) -> int:
        return len(self.attributes) + len(self.events) + len(self.purchases)

    def fill_ratio(self, cap: TrackCap) -> float:
        """How full the request is against the cap: its fullest array (per_array) or all objects (total)."""
        if cap.mode == "total":
            return self.object_count() / cap.limit
        return max(len(self.attributes), len(self.events), len(self.purchases)) / cap.limit

    def objects(self, kind: str) -> list[dict[str, Any]]:
        if kind == "attributes":
            return self.attributes
        if kind == "events":
            return self.events
        if kind == "purchases":
            return self.purchases
        raise ValueError(f"unknown users.track array {kind!r}")

    def to_body(self) -> bytes:
        """The JSON body; empty arrays are left out (Braze accepts any non-empty subset)."""
        body: dict[str, list[dict[str, Any]]] = {}
        if self.attributes:
            body["attributes"] = self.attributes
        if self.events:
            body["events"] = self.events
        if self.purchases:
            body["purchases"] = self.purchases
        return orjson.dumps(body)


class TrackRequestBuilder:
    """Packs objects into requests that are as full as the cap allows.

    ``add`` hands back the current request only when the new object does not fit into it, so every
    request except the last (from ``flush``) is full in at least one array (per_array) or in total.
    Not thread-safe: one builder belongs to one producer.
    """

    __slots__ = ("_cap", "_current", "_limit", "_total_mode")

    def __init__(self, cap: TrackCap) -> None:
        self._cap = cap
        self._limit = cap.limit
        self._total_mode = cap.mode == "total"
        self._current = TrackRequest()

    @property
    def cap(self) -> TrackCap:
        return self._cap

    def pending(self) -> int:
        """Objects held in the request being filled."""
        return self._current.object_count()

    def add(self, kind: TrackKind, obj: dict[str, Any], ref: object) -> TrackRequest | None:
        if kind not in _KIND_SET:
            raise ValueError(f"unknown users.track array {kind!r}; expected one of {', '.join(TRACK_KINDS)}")
        current = self._current
        objects = current.objects(kind)
        full = current.object_count() >= self._limit if self._total_mode else len(objects) >= self._limit
        completed: TrackRequest | None = None
        if full:
            completed = current
            current = self._current = TrackRequest()
            objects = current.objects(kind)
        objects.append(obj)
        current.refs[kind].append(ref)
        return completed

    def flush(self) -> TrackRequest | None:
        """The partly filled request, if any; the builder starts empty again."""
        current = self._current
        if not current.object_count():
            return None
        self._current = TrackRequest()
        return current


@dataclass(frozen=True, slots=True)
class ObjectError:
    """Braze's complaint about one object of a request, tied back to the caller's reference."""

    kind: str
    index: int
    ref: object
    error_type: str


TrackStatus = Literal["accepted", "partial", "permanent_failure", "retries_exhausted"]


@dataclass(slots=True)
class TrackOutcome:
    """What happened to one users.track request.

    accepted / partial: every object not named in ``errors`` was processed.
    permanent_failure: no object was processed; ``errors`` names the objects Braze named, if any.
    retries_exhausted: no object is known to have been processed (send it again later).
    """

    status: TrackStatus
    http_status: int | None
    message: str
    errors: list[ObjectError] = field(default_factory=list)
    attempts: int = 1
    queued: bool = False

    @property
    def processed(self) -> bool:
        """True when Braze took the request (some objects may still be named in ``errors``)."""
        return self.status in ("accepted", "partial")
