"""CSV, TSV and PSV rows through the C csv parser, with exact byte offsets per row.

Whole-line blocks are split into lines and decoded by C code (io.BytesIO.readlines, map), and
csv.reader pulls the lines through itertools.chain, so no Python code runs per line. Next to each block's
lines the reader keeps the byte offset where each line ends; csv.reader never reads ahead of the
record it returns, so ``line_num`` after a record names the line whose end is where the next
record starts.

After a csv.Error the reader resynchronises where the planner puts the record's end: the first line
end at which the quote characters counted from the record's start are even. The lines up to there
are one rejected row, so the inside of a broken quoted field is never read as rows of its own, and
row numbers stay the ones plan_byte_ranges counts.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain, islice
from operator import methodcaller
from typing import TYPE_CHECKING

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._blocks import OverlongLine, line_blocks
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources._text import TextStream, open_text
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.spec import SourceSpec, first_bad_column_name

if TYPE_CHECKING:
    from _csv import Reader

Row = SourceRow | RejectedRow
# How csv.Error starts when a field passes csv.field_size_limit.
_FIELD_LIMIT_MESSAGE = "field larger than field limit"
# A block's line-end offsets: ends[0] is where its first line starts, ends[j] where line j ends.
LineEnds = list[int]


class _Lines:
    """The decoded lines of a stream, for csv.reader, and the byte offset where each line ends."""

    __slots__ = (
        "_blocks",
        "_codec",
        "_field_limit",
        "_lines_before",
        "_source",
        "_spans",
        "bad_lines",
    )

    def __init__(
        self, blocks: Iterator[tuple[int, bytes | OverlongLine]], codec: str, source: str, field_limit: int
    ) -> None:
        self._blocks = blocks
        self._codec = codec
        self._source = source
        self._field_limit = field_limit
        # (lines in earlier blocks, line ends, lines) of the blocks csv.reader has not finished with.
        self._spans: deque[tuple[int, LineEnds, list[str]]] = deque()
        self._lines_before = 0
        # 1-based line number -> offset of its first undecodable byte, in line order.
        self.bad_lines: dict[int, int] = {}

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._decoded_blocks())

    def _decoded_blocks(self) -> Iterator[list[str]]:
        codec = self._codec
        utf8 = codec == "utf-8"
        field_limit = self._field_limit
        for base, block in self._blocks:
            # csv has one field size limit per process (131,072 characters unless set): a legal quoted
            # field up to the field limit (max_field_chars, or the record limit when lower) must be
            # read, and a runaway one (an unclosed quote) stopped there. It is set for every block, so
            # whatever another reader of the process set in between never holds for this one;
            # nothing puts the old value back, as nothing here can know when the last reader is
            # done (an abandoned one ends whenever it is collected).
            csv.field_size_limit(field_limit)
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
            # Not kept while csv.reader works through the block: the decoded lines are a copy.
            del raw_lines
            self._spans.append((self._lines_before, ends, lines))
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
        before, ends, _ = spans[0]
        return before, ends

    def end_of(self, line_number: int) -> int:
        before, ends = self.span_of(line_number)
        return ends[line_number - before]

    def quotes_between(self, start: int, last_line: int, quote: str) -> int:
        """Quote characters in the lines from the one starting at byte ``start`` to ``last_line``.

        Blocks are only dropped once csv.reader has passed them, so every line of the record
        being read is still held.
        """
        count = 0
        for before, ends, lines in self._spans:
            if ends[-1] <= start or before + 1 > last_line:
                continue
            first = bisect_left(ends, start)  # ends[first] == start: line ``before + first + 1`` starts there
            count += sum(map(methodcaller("count", quote), islice(lines, first, last_line - before)))
        return count

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
    """A csv.reader over _Lines, started at byte offset ``start``.

    ``line_source`` is the one iterator over the lines: csv.reader pulls from it, and so does the
    resynchronisation after a csv.Error, which therefore counts the lines it takes itself. (It is
    kept here, not in _Lines, whose line generator would then hold itself in a cycle, outliving
    the read until a garbage collection.)
    """

    __slots__ = ("line_source", "lines", "reader", "start")

    def __init__(self, lines: _Lines, line_source: Iterator[str], reader: Reader, start: int) -> None:
        self.lines = lines
        self.line_source = line_source
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
    bad = first_bad_column_name(cells)
    if bad is None:
        return tuple(cells)
    number, earlier = bad
    if earlier is None:
        raise SourceError(source, f"header column {number} has an empty name", row=0)
    reason = (
        f"header columns {earlier} and {number} have the same name "
        "(if the file has no header line, set header: false and name the columns)"
    )
    raise SourceError(source, reason, row=0)


class DelimitedReader:
    """Reads one CSV-family stream; rows are dicts of column name to str."""

    def __init__(self, stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._spec = spec
        self._source = source
        self._cursor = cursor
        # The encoding the file is read in, for messages: the spec's, or the one its BOM names.
        self._encoding_name = spec.codec

    @property
    def _field_limit(self) -> int:
        return min(self._spec.max_record_bytes, self._spec.max_field_chars)

    def _parser(self, text: TextStream, offset: int) -> _Parser:
        spec = self._spec
        blocks = line_blocks(
            text.stream, offset, chunk_bytes=spec.read_chunk_bytes, max_line_bytes=spec.max_record_bytes
        )
        lines = _Lines(blocks, text.codec, self._source, self._field_limit)
        line_source = iter(lines)
        return _Parser(lines, line_source, _csv_reader(line_source, spec), offset)

    def read_header(self) -> tuple[tuple[str, ...], int]:
        """The column names and the offset where data rows begin."""
        header, _, parser = self._read_header()
        return header, parser.start

    def _read_header(self) -> tuple[tuple[str, ...], TextStream, _Parser]:
        """The header, the file as text, and a parser standing on the first data row."""
        text = open_text(
            self._stream, self._spec.codec, line_ends=True, read_bytes=self._spec.read_chunk_bytes
        )
        self._encoding_name = text.encoding_name
        parser = self._parser(text, text.data_start)
        if not self._spec.header:
            assert self._spec.columns is not None
            return self._spec.columns, text, parser
        try:
            for cells in parser.reader:
                if cells:
                    line_number = parser.reader.line_num
                    bad = parser.lines.take_bad(line_number)
                    if bad is not None:
                        reason = f"the header has bytes that are not valid {text.encoding_name}"
                        raise SourceError(self._source, reason, row=0, offset=bad)
                    parser.start = parser.lines.end_of(line_number)
                    return check_header(cells, self._source), text, parser
        except csv.Error as exc:
            reason = f"the header row is not valid CSV: {self._explain(str(exc))}"
            raise SourceError(self._source, reason, row=0) from exc
        return (), text, parser

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        header, text, parser = self._read_header()
        if not header:
            return iter(())
        if window.start_offset > parser.start:
            text.stream.seek(window.start_offset)
            parser = self._parser(text, window.start_offset)
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
        # Lines taken past csv.reader by resynchronisations: reader.line_num + taken is a line number.
        taken = 0
        # The block of line ends in use, as (reader.line_num before it, its line ends, their count):
        # the line ending at ends[i] is the one where reader.line_num - before == i. The sentinel
        # makes the first record look the block up.
        before, ends, span = 0, [start], 1
        while True:
            try:
                for cells in reader:
                    index = reader.line_num - before
                    if index >= span:
                        line_number = reader.line_num + taken
                        block_before, ends = lines.span_of(line_number)
                        before = block_before - taken
                        span = len(ends)
                        index = line_number - block_before
                    end = ends[index]
                    if not cells:
                        start = end
                        continue
                    if start >= limit:
                        return
                    bad = lines.take_bad(reader.line_num + taken) if bad_lines else None
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
                # Only the message: the exception's traceback holds this frame, and with it the
                # parser, which would then live on in a cycle until a garbage collection.
                failure = str(exc)
            if start >= limit:
                return
            last_line, extra = self._record_end(parser, start, reader.line_num + taken)
            taken += extra
            end = lines.end_of(last_line)
            before, ends, span = 0, [end], 1
            lines.take_bad(last_line)
            position = RowPosition(source, row, start)
            detail = f"{self._explain(failure)}; the rejected record runs from byte offset {start} to {end}"
            row += 1
            cursor.row = row
            cursor.offset = end
            start = end
            reason = "field too long" if failure.startswith(_FIELD_LIMIT_MESSAGE) else "malformed CSV"
            yield RejectedRow(position, [RowIssue(position, None, reason, detail)])

    def _record_end(self, parser: _Parser, start: int, failed_line: int) -> tuple[int, int]:
        """The last line of the record starting at byte ``start`` that csv.reader gave up on in line
        ``failed_line``, and how many lines past that were taken to find it.

        The record ends at the first line end, from ``failed_line`` on, where the quote characters
        counted from ``start`` are even: where plan_byte_ranges ends it. A record that never closes
        its quotes runs to the end of the stream.
        """
        quote = self._spec.quotechar
        if quote is None:
            return failed_line, 0
        odd = parser.lines.quotes_between(start, failed_line, quote) & 1
        taken = 0
        while odd:
            # Taken past csv.reader, which then does not count it in line_num.
            line = next(parser.line_source, None)
            if line is None:
                break
            taken += 1
            odd ^= line.count(quote) & 1
        return failed_line + taken, taken

    def _explain(self, message: str) -> str:
        """csv's message in the terms of the file (csv's own speaks of its field limit and modes)."""
        if message.startswith("new-line character seen in unquoted field"):
            return "a carriage return inside a field that is not quoted"
        if message.startswith(_FIELD_LIMIT_MESSAGE):
            if self._spec.max_field_chars < self._spec.max_record_bytes:
                limit = self._spec.max_field_chars
                return f"a field longer than the limit of {limit} characters (max_field_chars)"
            return f"a field longer than the record limit of {self._spec.max_record_bytes} characters"
        return message

    def _undecodable(self, row: int, start: int, bad_offset: int) -> RejectedRow:
        position = RowPosition(self._source, row, start)
        detail = f"bytes not valid {self._encoding_name} at byte offset {bad_offset}"
        return RejectedRow(position, [RowIssue(position, None, "undecodable bytes", detail)])

    def _ragged(self, row: int, start: int, found: int, width: int) -> RejectedRow:
        position = RowPosition(self._source, row, start)
        reason = f"row has {found} fields but the header has {width}"
        return RejectedRow(position, [RowIssue(position, None, reason, f"{found} fields, expected {width}")])
