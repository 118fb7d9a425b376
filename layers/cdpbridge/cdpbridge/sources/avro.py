"""Avro object container files through fastavro, block by block, with the schema from the file."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Buffer, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.spec import SourceSpec

Row = SourceRow | RejectedRow

AVRO_MAGIC = b"Obj\x01"
SYNC_SIZE = 16
# fastavro reads a block's data with one read of the size its header claims; larger reads are
# made in pieces of this size, so that a corrupt claim (2^40 bytes) costs only the bytes there are.
_READ_PIECE_BYTES = 8 * 1024 * 1024
# Raw deflate never expands data more than about 1,032 times: a deflate block smaller than the
# limit over this cannot decompress past the limit, and is not decompressed to check.
_DEFLATE_MOST_RATIO = 1032
# A compressed block is checked by decompressing this much at a time, and dropping it.
_CHECK_PIECE_BYTES = 1024 * 1024
# Enough bytes for a block header: two longs of at most 10 bytes each.
_BLOCK_HEADER_BYTES = 20


def _zigzag_long(data: bytes, position: int) -> tuple[int, int] | None:
    """An Avro long at ``data[position:]`` and the position after it; None if ``data`` ends first."""
    shift = 0
    accumulated = 0
    while position < len(data) and shift <= 63:
        byte = data[position]
        position += 1
        accumulated |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (accumulated >> 1) ^ -(accumulated & 1), position
        shift += 7
    return None


def _inflates_past(codec: str, data: Buffer, limit: int) -> bool:
    """True when a block's ``data`` decompresses to more than ``limit`` bytes, found out piece by
    piece, never holding more than one piece of the output."""
    produced = 0
    if codec == "deflate":
        inflater = zlib.decompressobj(-15)
        pending = data
        while not inflater.eof:
            produced += len(piece := inflater.decompress(pending, _CHECK_PIECE_BYTES))
            if produced > limit:
                return True
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                return False
        return False
    if codec not in ("bzip2", "xz"):
        return False
    unpacker = bz2.BZ2Decompressor() if codec == "bzip2" else lzma.LZMADecompressor()
    pending = data
    while not unpacker.eof:
        produced += len(piece := unpacker.decompress(pending, _CHECK_PIECE_BYTES))
        if produced > limit:
            return True
        pending = b""
        if unpacker.needs_input and not piece:
            return False
    return False


class _AvroStream:
    """The file as fastavro reads it: large reads made in pieces (memory follows the bytes read,
    not the size asked for: a buffered file allocates the whole size up front, and fails on 2^40),
    and a look at each compressed block before fastavro decompresses it whole in memory."""

    __slots__ = ("_held", "_stream")

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        # Bytes read ahead by check_next_block, given to the next reads first.
        self._held = b""

    def read(self, size: int = -1, /) -> bytes:
        held = self._held
        if held:
            if 0 <= size <= len(held):
                self._held = held[size:]
                return held[:size]
            self._held = b""
            return held + self._read(size - len(held) if size >= 0 else -1)
        return self._read(size)

    def _read(self, size: int) -> bytes:
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
        if whence == 1:
            offset -= len(self._held)
        self._held = b""
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell() - len(self._held)

    def close(self) -> None:
        self._stream.close()

    def check_next_block(self, codec: str, limit: int) -> _RefusedBlock | None:
        """The block about to be read when it holds more than ``limit`` bytes once decompressed
        (the stream is then past it); None otherwise, or when its header cannot be read (fastavro
        then says what is wrong). What is read of a block that is not refused is read again by
        fastavro."""
        start = self.tell()
        head = self.read(_BLOCK_HEADER_BYTES)
        count = _zigzag_long(head, 0)
        size = _zigzag_long(head, count[1]) if count is not None else None
        if count is None or size is None or count[0] < 0 or size[0] <= 0:
            self._held = head + self._held
            return None
        (records, _), (data_size, data_at) = count, size
        if data_size > _most_stored_bytes(codec, limit):
            # It cannot fit: stepped over unread, a piece at a time.
            self._held = head[data_at:] + self._held
            wanted = data_size + SYNC_SIZE
            while wanted > 0 and (piece := self.read(min(wanted, _READ_PIECE_BYTES))):
                wanted -= len(piece)
            return _RefusedBlock(records, start, data_size, truncated=wanted > 0)
        if codec == "null" or (codec == "deflate" and data_size <= limit // _DEFLATE_MOST_RATIO):
            self._held = head + self._held
            return None
        missing = data_at + data_size - len(head)
        consumed = head + self.read(missing) if missing > 0 else head
        data = memoryview(consumed)[data_at : data_at + data_size]
        try:
            too_large = len(data) == data_size and _inflates_past(codec, data, limit)
        except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
            too_large = False  # corrupt: fastavro says so when it reads the block
        finally:
            data.release()
        self._held = consumed + self._held
        if not too_large:
            return None
        self.seek(start + data_at + data_size + SYNC_SIZE)
        return _RefusedBlock(records, start, data_size, truncated=False)


@dataclass(frozen=True, slots=True)
class _RefusedBlock:
    """A block past the record limit: the records it claims, where it starts, its data's size, and
    whether the file ended inside it."""

    records: int
    offset: int
    data_size: int
    truncated: bool


def _most_stored_bytes(codec: str, limit: int) -> int:
    """The largest block data that may hold at most ``limit`` bytes once decompressed: the limit
    itself uncompressed; a little more compressed (incompressible data grows by a fraction of a
    percent in deflate, bzip2 and xz)."""
    return limit if codec == "null" else limit + limit // 50 + 4096


def open_block_reader(stream: ByteStream, source: str) -> tuple[Any, int]:
    """A fastavro block reader over ``stream`` and the offset of the first block (after the header)."""
    blocks, first_block, _ = _open_blocks(stream, source)
    return blocks, first_block


def _open_blocks(stream: ByteStream, source: str) -> tuple[Any, int, _AvroStream]:
    # Imported here: every mapping import reaches this module (through source planning), and most
    # functions never read an Avro file, so their cold start does not pay for fastavro.
    import fastavro  # noqa: PLC0415 - see the comment above

    stream.seek(0)
    avro_stream = _AvroStream(stream)
    try:
        blocks = fastavro.block_reader(cast("IO[bytes]", avro_stream))
    except SourceError:
        raise  # the stream's own limits (a decompression bomb)
    except Exception as exc:  # fastavro raises ValueError, EOFError, KeyError... on a bad header
        raise SourceError(source, f"not a readable Avro file: {exc}", offset=0) from exc
    return blocks, avro_stream.tell(), avro_stream


class AvroReader:
    def __init__(self, stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._source = source
        self._cursor = cursor
        # fastavro decompresses a block whole: one past the record limit is refused unread.
        self._max_block_bytes = spec.max_record_bytes

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        blocks, first_block, avro_stream = _open_blocks(self._stream, self._source)
        codec = str(blocks.codec)
        start = max(window.start_offset, first_block)
        skip = window.skip_in_block if start == window.start_offset else 0
        if start != first_block:
            # fastavro reads each block from wherever the file stands when it is asked for the next.
            avro_stream.seek(start)
        source = self._source
        cursor = self._cursor
        row = window.start_row
        limit = window.end_offset if window.end_offset is not None else 1 << 62
        while True:
            refused = avro_stream.check_next_block(codec, self._max_block_bytes)
            if refused is not None:
                if refused.truncated:
                    reason = (
                        f"corrupt Avro block: it claims {refused.data_size} bytes and the file ends first"
                    )
                    raise SourceError(source, reason, row=row, offset=refused.offset)
                if refused.offset >= limit:
                    return
                lost = refused.records - skip
                position = RowPosition(source, row, refused.offset, skip)
                detail = (
                    f"the {codec} block holds more than {self._max_block_bytes} bytes once decompressed "
                    f"(max_record_bytes): its {lost} records are skipped"
                )
                row += lost
                cursor.row = row
                cursor.offset, cursor.block_index = avro_stream.tell(), 0
                skip = 0
                yield RejectedRow(position, [RowIssue(position, None, "Avro block too large", detail)])
                continue
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
