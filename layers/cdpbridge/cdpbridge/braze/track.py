"""users.track requests: the batching builder and the outcome of sending one request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

TrackKind = Literal["attributes", "events", "purchases"]
TRACK_KINDS: tuple[TrackKind, ...] = ("attributes", "events", "purchases")
_KIND_SET = frozenset(TRACK_KINDS)


# How Braze words a per-object error about a user that does not exist (an update-only object, or a
# braze_id that matches no one); the emulator uses the same words.
_MISSING_USER_PHRASES: tuple[str, ...] = ("user not found", "does not match any user", "user does not exist")


def names_missing_user(error_type: str) -> bool:
    """Whether a per-object users.track error says the user is not in Braze (nothing was created)."""
    folded = error_type.casefold()
    return any(phrase in folded for phrase in _MISSING_USER_PHRASES)


@dataclass(frozen=True, slots=True)
class TrackCap:
    """How many objects one users.track request may carry.

    ``total`` (the default): ``limit`` objects across the three arrays, as current workspaces allow
    (75; some contracts 50); more is answered with 400 "Max Input Length Exceeded".
    ``per_array``: ``limit`` attributes, ``limit`` events and ``limit`` purchases (legacy limits).
    """

    mode: Literal["per_array", "total"] = "total"
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

    def cap_units(self, mode: str) -> int:
        """Objects counted against a cap of ``mode``: the fullest array or all of them."""
        if mode == "total":
            return self.object_count()
        return max(len(self.attributes), len(self.events), len(self.purchases))

    def split(self, limit: int, mode: str) -> list[TrackRequest]:
        """Requests of at most ``limit`` cap units each, objects and refs in their original order.

        ``total``: the objects in Braze's processing order (attributes, events, purchases), cut
        every ``limit``; ``per_array``: each array cut every ``limit``, the n-th pieces together.
        """
        pieces: list[TrackRequest] = []
        if mode == "total":
            current = TrackRequest()
            for kind in TRACK_KINDS:
                for obj, ref in zip(self.objects(kind), self.refs[kind], strict=True):
                    if current.object_count() >= limit:
                        pieces.append(current)
                        current = TrackRequest()
                    current.objects(kind).append(obj)
                    current.refs[kind].append(ref)
            if current.object_count():
                pieces.append(current)
            return pieces
        count = max(1, -(-self.cap_units(mode) // limit))
        pieces = [TrackRequest() for _ in range(count)]
        for kind in TRACK_KINDS:
            objects, refs = self.objects(kind), self.refs[kind]
            for number, piece in enumerate(pieces):
                piece.objects(kind).extend(objects[number * limit : (number + 1) * limit])
                piece.refs[kind].extend(refs[number * limit : (number + 1) * limit])
        return [piece for piece in pieces if piece.object_count()]

    def halves(self) -> list[TrackRequest]:
        """The request in two, each with about half of every array (one piece for one object)."""
        if self.object_count() < 2:
            return [self]
        first, second = TrackRequest(), TrackRequest()
        for kind in TRACK_KINDS:
            objects, refs = self.objects(kind), self.refs[kind]
            middle = (len(objects) + 1) // 2
            first.objects(kind).extend(objects[:middle])
            first.refs[kind].extend(refs[:middle])
            second.objects(kind).extend(objects[middle:])
            second.refs[kind].extend(refs[middle:])
        return [piece for piece in (first, second) if piece.object_count()]

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


class AdaptiveTrackCap:
    """The cap a run sends with: starts at the configured one and is halved, for the rest of the
    run, each time Braze answers "Max Input Length Exceeded" (a workspace on stricter limits than
    configured). Thread-safe: the requests of a run are sent from several threads.
    """

    __slots__ = ("_limit", "_lock", "configured", "lowered")

    def __init__(self, configured: TrackCap) -> None:
        self.configured = configured
        self._limit = configured.limit
        self._lock = threading.Lock()
        # How many times the cap was lowered.
        self.lowered = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def mode(self) -> str:
        return self.configured.mode

    @property
    def lowered_to(self) -> int | None:
        """The cap the run ended with when it had to lower it, else None."""
        return self._limit if self.lowered else None

    def lower(self, refused_units: int) -> int:
        """Braze refused a request of ``refused_units``: the cap becomes half of it (at least one).

        Requests refused concurrently at one cap lower it once: a refused request larger than the
        current cap was sent before it was lowered and changes nothing.
        """
        with self._lock:
            if refused_units > self._limit:
                # Sent before the cap was lowered: what it says is known already.
                return self._limit
            # Half, rounded up: the refused request then goes out in exactly two pieces.
            target = max(1, -(-refused_units // 2))
            if target < self._limit:
                self._limit = target
                self.lowered += 1
            return self._limit


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

    accepted / partial: every object not named in ``errors`` or ``unsent`` was processed.
    permanent_failure: no object was processed; ``errors`` names the objects Braze named, if any.
    retries_exhausted: no object is known to have been processed (send it again later).
    """

    status: TrackStatus
    http_status: int | None
    message: str
    errors: list[ObjectError] = field(default_factory=list)
    attempts: int = 1
    queued: bool = False
    # Refs of objects not known to be processed though others of the request were (a request
    # split after "Max Input Length Exceeded" whose later piece could not be sent): send again.
    unsent: list[object] = field(default_factory=list)
    # Requests sent for this one (more than one when it was split).
    requests: int = 1
    # How long Braze took to answer (the final attempt; the slowest piece of a split request), and
    # how long the attempts were held by the client's rate limiter before being sent.
    answer_s: float | None = None
    held_s: float = 0.0

    @property
    def processed(self) -> bool:
        """True when Braze took the request (some objects may still be named in ``errors``)."""
        return self.status in ("accepted", "partial")
