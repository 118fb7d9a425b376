"""Errors that make a whole source unreadable (as opposed to one bad row, which is a RejectedRow)."""

from __future__ import annotations


class SourceError(Exception):
    """The file cannot be read any further: bad header, broken archive, corrupt Avro, bad JSON array.

    The message always names the file, and the row and byte offset when they are known, so that a
    run report can say exactly where the file went wrong.
    """

    def __init__(
        self, source: str, reason: str, *, row: int | None = None, offset: int | None = None
    ) -> None:
        self.source = source
        self.reason = reason
        self.row = row
        self.offset = offset
        where = [source]
        if row is not None:
            where.append(f"row {row}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{', '.join(where)}: {reason}")


class SourceSpecError(ValueError):
    """A SourceSpec, ResumePoint or ByteRange that cannot describe a readable file."""
