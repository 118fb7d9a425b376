"""What the sync engine asks of its state stores; DynamoDB and SQLite both honour these contracts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cdpbridge.state.digest import RECORD_DIGEST_KEY

# -- errors ------------------------------------------------------------------------------------


class StateStoreError(Exception):
    """A state store could not do what was asked; the message says which table/file and why."""


class StateStoreUnavailableError(StateStoreError):
    """The backing store kept refusing work (throttling, unprocessed items) after every retry."""


class StateItemTooLargeError(StateStoreError, ValueError):
    """A record would exceed what the backing store can hold in one item."""


class CorruptFieldStateError(StateStoreError):
    """Stored field state cannot be decoded: written by something else, or damaged."""


class RunPartsMismatchError(StateStoreError, ValueError):
    """A part of a run disagrees with what the other parts declared (part count, unknown part)."""


def redact_user_key(user_key: str) -> str:
    """A user key fit for messages and logs: the identifier type and a digest, never the value.

    User keys may hold e-mail addresses or phone numbers ("email:someone@example.com").
    """
    kind, separator, _ = user_key.partition(":")
    digest = hashlib.blake2b(user_key.encode(), digest_size=6).hexdigest()
    return f"{kind}:#{digest}" if separator else f"#{digest}"


# -- field-level dedupe state ------------------------------------------------------------------


class FieldStateSnapshot(dict[str, dict[str, bytes]]):
    """Acknowledged digests as read: user key -> {attribute: digest}; users with no state are absent.

    ``covered`` holds every user key the read asked for, found or not, so that a snapshot handed
    back to ``apply(..., known=snapshot)`` tells "no state" apart from "not read": a store may
    merge the users it covers without reading them again (DynamoDB does; SQLite reads inside its
    write transaction, which costs little there).

    A read that leaves states packed (``get_many_packed``) keeps the users it found in ``packed``
    instead: neither in the dict nor covered until ``decode`` unpacks them. Most rows of a daily
    file only need their record's entry (``record_entry``), which is read in place; decoding every
    user's attributes was a sixth of such a run's CPU.
    """

    __slots__ = ("_record_of", "_unpack", "covered", "packed")

    def __init__(self, found: Mapping[str, dict[str, bytes]] | None = None, covered: Iterable[str] = ()):
        super().__init__(found or {})
        self.covered: set[str] = set(covered)
        self.covered.update(self.keys())
        # user key -> packed state, read but not decoded (see hold_packed).
        self.packed: dict[str, bytes] = {}
        self._unpack: Callable[[str, bytes], dict[str, bytes]] | None = None
        self._record_of: Callable[[bytes], bytes | None] | None = None

    def hold_packed(
        self,
        found: Iterable[tuple[str, bytes]],
        unpack: Callable[[str, bytes], dict[str, bytes]],
        record_of: Callable[[bytes], bytes | None],
    ) -> None:
        """Keeps the states of ``found`` (user key, packed state) undecoded. ``unpack(user_key,
        packed)`` decodes one (raising CorruptFieldStateError naming the store and user);
        ``record_of(packed)`` reads the record entry in place, or None when it cannot (the state
        is then decoded to look)."""
        self._unpack = unpack
        self._record_of = record_of
        packed = self.packed
        packed.update(found)
        self.covered.difference_update(packed)

    def record_entry(self, user_key: str) -> bytes | None:
        """The user's RECORD_DIGEST_KEY entry, without decoding the rest of a packed state."""
        state = self.get(user_key)
        if state is not None:
            return state.get(RECORD_DIGEST_KEY)
        blob = self.packed.get(user_key)
        if blob is None:
            return None
        assert self._record_of is not None
        entry = self._record_of(blob)
        if entry is not None:
            return entry
        self.decode((user_key,))
        state = self.get(user_key)
        return None if state is None else state.get(RECORD_DIGEST_KEY)

    def decode(self, user_keys: Iterable[str]) -> None:
        """Unpacks the packed states of ``user_keys`` (the others stay as they are): they are then
        in the dict and covered, as a plain ``get_many`` leaves them."""
        packed = self.packed
        if not packed:
            return
        unpack = self._unpack
        assert unpack is not None
        covered = self.covered
        for user_key in user_keys:
            blob = packed.pop(user_key, None)
            if blob is None:
                continue
            state = unpack(user_key, blob)
            if state:
                self[user_key] = state
            covered.add(user_key)

    def absorb(self, other: FieldStateSnapshot) -> None:
        """Adds a later read to this one (the later read wins for users both cover). Users the later
        read left packed are no longer covered here either: they are read again before a commit."""
        for user_key in other.covered:
            state = other.get(user_key)
            if state is None:
                self.pop(user_key, None)
            else:
                self[user_key] = state
        self.covered.update(other.covered)
        if other.packed:
            stale = self.covered.intersection(other.packed)
            if stale:
                for user_key in stale:
                    self.pop(user_key, None)
                self.covered.difference_update(stale)


