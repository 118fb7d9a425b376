"""JSON lines: one object per line, parsed by orjson straight from the bytes; values keep JSON types.

orjson is strict JSON: NaN, Infinity and unpaired surrogate escapes make a line a reject (they
could not be sent to Braze anyway). Integers beyond the 64-bit range become floats, as they do
in JavaScript, which is what produces most of these files.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._blocks import OverlongLine, line_blocks
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources._text import open_text
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.spec import SourceSpec

Row = SourceRow | RejectedRow

# JSON whitespace; a line of nothing else is blank and is not a row (the planner agrees on this).
JSON_WHITESPACE = b" \t\r\n"


def json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class LineProblem:
    reason: str
    detail: str


class JsonLinesReader:
    def __init__(self, stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._spec = spec
        self._source = source
        self._cursor = cursor

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        spec = self._spec
        text = open_text(self._stream, spec.codec, line_ends=True, read_bytes=spec.read_chunk_bytes)
        start = max(window.start_offset, text.data_start)
        text.stream.seek(start)
        blocks = line_blocks(
            text.stream, start, chunk_bytes=spec.read_chunk_bytes, max_line_bytes=spec.max_record_bytes
        )
        source = self._source
        cursor = self._cursor
        row = window.start_row
        limit = window.end_offset if window.end_offset is not None else 1 << 62
        loads = orjson.loads
        codec = text.codec
        utf8 = codec == "utf-8"
        for base, block in blocks:
            if isinstance(block, OverlongLine):
                if block.offset >= limit:
                    return
                position = RowPosition(source, row, block.offset)
                reason = f"line of {block.length} bytes is longer than the limit of {spec.max_record_bytes}"
                row += 1
                cursor.row = row
                cursor.offset = block.offset + block.length
                yield RejectedRow(position, [RowIssue(position, None, "line too long", reason)])
                continue
            end = base
            for line in io.BytesIO(block).readlines():
                line_start = end
                end += len(line)
                try:
                    value = loads(line) if utf8 else loads(line.decode(codec))
                except (orjson.JSONDecodeError, UnicodeDecodeError):
                    if not line.strip(JSON_WHITESPACE):
                        continue
                    value = _parse_slowly(line, line_start, codec, text.encoding_name)
                if line_start >= limit:
                    return
                if value.__class__ is dict:
                    item: Row = make_row(source, row, line_start, 0, value)
                elif value.__class__ is LineProblem:
                    position = RowPosition(source, row, line_start)
                    item = RejectedRow(position, [RowIssue(position, None, value.reason, value.detail)])
                else:
                    position = RowPosition(source, row, line_start)
                    reason = f"line is a JSON {json_type_name(value)}, not an object"
                    item = RejectedRow(position, [RowIssue(position, None, reason, json_type_name(value))])
                row += 1
                cursor.row = row
                cursor.offset = end
                yield item


def _parse_slowly(line: bytes, line_start: int, codec: str, encoding_name: str) -> LineProblem:
    """Why orjson refused a line: undecodable bytes (with their offset) or invalid JSON."""
    try:
        text = line.decode(codec)
    except UnicodeDecodeError as exc:
        detail = f"bytes not valid {encoding_name} at byte offset {line_start + exc.start}"
        return LineProblem("undecodable bytes", detail)
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return LineProblem("invalid JSON", f"{exc.msg} at column {exc.colno}")
    return LineProblem("invalid JSON", "refused by the parser")
