"""Avro object container files through fastavro, block by block, with the schema from the file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, cast

import fastavro

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError

Row = SourceRow | RejectedRow

AVRO_MAGIC = b"Obj\x01"
SYNC_SIZE = 16


def open_block_reader(stream: ByteStream, source: str) -> tuple[Any, int]:
    """A fastavro block reader over ``stream`` and the offset of the first block (after the header)."""
    stream.seek(0)
    try:
        blocks = fastavro.block_reader(cast("IO[bytes]", stream))
    except Exception as exc:  # fastavro raises ValueError, EOFError, KeyError... on a bad header
        raise SourceError(source, f"not a readable Avro file: {exc}", offset=0) from exc
    return blocks, stream.tell()


class AvroReader:
    def __init__(self, stream: ByteStream, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._source = source
        self._cursor = cursor

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        blocks, first_block = open_block_reader(self._stream, self._source)
        start = max(window.start_offset, first_block)
        skip = window.skip_in_block if start == window.start_offset else 0
        if start != first_block:
            # fastavro reads each block from wherever the file stands when it is asked for the next.
            self._stream.seek(start)
        source = self._source
        cursor = self._cursor
        row = window.start_row
        limit = window.end_offset if window.end_offset is not None else 1 << 62
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                return
            except Exception as exc:
                raise SourceError(
                    source, f"corrupt Avro block: {exc}", row=row, offset=cursor.offset
                ) from exc
            offset: int = block.offset
            if offset >= limit:
                return
            next_block = offset + block.size
            count: int = block.num_records
            index = 0
            records = iter(block)
            try:
                for record in records:
                    if index < skip:
                        index += 1
                        continue
                    if record.__class__ is dict:
                        item: Row = make_row(source, row, offset, index, record)
                    else:
                        position = RowPosition(source, row, offset, index)
                        kind = type(record).__name__
                        reason = f"record is a {kind}, not a record of fields"
                        item = RejectedRow(position, [RowIssue(position, None, reason, kind)])
                    index += 1
                    row += 1
                    cursor.row = row
                    if index == count:
                        cursor.offset = next_block
                        cursor.block_index = 0
                    else:
                        cursor.offset = offset
                        cursor.block_index = index
                    yield item
            except Exception as exc:  # a record fastavro cannot decode (e.g. a string that is not UTF-8)
                # Records have no markers inside a block: the rest of it cannot be located.
                for lost in range(max(index, skip), count):
                    position = RowPosition(source, row, offset, lost)
                    detail = (
                        f"{type(exc).__name__}: {exc}" if lost == index else "follows an undecodable record"
                    )
                    reason = "undecodable Avro record"
                    row += 1
                    cursor.row = row
                    cursor.offset, cursor.block_index = (
                        (next_block, 0) if lost + 1 == count else (offset, lost + 1)
                    )
                    yield RejectedRow(position, [RowIssue(position, None, reason, detail[:200])])
            skip = 0