class FieldStateStore(Protocol):
    """What Braze last acknowledged for each (workspace, user, attribute), as value digests."""

    def get_many(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        """user_key -> {attribute: digest}; users with no state are absent (but ``covered``)."""
        ...

    def apply(
        self,
        workspace: str,
        changes: Mapping[str, Mapping[str, bytes | None]],
        known: FieldStateSnapshot | None = None,
    ) -> None:
        """Merges acknowledged changes into the stored state: per user, set digests; None forgets.

        ``known`` is an earlier ``get_many`` result (or several absorbed into one): users it covers
        need not be read again, and their entries in it are updated in place to what was written,
        so the same snapshot stays correct for later calls. Other users are read before merging.
        """
        ...

    def close(self) -> None: ...


def merge_user_state(current: Mapping[str, bytes], changes: Mapping[str, bytes | None]) -> dict[str, bytes]:
    """The state of one user after ``changes``: digests set, None entries forgotten."""
    merged = dict(current)
    if None not in changes.values():
        merged.update(changes)  # type: ignore[arg-type]  # no None among the values, as just checked
        return merged
    for attribute, digest in changes.items():
        if digest is None:
            merged.pop(attribute, None)
        else:
            merged[attribute] = digest
    return merged


def record_applied(known: FieldStateSnapshot | None, merged: Mapping[str, dict[str, bytes]]) -> None:
    """Keeps the users a caller's snapshot covers in step with what ``apply`` wrote."""
    if known is None:
        return
    for user_key, state in merged.items():
        if user_key not in known.covered:
            continue
        if state:
            known[user_key] = state
        else:
            known.pop(user_key, None)


# -- send ledger -------------------------------------------------------------------------------


class SendLedger(Protocol):
    """Events and purchases Braze acknowledged, so a resumed or repeated run never sends them twice.

    ``scope`` names what was read (e.g. "s3://bucket/key@etag"); ``ids`` name objects within it
    (e.g. "<row>:e<index>"). Ids of the form "<row>:<letters><index>" are stored compactly.
    """

    def already_sent(self, scope: str, ids: Collection[str]) -> set[str]: ...

    def mark_sent(self, scope: str, ids: Collection[str]) -> None: ...


# -- checkpoints -------------------------------------------------------------------------------


@dataclass(slots=True)
class Checkpoint:
    """Progress of one part of a run; everything in it must be JSON-serialisable.

    ``resume`` is where reading continues, ``counters`` the report counters so far, ``parts``
    whatever else the engine needs (artifact keys, invocation counts). ``part`` is filled in by
    ``load``/``list_parts``; ``done`` and ``summary`` are set by ``mark_done``.
    """

    run_id: str
    scope: str
    resume: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    updated_at: float = 0.0
    parts: dict[str, Any] = field(default_factory=dict)
    part: str = "0"
    done: bool = False
    summary: dict[str, Any] | None = None


class CheckpointStore(Protocol):
    def load(self, run_id: str, part: str = "0") -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint, part: str | None = None) -> None:
        """Stores the checkpoint under ``part`` (default: ``checkpoint.part``), replacing the last one."""
        ...

    def list_parts(self, run_id: str) -> list[Checkpoint]:
        """Every part of the run that saved a checkpoint or was marked done, in part order."""
        ...

    def mark_done(self, run_id: str, part: str, summary: dict[str, Any], *, total_parts: int) -> bool:
        """Records the part's summary; True only for the call that completed the last of ``total_parts``.

        Atomic: when parts finish concurrently exactly one call returns True. A repeated call for a
        part already done returns True again only if that part was the one that completed the run,
        so a completing invocation that crashed before merging the report is retried safely.
        """
        ...


def part_order(part: str) -> tuple[int, int, str]:
    """Sorts part ids numerically when they are numbers ("2" before "10"), else by text."""
    return (0, int(part), "") if part.isdecimal() else (1, 0, part)


def validate_run_part(run_id: str, part: str) -> None:
    if not run_id:
        raise ValueError("run_id must not be empty")
    if not part:
        raise ValueError(f"run {run_id}: part must not be empty")


def validate_total_parts(run_id: str, total_parts: int) -> None:
    if total_parts < 1:
        raise ValueError(f"run {run_id}: total_parts must be at least 1, got {total_parts}")


def validate_workspace(workspace: str) -> None:
    # The workspace and the user key share one DynamoDB key separated by "#": a "#" in the
    # workspace would make two different (workspace, user) pairs collide.
    if not workspace or "#" in workspace:
        raise ValueError(f"workspace {workspace!r} must be non-empty and must not contain '#'")
