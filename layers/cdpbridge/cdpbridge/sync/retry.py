"""Retry files: objects Braze could not take after every retry, kept for the next run to send."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from cdpbridge.records import RowPosition
from cdpbridge.sync.objects import ObjectRef


@dataclass(frozen=True, slots=True)
class RetryEntry:
    """One users.track object exactly as it was built, with what to commit once it is acknowledged."""

    scope: str
    ref: ObjectRef
    reason: str

    def to_json_line(self) -> bytes:
        ref = self.ref
        record = {
            "scope": self.scope,
            "kind": ref.kind,
            "body": ref.body,
            "position": {
                "source": ref.position.source,
                "row": ref.position.row,
                "offset": ref.position.offset,
                "block_index": ref.position.block_index,
            },
            "user_key": ref.user_key,
            "digests": None
            if ref.digests is None
            else {name: None if digest is None else digest.hex() for name, digest in ref.digests.items()},
            "ledger_id": ref.ledger_id,
            "data_points": ref.data_points,
            "attribute_count": ref.attribute_count,
            "reason": self.reason,
        }
        return orjson.dumps(record) + b"\n"

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RetryEntry:
        digests = record.get("digests")
        position = record["position"]
        ref = ObjectRef(
            position=RowPosition(
                source=str(position["source"]),
                row=int(position["row"]),
                offset=position.get("offset"),
                block_index=int(position.get("block_index", 0)),
            ),
            user_key=str(record["user_key"]),
            kind=str(record["kind"]),
            body=dict(record["body"]),
            digests=None
            if digests is None
            else {name: None if value is None else bytes.fromhex(value) for name, value in digests.items()},
            ledger_id=record.get("ledger_id"),
            data_points=int(record.get("data_points", 0)),
            attribute_count=int(record.get("attribute_count", _written_attributes(digests))),
        )
        return cls(scope=str(record["scope"]), ref=ref, reason=str(record.get("reason", "")))


def _written_attributes(digests: dict[str, Any] | None) -> int:
    """Attributes of an entry written before entries carried their count: its digests, less the
    reserved entries (record, list elements), whose names start with '$' as no attribute's can."""
    return sum(1 for name in digests or () if not name.startswith("$"))


def encode_retry_file(entries: list[RetryEntry]) -> bytes:
    return b"".join(entry.to_json_line() for entry in entries)


def decode_retry_file(
    data: bytes, source: str, on_invalid: Callable[[int, str], None] | None = None
) -> Iterator[RetryEntry]:
    """The entries of a retry file. A line that is not an entry raises ValueError, or, given
    ``on_invalid``, is handed to it (line number, kind of error) and skipped, so that one damaged
    line cannot keep the valid ones from being sent."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = RetryEntry.from_json(orjson.loads(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if on_invalid is None:
                raise ValueError(f"{source}: line {number} is not a valid retry entry: {error}") from error
            # The kind of error only: the message may quote a value from the line.
            on_invalid(number, type(error).__name__)
            continue
        yield entry
