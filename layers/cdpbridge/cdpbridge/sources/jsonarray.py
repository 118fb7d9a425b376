"""A top-level JSON array of objects, parsed incrementally: one element in memory at a time.

The text lives in a sliding window that only ever holds the unparsed tail of what was read;
json.JSONDecoder.raw_decode parses one element where it starts. An element cut by the end of the
window is retried after a read that at least doubles the window, so a huge element costs linear
time, and an element beyond ``max_record_bytes`` is refused instead of swallowing memory.

An element the parser refuses (NaN, a number beyond a double, a raw control character in a
string, a syntax error) is one rejected row: its end is found by skipping strings whole and
matching brackets up to the "," or "]" at the array's own level, and reading goes on from there.
Only when that scan cannot find the end (brackets that do not match, a string or the file that
never ends) is the rest of the array unreadable.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterator
from enum import Enum, auto
from typing import Any

import orjson

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._text import open_text
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.jsonlines import json_type_name
from cdpbridge.sources.spec import SourceSpec

Row = SourceRow | RejectedRow

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Undecodable bytes survive decoding as lone surrogates (surrogateescape) so that the parser can
# carry on; an element holding one is rejected with the offset of the byte.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# The characters that matter when skipping an element: string quotes, brackets and separators.
_STRUCTURE = re.compile(r'["\[\]{},]')
# The rest of a string after its opening quote, through its closing quote (escapes skipped whole).
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_CLOSERS = {"[": "]", "{": "}"}


# Inside brackets a separator does not end the element: only quotes and brackets matter there.
_NESTED_STRUCTURE = re.compile(r'["\[\]{}]')
# No parser reads JSON nested this deep (Python's stops near 1,000 levels), so the element is
# refused whatever it holds; finding its end through many millions of brackets would take minutes.
MAX_SCANNED_DEPTH = 1_000_000


class _Unbalanced(Exception):
    """Where a refused element ends cannot be known: its brackets do not match, or they nest
    deeper than MAX_SCANNED_DEPTH."""


def _element_end(text: str, at: int) -> int:
    """The index of the "," or "]" that ends the array element starting at ``text[at]``, or -1
    when ``text`` ends first. Raises _Unbalanced when a bracket closes one it does not match, or
    when brackets nest deeper than MAX_SCANNED_DEPTH."""
    open_brackets: list[str] = []
    position = at
    while True:
        found = (_NESTED_STRUCTURE if open_brackets else _STRUCTURE).search(text, position)
        if found is None:
            return -1
        index = found.start()
        char = text[index]
        if char == '"':
            rest = _STRING_REST.match(text, index + 1)
            if rest is None:
                return -1
            position = rest.end()
            continue
        if char in _CLOSERS:
            open_brackets.append(_CLOSERS[char])
            if len(open_brackets) > MAX_SCANNED_DEPTH:
                raise _Unbalanced
        elif char != ",":
            if open_brackets:
                if open_brackets.pop() != char:
                    raise _Unbalanced
            elif char == "]":
                return index
            else:
                raise _Unbalanced
        elif not open_brackets:
            return index
        position = index + 1


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_value(literal: str) -> None:
    return None


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        # Not the literal itself: messages are logged, and values are customer data.
        raise ValueError("a number out of the range of a double")
    return value


def _has_unpaired_surrogate(value: Any) -> bool:
    """True when a \\uD800-style escape decoded into a lone surrogate, which no encoder will take."""
    try:
        orjson.dumps(value)
    except TypeError:
        return True
    return False


class _State(Enum):
    EXPECT_ARRAY = auto()
    FIRST_ELEMENT = auto()
    ELEMENT = auto()
    AFTER_ELEMENT = auto()
    DONE = auto()


class _TextWindow:
    """Decoded text of the stream from byte offset ``base`` on, with byte offsets for any index."""

    __slots__ = (
        "_chunk_bytes",
        "_codec",
        "_decoder",
        "_mark_byte",
        "_mark_index",
        "_stream",
        "base",
        "dirty",
        "eof",
        "text",
    )

    def __init__(self, stream: ByteStream, offset: int, codec: str, chunk_bytes: int) -> None:
        self._stream = stream
        self._codec = codec
        self._chunk_bytes = chunk_bytes
        self._decoder = codecs.getincrementaldecoder(codec)("surrogateescape")
        self.text = ""
        self.base = offset
        self._mark_index = 0
        self._mark_byte = offset
        self.eof = False
        self.dirty = False

    def byte_offset(self, index: int) -> int:
        if self.text.isascii():
            return self.base + index
        if index < self._mark_index:
            self._mark_index, self._mark_byte = 0, self.base
        piece = self.text[self._mark_index : index]
        self._mark_byte += len(piece.encode(self._codec, "surrogateescape"))
        self._mark_index = index
        return self._mark_byte

    def refill(self, keep_from: int, at_least: int = 0) -> bool:
        """Drops the text before ``keep_from`` and reads more; False when the stream is exhausted."""
        if self.eof:
            return False
        self.base = self.byte_offset(keep_from)
        self.text = self.text[keep_from:]
        self._mark_index, self._mark_byte = 0, self.base
        data = self._stream.read(max(self._chunk_bytes, at_least))
        piece = self._decoder.decode(data, final=not data)
        if not data:
            self.eof = True
        if not piece.isascii() and _ESCAPED_BYTE.search(piece):
            self.dirty = True
        self.text += piece
        return bool(data) or bool(piece)


class JsonArrayReader:
    def __init__(self, stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._spec = spec
        self._source = source
        self._cursor = cursor
        self._decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
        # Only ever asked where a refused element ends; its values are thrown away.
        self._lenient_decoder = json.JSONDecoder(
            strict=False, parse_constant=_no_value, parse_float=_no_value
        )

    def _fail(self, reason: str, row: int, window: _TextWindow, index: int) -> SourceError:
        return SourceError(self._source, reason, row=row, offset=window.byte_offset(index))

    def rows(self, read_window: ReadWindow) -> Iterator[Row]:  # noqa: PLR0912, PLR0915 - the streaming parser's state machine: one loop over the text, one branch per token
        spec = self._spec
        text_stream = open_text(self._stream, spec.codec, line_ends=False, read_bytes=spec.read_chunk_bytes)
        data_start = text_stream.data_start
        # A resume point sits just after an element: the parser picks up expecting "," or "]".
        resuming = read_window.start_row > 1 and read_window.start_offset > data_start
        start = read_window.start_offset if resuming else data_start
        text_stream.stream.seek(start)
        state = _State.AFTER_ELEMENT if resuming else _State.EXPECT_ARRAY
        window = _TextWindow(text_stream.stream, start, text_stream.codec, spec.read_chunk_bytes)
        raw_decode = self._decoder.raw_decode
        lenient_decode = self._lenient_decoder.raw_decode
        source = self._source
        cursor = self._cursor
        row = read_window.start_row
        limit = read_window.end_offset if read_window.end_offset is not None else 1 << 62
        text = window.text
        index = 0
        while True:
            at = _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
            if at >= len(text):
                if not window.refill(index):
                    break
                text, index = window.text, 0
                continue
            char = text[at]
            if state is _State.ELEMENT or (state is _State.FIRST_ELEMENT and char != "]"):
                refused: str | None = None
                try:
                    value, end = raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    # Some messages end in "at", meant to be followed by a position.
                    refused = f"{exc.msg.removesuffix(' at')} at byte offset {window.byte_offset(exc.pos)}"
                except RecursionError:
                    refused = "nested too deeply"
                except ValueError as exc:  # from parse_constant / parse_float
                    refused = str(exc)
                if refused is not None:
                    try:
                        # A value the parser refuses for what it holds (NaN, 1e999, a raw control
                        # character) is valid to a lenient one, which finds its end at C speed.
                        _, end = lenient_decode(text, at)
                    except json.JSONDecodeError as exc:
                        # Cut by the end of the window: read on rather than scan what is there.
                        end = -1 if exc.pos >= len(text) else -2
                    except (ValueError, RecursionError):
                        end = -2
                    try:
                        if end == -2:
                            end = _element_end(text, at)
                    except _Unbalanced:
                        raise self._fail(
                            f"invalid JSON in the array ({refused}), and the element's brackets do not "
                            f"match or nest deeper than {MAX_SCANNED_DEPTH} levels, so where it ends "
                            "is unknown",
                            row,
                            window,
                            at,
                        ) from None
                    if end < 0:
                        # Cut by the end of the window, or by the end of the file.
                        if window.eof:
                            reason = f"invalid JSON in the array ({refused}), and the file ends inside it"
                            raise self._fail(reason, row, window, at)
                        if len(text) - at > spec.max_record_bytes:
                            reason = f"an array element longer than {spec.max_record_bytes} bytes"
                            raise self._fail(reason, row, window, at)
                        window.refill(at, at_least=len(text) - at)
                        text, index = window.text, 0
                        continue
                    # The whole element is in the window, so the parser refused it for what it holds.
                    if end == at:
                        refused = "no value between two separators (an extra ',')"
                    element_start = window.byte_offset(at)
                    if element_start >= limit:
                        return
                    position = RowPosition(source, row, element_start)
                    row += 1
                    cursor.row = row
                    cursor.offset = window.byte_offset(end)
                    index = end
                    state = _State.AFTER_ELEMENT
                    yield RejectedRow(position, [RowIssue(position, None, "invalid JSON", refused)])
                    continue
                if end == len(text) and not window.eof:
                    # A number or literal may go on in the next read: parse it again with more text.
                    window.refill(at, at_least=len(text) - at + 1)
                    text, index = window.text, 0
                    continue
                element_start = window.byte_offset(at)
                if element_start >= limit:
                    return
                escaped = _ESCAPED_BYTE.search(text, at, end) if window.dirty else None
                position = RowPosition(source, row, element_start)
                if escaped is not None:
                    bad_offset = window.byte_offset(escaped.start())
                    detail = f"bytes not valid {text_stream.encoding_name} at byte offset {bad_offset}"
                    item: Row = RejectedRow(position, [RowIssue(position, None, "undecodable bytes", detail)])
                elif text.find("\\u", at, end) >= 0 and _has_unpaired_surrogate(value):
                    reason = "unpaired surrogate escape in a string"
                    item = RejectedRow(position, [RowIssue(position, None, "invalid JSON", reason)])
                elif value.__class__ is dict:
                    item = SourceRow(position, value)
                else:
                    kind = json_type_name(value)
                    reason = f"array element is a JSON {kind}, not an object"
                    item = RejectedRow(position, [RowIssue(position, None, reason, kind)])
                row += 1
                cursor.row = row
                cursor.offset = window.byte_offset(end)
                index = end
                state = _State.AFTER_ELEMENT
                yield item
            elif state is _State.AFTER_ELEMENT:
                if char == ",":
                    state = _State.ELEMENT
                elif char == "]":
                    state = _State.DONE
                else:
                    raise self._fail(
                        f"expected ',' or ']' after an array element, found {char!r}", row, window, at
                    )
                index = at + 1
            elif state is _State.EXPECT_ARRAY:
                if char != "[":
                    raise self._fail(f"expected a JSON array of objects, found {char!r}", row, window, at)
                state = _State.FIRST_ELEMENT
                index = at + 1
            elif state is _State.FIRST_ELEMENT:  # an empty array
                state = _State.DONE
                index = at + 1
            else:
                raise self._fail("unexpected data after the end of the array", row, window, at)
        if state not in (_State.DONE, _State.EXPECT_ARRAY):
            raise SourceError(
                source,
                "the file ends inside the JSON array (truncated?)",
                row=row,
                offset=window.byte_offset(len(text)),
            )
