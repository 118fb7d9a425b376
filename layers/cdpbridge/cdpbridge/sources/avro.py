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
# fastavro reads a block's data with one read of the size its header claims; larger reads are
# made in pieces of this size, so that a corrupt claim (2^40 bytes) costs only the bytes there are.
_READ_PIECE_BYTES = 8 * 1024 * 1024


class _PiecewiseReads:
    """``stream`` with every large read made in pieces: memory follows the bytes read, not the
    size asked for (a buffered file allocates the whole size up front, and fails on 2^40)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if 0 <= size <= _READ_PIECE_BYTES:
            return self._stream.read(size)
        if size < 0:
            return self._stream.read()
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0:
            piece = self._stream.read(min(wanted, _READ_PIECE_BYTES))
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.close()


def open_block_reader(stream: ByteStream, source: str) -> tuple[Any, int]:
    """A fastavro block reader over ``stream`` and the offset of the first block (after the header)."""
    stream.seek(0)
    try:
        blocks = fastavro.block_reader(cast("IO[bytes]", _PiecewiseReads(stream)))
    except SourceError:
        raise  # the stream's own limits (a decompression bomb)
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
            except SourceError:
                raise  # the stream's own limits (a decompression bomb)
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
                # Records have no markers inside a block: the rest of it cannot be located. It is one
                # reject, whatever the count the block header claims (which may be a corrupt 2^40),
                # and the row numbers move past the claimed count, as plan_byte_ranges counts them.
                first_lost = max(index, skip)
                lost = count - first_lost
                position = RowPosition(source, row, offset, first_lost)
                message = str(exc)[:160]
                cause = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
                detail = (
                    f"{cause}; the block's records from index {first_lost} on "
                    f"({lost} of the {count} its header claims) cannot be located and are skipped"
                )
                row += lost
                cursor.row = row
                cursor.offset, cursor.block_index = next_block, 0
                yield RejectedRow(position, [RowIssue(position, None, "undecodable Avro record", detail)])
            skip = 0
