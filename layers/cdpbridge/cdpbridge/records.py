"""Row-level types shared by sources, mappers and the sync engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RowPosition:
    """Where a row came from, precise enough for a rejects file and for resuming.

    ``row`` is 1-based and counts data rows (a CSV header is not a row). ``offset`` is the
    byte offset of the row's first byte in the (decompressed) stream for text formats, or
    the byte offset of the Avro block that holds the record. ``block_index`` is the record's
    index inside its Avro block (0 for text formats).
    """

    source: str
    row: int
    offset: int | None = None
    block_index: int = 0


@dataclass(slots=True)
class SourceRow:
    """One parsed row: column name to raw value (str for delimited text, decoded JSON/Avro values)."""

    position: RowPosition
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RowIssue:
    """Why a row (or one of its fields) was refused; ``column`` is None for whole-row problems."""

    position: RowPosition
    column: str | None
    reason: str
    # A short, PII-safe description of the offending value (never the value itself for PII columns).
    detail: str = ""


@dataclass(slots=True)
class RejectedRow:
    """A row a source could not decode; it carries the issue instead of values."""

    position: RowPosition
    issues: list[RowIssue] = field(default_factory=list)
