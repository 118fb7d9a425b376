"""Where a read stands (ResumePoint) and which slice of a file one worker reads (ByteRange)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpbridge.sources.errors import SourceSpecError


def _int_field(
    data: dict[str, Any], name: str, kind: str, *, minimum: int, default: int | None = None
) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceSpecError(f"{kind}.{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Continue right after the last row yielded.

    ``row`` is the number the next row will carry. ``offset`` is where reading continues: for text
    formats the byte offset (in the decompressed stream) just after the last row yielded, for Avro
    the offset of the block holding the next record, of which ``block_index`` records were already
    yielded. ``member`` names the zip member the read stands in (None: the first, or not a zip).

    Compressed files are not seekable: resuming one decompresses and discards everything before
    ``offset`` (no parsing), which skips the ``row - 1`` rows already handled at a fraction of the
    cost of reading them again.
    """

    row: int = 1
    offset: int = 0
    block_index: int = 0
    member: str | None = None

    def __post_init__(self) -> None:
        if self.row < 1 or self.offset < 0 or self.block_index < 0:
            raise SourceSpecError(f"invalid resume point {self!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "offset": self.offset,
            "block_index": self.block_index,
            "member": self.member,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumePoint:
        if not isinstance(data, dict):
            raise SourceSpecError(f"a resume point must be an object, got {type(data).__name__}")
        member = data.get("member")
        if member is not None and not isinstance(member, str):
            raise SourceSpecError(f"ResumePoint.member must be a string or null, got {member!r}")
        return cls(
            row=_int_field(data, "row", "ResumePoint", minimum=1),
            offset=_int_field(data, "offset", "ResumePoint", minimum=0),
            block_index=_int_field(data, "block_index", "ResumePoint", minimum=0, default=0),
            member=member,
        )


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The rows that START in ``[start, end)`` of an uncompressed file (``end`` None: to the end).

    ``start`` is a row start (for Avro a block start) or 0 for the beginning of the file; the CSV
    header and the Avro schema are always read from the file start. ``first_row`` is the number the
    first row of the range carries in a sequential read, so positions match a whole-file read.
    """

    start: int
    end: int | None
    first_row: int = 1

    def __post_init__(self) -> None:
        if self.start < 0 or self.first_row < 1 or (self.end is not None and self.end < self.start):
            raise SourceSpecError(f"invalid byte range {self!r}")

    @property
    def is_whole_file(self) -> bool:
        return self.start == 0 and self.end is None

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "first_row": self.first_row}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ByteRange:
        if not isinstance(data, dict):
            raise SourceSpecError(f"a byte range must be an object, got {type(data).__name__}")
        end = data.get("end")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int)):
            raise SourceSpecError(f"ByteRange.end must be an integer or null, got {end!r}")
        return cls(
            start=_int_field(data, "start", "ByteRange", minimum=0),
            end=end,
            first_row=_int_field(data, "first_row", "ByteRange", minimum=1, default=1),
        )


@dataclass(slots=True)
class ReadCursor:
    """The live, mutable form of a ResumePoint that readers update as they yield rows."""

    row: int = 1
    offset: int = 0
    block_index: int = 0
    member: str | None = None

    def snapshot(self) -> ResumePoint:
        return ResumePoint(self.row, self.offset, self.block_index, self.member)


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """Where one reader starts and stops in its stream: from a resume point or a byte range."""

    start_offset: int = 0
    start_row: int = 1
    # Avro: records of the block at ``start_offset`` to skip.
    skip_in_block: int = 0
    # Rows starting at or after this offset belong to the next range; None reads to the end.
    end_offset: int | None = None
