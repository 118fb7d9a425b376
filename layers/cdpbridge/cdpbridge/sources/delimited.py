"""CSV, TSV and PSV rows through the C csv parser, with exact byte offsets per row.

Whole-line blocks are split into lines and decoded by C code (io.BytesIO.readlines, map), and
csv.reader pulls the lines through itertools.chain, so no Python code runs per line. Next to each block's
lines the reader keeps the byte offset where each line ends; csv.reader never reads ahead of the
record it returns, so ``line_num`` after a record names the line whose end is where the next
record starts.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain
from typing import TYPE_CHECKING

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._blocks import OverlongLine, line_blocks, skip_bom
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.spec import SourceSpec

if TYPE_CHECKING:
    from _csv import Reader

Row = SourceRow | RejectedRow
# A block's line-end offsets: ends[0] is where its first line starts, ends[j] where line j ends.
LineEnds = list[int]


class _Lines:
    """The decoded lines of a stream, for csv.reader, and the byte offset where each line ends."""

    __slots__ = ("_blocks", "_codec", "_lines_before", "_source", "_spans", "bad_lines")

    def __init__(self, blocks: Iterator[tuple[int, bytes | OverlongLine]], codec: str, source: str) -> None:
        self._blocks = blocks
        self._codec = codec
        self._source = source
        # (lines in earlier blocks, line ends) of the blocks csv.reader has not finished with.
        self._spans: deque[tuple[int, LineEnds]] = deque()
        self._lines_before = 0
        # 1-based line number -> offset of its first undecodable byte, in line order.
        self.bad_lines: dict[int, int] = {}

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._line_lists())

    def _line_lists(self) -> Iterator[list[str]]:
        codec = self._codec
        utf8 = codec == "utf-8"
        for base, block in self._blocks:
            if isinstance(block, OverlongLine):
                raise SourceError(
                    self._source, f"a line of {block.length} bytes or more", offset=block.offset
                )
            raw_lines = io.BytesIO(block).readlines()
            try:
                if utf8:
                    # Per-line decoding of bytes lines beats splitting decoded text into str lines.
                    lines = list(map(bytes.decode, raw_lines))
                else:
                    lines = io.StringIO(block.decode(codec), newline="\n").readlines()
            except UnicodeDecodeError:
                lines = self._lenient(raw_lines, base)
            ends = list(accumulate(map(len, raw_lines), initial=base))
            self._spans.append((self._lines_before, ends))
            self._lines_before += len(lines)
            yield lines

    def _lenient(self, raw_lines: list[bytes], base: int) -> list[str]:
        """Decodes line by line; lines with undecodable bytes are noted, not fatal."""
        codec = self._codec
        lines: list[str] = []
        offset = base
        for raw in raw_lines:
            try:
                lines.append(raw.decode(codec))
            except UnicodeDecodeError as exc:
                self.bad_lines[self._lines_before + len(lines) + 1] = offset + exc.start
                lines.append(raw.decode(codec, "replace"))
            offset += len(raw)
        return lines

    def span_of(self, line_number: int) -> tuple[int, LineEnds]:
        """The (lines before, line ends) of the block holding ``line_number``; drops earlier blocks."""
        spans = self._spans
        while len(spans) > 1 and line_number - spans[0][0] >= len(spans[0][1]):
            spans.popleft()
        return spans[0]

    def end_of(self, line_number: int) -> int:
        before, ends = self.span_of(line_number)
        return ends[line_number - before]

    def take_bad(self, line_number: int) -> int | None:
        """The first undecodable byte in lines up to ``line_number`` not yet taken, if any."""
        bad_lines = self.bad_lines
        first: int | None = None
        while bad_lines:
            number = next(iter(bad_lines))
            if number > line_number:
                break
            offset = bad_lines.pop(number)
            first = offset if first is None else first
        return first


class _Parser:
    """A csv.reader over _Lines, started at byte offset ``start``."""

    __slots__ = ("lines", "reader", "start")

    def __init__(self, lines: _Lines, reader: Reader, start: int) -> None:
        self.lines = lines
        self.reader = reader
        self.start = start


def _csv_reader(lines: Iterable[str], spec: SourceSpec) -> Reader:
    delimiter = spec.effective_delimiter
    if spec.quotechar is None:
        return csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=False)
    return csv.reader(lines, delimiter=delimiter, quotechar=spec.quotechar, doublequote=True, strict=False)


def check_header(cells: list[str], source: str) -> tuple[str, ...]:
    """The header as column names, refusing empty and duplicate names.

    The messages name column positions, never the cells: when a file without a header line is
    read as if it had one, the "header" is a row of customer data (e-mail addresses and the like),
    and these messages are logged.
    """
    seen: dict[str, int] = {}
    for number, name in enumerate(cells, start=1):
        if not name.strip():
            raise SourceError(source, f"header column {number} has an empty name", row=0)
        if name in seen:
            reason = (
                f"header columns {seen[name]} and {number} have the same name "
                "(if the file has no header line, set header: false and name the columns)"
            )
            raise SourceError(source, reason, row=0)
        seen[name] = number
    return tuple(cells)


class DelimitedReader:
    """Reads one CSV-family stream; rows are dicts of column name to str."""

    def __init__(self, stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._spec = spec
        self._source = source
        self._cursor = cursor

    def _parser(self, offset: int) -> _Parser:
        spec = self._spec
        blocks = line_blocks(
            self._stream, offset, chunk_bytes=spec.read_chunk_bytes, max_line_bytes=spec.max_record_bytes
        )
        lines = _Lines(blocks, spec.codec, self._source)
        return _Parser(lines, _csv_reader(lines, spec), offset)

    def read_header(self) -> tuple[tuple[str, ...], int]:
        """The column names and the offset where data rows begin."""
        header, parser = self._read_header()
        return header, parser.start

    def _read_header(self) -> tuple[tuple[str, ...], _Parser]:
        """The header, and a parser standing on the first data row."""
        data_start = skip_bom(self._stream, skips_utf8_bom=self._spec.skips_utf8_bom)
        parser = self._parser(data_start)
        if not self._spec.header:
            assert self._spec.columns is not None
            return self._spec.columns, parser
        try:
            for cells in parser.reader:
                if cells:
                    line_number = parser.reader.line_num
                    bad = parser.lines.take_bad(line_number)
                    if bad is not None:
                        reason = f"the header has bytes that are not valid {self._spec.codec}"
                        raise SourceError(self._source, reason, row=0, offset=bad)
                    parser.start = parser.lines.end_of(line_number)
                    return check_header(cells, self._source), parser
        except csv.Error as exc:
            raise SourceError(self._source, f"the header row is not valid CSV: {exc}", row=0) from exc
        return (), parser

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        header, parser = self._read_header()
        if not header:
            return iter(())
        if window.start_offset > parser.start:
            self._stream.seek(window.start_offset)
            parser = self._parser(window.start_offset)
        return self._rows(parser, header, window.start_row, window.end_offset)

    def _rows(
        self, parser: _Parser, header: tuple[str, ...], row: int, end_offset: int | None
    ) -> Iterator[Row]:
        lines = parser.lines
        reader = parser.reader
        start = parser.start
        source = self._source
        cursor = self._cursor
        width = len(header)
        limit = end_offset if end_offset is not None else 1 << 62
        bad_lines = lines.bad_lines
        # The block of line ends in use; the sentinel makes the first record look the block up.
        before, ends, span = 0, [start], 1
        while True:
            failure: csv.Error | None = None
            try:
                for cells in reader:
                    line_number: int = reader.line_num
                    index = line_number - before
                    if index >= span:
                        before, ends = lines.span_of(line_number)
                        span = len(ends)
                        index = line_number - before
                    end = ends[index]
                    if not cells:
                        start = end
                        continue
                    if start >= limit:
                        return
                    bad = lines.take_bad(line_number) if bad_lines else None
                    if bad is not None:
                        item: Row = self._undecodable(row, start, bad)
                    elif len(cells) == width:
                        # strict=False: the widths were just compared, and the check costs 30% more.
                        item = make_row(source, row, start, 0, dict(zip(header, cells, strict=False)))
                    else:
                        item = self._ragged(row, start, len(cells), width)
                    row += 1
                    cursor.row = row
                    cursor.offset = end
                    start = end
                    yield item
                return
            except csv.Error as exc:
                failure = exc
            line_number = reader.line_num
            end = lines.end_of(line_number)
            before, ends, span = 0, [end], 1
            if start >= limit:
                return
            lines.take_bad(line_number)
            position = RowPosition(source, row, start)
            row += 1
            cursor.row = row
            cursor.offset = end
            start = end
            yield RejectedRow(position, [RowIssue(position, None, "malformed CSV", str(failure))])

    def _undecodable(self, row: int, start: int, bad_offset: int) -> RejectedRow:
        position = RowPosition(self._source, row, start)
        detail = f"bytes not valid {self._spec.codec} at byte offset {bad_offset}"
        return RejectedRow(position, [RowIssue(position, None, "undecodable bytes", detail)])

    def _ragged(self, row: int, start: int, found: int, width: int) -> RejectedRow:
        position = RowPosition(self._source, row, start)
        reason = f"row has {found} fields but the header has {width}"
        return RejectedRow(position, [RowIssue(position, None, reason, f"{found} fields, expected {width}")])
