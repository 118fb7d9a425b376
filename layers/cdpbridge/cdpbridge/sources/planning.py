"""Splitting an uncompressed file into byte ranges that start on rows, for fan-out over workers.

The planner reads the file once at C speed (bytes.count / bytes.find / bytes.split, never a Python
loop per byte or per row) and counts the rows before every boundary, so each range's first_row
gives the same row numbers as a sequential read.

CSV boundaries follow quote parity: a newline is a row boundary only outside quotes, and an
escaped quote inside a quoted field is doubled, so it leaves the parity unchanged (RFC 4180). The
csv reader agrees with quote parity as long as every quote met outside quotes opens a field (comes
right after a delimiter, a newline or the start) or doubles the quote just before it. A quote
anywhere else outside quotes, as in ``55" screen``, is a literal character to the reader but flips
the parity, so a range could start inside what the reader sees as a plain row: such a file is not
split (one range), and read whole it gives the reader's rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Protocol

from cdpbridge.sources._blocks import OverlongLine, line_blocks, skip_bom
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources.avro import SYNC_SIZE, open_block_reader
from cdpbridge.sources.cursor import ByteRange
from cdpbridge.sources.errors import SourceError, SourceSpecError
from cdpbridge.sources.jsonlines import JSON_WHITESPACE
from cdpbridge.sources.opening import open_source
from cdpbridge.sources.spec import SourceFormat, SourceSpec

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# csv.reader returns no record for an empty line: one of nothing but carriage returns before its
# "\n" ("\n", "\r\n", "\r\r\n"...); these are not rows.
_EMPTY_LINE_AFTER_NEWLINE = re.compile(rb"(?<=\n)\r*\n")
_EMPTY_LINE = re.compile(rb"\r*\n")
_LAST_BYTE = itemgetter(slice(-1, None))
# A JSON-lines line of nothing but whitespace is skipped by the reader.
_BLANK_JSON_LINE = re.compile(rb"(?m)^[ \t\r]*\n")
_BLANK_JSON_HINTS = (b"\n\n", b"\n\r", b"\n ", b"\n\t")


@dataclass(frozen=True, slots=True)
class _Boundary:
    offset: int
    rows_before: int


class _RowCounter(Protocol):
    # False once the data seen shows that quote parity does not find the reader's rows.
    splittable: bool

    def records(self, data: bytes) -> int:
        """Records that end in ``data``, which starts at a line start; advances any quote state."""

    def next_boundary(self, data: bytes, counted: int, start: int) -> int:
        """Index just past the first record-ending newline at or after ``start``, or -1.

        ``counted`` is how far ``records`` has consumed ``data`` (the quote state holds there).
        """

    def tail_records(self, tail: bytes) -> int:
        """1 if the stream ends with a record that no newline closed, else 0."""


class _DelimitedCounter:
    def __init__(self, quote: bytes | None, delimiter: bytes) -> None:
        self._quote = quote
        # 1 while inside a quoted field at the point the counter has reached.
        self.parity = 0
        self.splittable = True
        # A quote met outside quotes must open a field: come right after a delimiter or a newline,
        # or right after the quote that closed the field before (a doubled quote).
        self._field_starts = delimiter + b"\n"

    def records(self, data: bytes) -> int:
        quote = self._quote
        quotes = data.count(quote) if quote is not None else 0
        if not quotes:
            return 0 if self.parity else data.count(b"\n") - _empty_lines(data, at_line_start=True)
        assert quote is not None
        # The pieces between quote characters alternate outside/inside quotes; rejoined with the
        # quote (never a newline) they keep every newline and empty line of the outside text only.
        pieces = data.split(quote)[self.parity :: 2]
        outside = quote.join(pieces)
        count = outside.count(b"\n") - _empty_lines(outside, at_line_start=self.parity == 0)
        self.parity = (self.parity + quotes) & 1
        if self.splittable:
            # Each outside piece but the last is followed by a quote met outside quotes, and so is
            # the last when data ends inside quotes. The byte before that quote is the piece's last
            # byte; an empty piece stands between a closing quote and the next (a doubled quote) or
            # at the start of data, which is a line start. One byte per quoted field, gathered in C.
            followed = pieces if self.parity else pieces[:-1]
            if b"".join(map(_LAST_BYTE, followed)).translate(None, self._field_starts):
                self.splittable = False
        return count

    def next_boundary(self, data: bytes, counted: int, start: int) -> int:
        quote = self._quote
        if quote is None:
            newline = data.find(b"\n", start)
            return newline + 1 if newline >= 0 else -1
        inside = (self.parity + data.count(quote, counted, start)) & 1
        position = start
        while True:
            if inside:
                closing = data.find(quote, position)
                if closing < 0:
                    return -1
                position, inside = closing + 1, 0
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                return -1
            opening = data.find(quote, position, newline)
            if opening < 0:
                return newline + 1
            position, inside = opening + 1, 1

    def tail_records(self, tail: bytes) -> int:
        if self.parity:
            return 1  # an unterminated quoted field: csv returns what it has as a record
        return 1 if tail.strip(b"\r") else 0


class _LinesCounter:
    splittable = True

    def records(self, data: bytes) -> int:
        blank = 0
        if data[:1] in (b"\n", b"\r", b" ", b"\t") or any(hint in data for hint in _BLANK_JSON_HINTS):
            blank = len(_BLANK_JSON_LINE.findall(data))
        return data.count(b"\n") - blank

    def next_boundary(self, data: bytes, counted: int, start: int) -> int:
        newline = data.find(b"\n", start)
        return newline + 1 if newline >= 0 else -1

    def tail_records(self, tail: bytes) -> int:
        return 1 if tail.strip(JSON_WHITESPACE) else 0


def _empty_lines(data: bytes, *, at_line_start: bool) -> int:
    count = 1 if at_line_start and data[:1] in (b"\n", b"\r") and _EMPTY_LINE.match(data) else 0
    if b"\n\n" in data or b"\n\r" in data:
        count += len(_EMPTY_LINE_AFTER_NEWLINE.findall(data))
    return count


def plan_byte_ranges(
    location: str, spec: SourceSpec, *, target_bytes: int, s3_client: S3Client | None = None
) -> list[ByteRange]:
    """Contiguous ranges of about ``target_bytes`` covering the file, each starting on a row.

    Compressed files and JSON arrays cannot be split: the answer is one range over the whole
    file (end None). Neither is a CSV file with a quote that does not open a field (see the module
    docstring): one range ending at the file's size. Ranges never hold zero rows; a file with
    fewer rows than ranges gets fewer.
    """
    if target_bytes < 1:
        raise SourceSpecError(f"target_bytes must be positive, got {target_bytes}")
    opened = open_source(location, spec, s3_client=s3_client)
    try:
        if not opened.splittable or spec.format is SourceFormat.JSON:
            return [ByteRange(0, None, 1)]
        raw = opened.raw
        size = raw.seek(0, 2)
        if size <= target_bytes:
            return [ByteRange(0, size, 1)]
        if spec.format is SourceFormat.AVRO:
            boundaries, total = _avro_boundaries(raw, location, size, target_bytes)
        elif spec.format is SourceFormat.PARQUET:
            # Imported here to keep the Parquet reader off the handlers' import path (cold start).
            from cdpbridge.sources.parquet import row_group_boundaries  # noqa: PLC0415

            starts, total = row_group_boundaries(raw, location, target_bytes)
            boundaries = [_Boundary(offset, rows_before) for offset, rows_before in starts]
        else:
            counter: _RowCounter
            if spec.format.is_delimited:
                quote = spec.quotechar.encode("ascii") if spec.quotechar is not None else None
                delimiter = spec.effective_delimiter.encode("ascii")
                counter, header_records = _DelimitedCounter(quote, delimiter), 1 if spec.header else 0
            else:
                counter, header_records = _LinesCounter(), 0
            boundaries, total = _text_boundaries(
                raw, location, spec, counter, header_records=header_records, target=target_bytes
            )
            if not counter.splittable:
                return [ByteRange(0, size, 1)]
        while boundaries and boundaries[-1].rows_before >= total:
            boundaries.pop()  # nothing would start after it: no empty last range
        return _as_ranges(boundaries, size)
    finally:
        opened.close()


def _as_ranges(boundaries: Iterable[_Boundary], size: int) -> list[ByteRange]:
    starts = [_Boundary(0, 0), *boundaries]
    ends: list[int] = [boundary.offset for boundary in starts[1:]] + [size]
    return [
        ByteRange(start.offset, end, start.rows_before + 1) for start, end in zip(starts, ends, strict=True)
    ]


def _text_boundaries(
    raw: ByteStream,
    location: str,
    spec: SourceSpec,
    counter: _RowCounter,
    *,
    header_records: int,
    target: int,
) -> tuple[list[_Boundary], int]:
    start = skip_bom(raw, skips_utf8_bom=spec.skips_utf8_bom)
    records = 0
    boundaries: list[_Boundary] = []
    last_rows = 0
    next_target = target
    tail = b""
    blocks = line_blocks(raw, start, chunk_bytes=spec.read_chunk_bytes, max_line_bytes=spec.max_record_bytes)
    for base, block in blocks:
        if isinstance(block, OverlongLine):
            if spec.format.is_delimited:
                raise SourceError(location, f"a line of {block.length} bytes or more", offset=block.offset)
            records += 1  # the JSON-lines reader rejects it as one row
            tail = b""
            continue
        index = 0
        while next_target < base + len(block):
            cut = counter.next_boundary(block, index, max(next_target - base, index))
            if cut < 0:
                break
            records += counter.records(block[index:cut])
            index = cut
            rows_before = records - header_records
            if rows_before > last_rows:
                boundaries.append(_Boundary(base + cut, rows_before))
                last_rows = rows_before
            next_target = base + cut + target
        records += counter.records(block[index:] if index else block)
        if not counter.splittable:
            return [], 0  # the caller plans one range; the rest of the file need not be read
        tail = block[block.rfind(b"\n") + 1 :]
    records += counter.tail_records(tail)
    return boundaries, records - header_records


def _read_long(data: bytes, position: int, location: str, offset: int) -> tuple[int, int]:
    """An Avro zig-zag varint at ``data[position:]``: (value, position after it)."""
    shift = 0
    accumulated = 0
    while True:
        if position >= len(data):
            raise SourceError(location, "truncated Avro block header", offset=offset)
        byte = data[position]
        position += 1
        accumulated |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (accumulated >> 1) ^ -(accumulated & 1), position
        shift += 7
        if shift > 63:
            raise SourceError(location, "malformed Avro block header", offset=offset)


def _avro_boundaries(raw: ByteStream, location: str, size: int, target: int) -> tuple[list[_Boundary], int]:
    """Walks the blocks by their headers (count, byte size), checking the sync marker after each."""
    _, offset = open_block_reader(raw, location)
    raw.seek(offset - SYNC_SIZE)
    sync = raw.read(SYNC_SIZE)
    records = 0
    boundaries: list[_Boundary] = []
    next_target = target
    while offset < size:
        raw.seek(offset)
        head = raw.read(20)
        count, position = _read_long(head, 0, location, offset)
        data_size, position = _read_long(head, position, location, offset)
        if count < 0 or data_size < 0:
            raise SourceError(location, "malformed Avro block header", offset=offset)
        marker_at = offset + position + data_size
        raw.seek(marker_at)
        if raw.read(SYNC_SIZE) != sync:
            raise SourceError(location, "Avro sync marker not found after the block", offset=offset)
        if offset >= next_target and records > (boundaries[-1].rows_before if boundaries else 0):
            boundaries.append(_Boundary(offset, records))
            next_target = offset + target
        records += count
        offset = marker_at + SYNC_SIZE
    return boundaries, records
