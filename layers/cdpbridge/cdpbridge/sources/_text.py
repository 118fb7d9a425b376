"""What the first bytes of a text file say about reading it: a byte order mark, lines ending in CR.

A byte order mark names the file's encoding, whatever the source spec says (no file in an
ASCII-compatible encoding starts with the bytes of one; Excel and Windows tools write them):

- UTF-8: decoded as UTF-8, the mark stepped over (offsets still count it);
- UTF-16 and UTF-32, LE or BE: re-encoded to UTF-8 as the file is read, since the readers split
  lines on ASCII bytes. Offsets then count the bytes of that UTF-8 text, as offsets in a gzip file
  count its decompressed bytes, and such a file is read whole, never in byte ranges.

A file whose first lines end in CR alone (classic Mac OS, some Excel exports) is read with every
CR as a line end (LF): the byte counts do not change, so offsets stay those of the file. Each CR is
a line end in such a file, so a CR inside a quoted field becomes an LF there too.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from cdpbridge.sources._blocks import UTF8_BOM
from cdpbridge.sources._io import ByteStream

# UTF-32 first: its little-endian mark starts with UTF-16's.
_BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (UTF8_BOM, "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_LONGEST_MARK = 4
# How much of the start of a file decides whether its lines end in CR alone.
HEAD_BYTES = 64 * 1024
# Bytes of a UTF-16/32 file read at a time while re-encoding it.
_WIDE_READ_BYTES = 256 * 1024
# The error handler that stands a lone surrogate in for undecodable UTF-16/32 code units: it
# encodes (with surrogatepass) to bytes no UTF-8 decoder accepts, so the readers reject the row
# that holds it with their usual "bytes not valid" reason instead of reading a changed value.
_UNDECODABLE = "cdpbridge.undecodable-wide"
_UNDECODABLE_MARK = "\udcfd"
_CR_TO_LF = bytes.maketrans(b"\r", b"\n")


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _UNDECODABLE_MARK, error.end


@dataclass(frozen=True, slots=True)
class TextLayout:
    """What a file's first bytes say."""

    # The encoding a byte order mark names, and the mark's length; None and 0 when there is none.
    bom_encoding: str | None
    bom_length: int
    cr_line_ends: bool

    @property
    def transcoded(self) -> bool:
        return self.bom_encoding is not None and self.bom_encoding != "utf-8"

    @property
    def rewritten(self) -> bool:
        """True when the bytes the readers see are not the file's own (so no byte ranges)."""
        return self.transcoded or self.cr_line_ends


def byte_order_mark(head: bytes) -> tuple[str | None, int]:
    for mark, encoding in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return encoding, len(mark)
    return None, 0


def ends_lines_in_cr(head: bytes, *, whole_file: bool) -> bool:
    """True when ``head`` holds a CR and no LF. A CR as the last byte of a head that is not the
    whole file proves nothing: the LF of a CRLF may follow it."""
    if b"\n" in head:
        return False
    return b"\r" in (head if whole_file else head[:-1])


def sniff_layout(head: bytes, *, whole_file: bool) -> TextLayout:
    """The layout of a file starting with ``head`` (the first HEAD_BYTES bytes or all of them)."""
    encoding, length = byte_order_mark(head)
    if encoding is not None and encoding != "utf-8":
        # The line ends are looked for in the re-encoded text (see open_text); for the question
        # whether the bytes are rewritten, the encoding answers already.
        return TextLayout(encoding, length, cr_line_ends=False)
    return TextLayout(encoding, length, ends_lines_in_cr(head[length:], whole_file=whole_file))


@dataclass(frozen=True, slots=True)
class TextStream:
    """A text file as its reader sees it."""

    stream: ByteStream
    # What decodes ``stream``.
    codec: str
    # Where the data starts in ``stream``, after any UTF-8 byte order mark.
    data_start: int
    # The file's encoding, for messages ("bytes not valid utf-16-le").
    encoding_name: str


def read_head(stream: ByteStream, count: int, read_bytes: int) -> bytes:
    """Up to ``count`` bytes from the start of ``stream``, in reads of at most ``read_bytes``;
    ``stream`` is left at offset 0."""
    stream.seek(0)
    pieces: list[bytes] = []
    held = 0
    while held < count:
        piece = stream.read(min(count - held, read_bytes))
        if not piece:
            break
        pieces.append(piece)
        held += len(piece)
    stream.seek(0)
    return b"".join(pieces)


def open_text(stream: ByteStream, codec: str, *, line_ends: bool, read_bytes: int) -> TextStream:
    """``stream`` ready for a text reader, positioned at the data's start. ``codec`` is the source
    spec's, used when the file has no byte order mark; ``line_ends`` asks for CR line ends to be
    read as LF (the line-based readers need it; a JSON array does not care). No read is larger
    than ``read_bytes``."""
    head_bytes = HEAD_BYTES if line_ends else _LONGEST_MARK
    head = read_head(stream, head_bytes, read_bytes)
    encoding, mark_length = byte_order_mark(head)
    data_start = 0
    name = codec
    if encoding is not None and encoding != "utf-8":
        stream = Utf8FromWide(stream, encoding, mark_length)
        head = read_head(stream, head_bytes, read_bytes)
        codec, name = "utf-8", encoding
    elif encoding == "utf-8":
        codec = name = "utf-8"
        data_start = mark_length
    if line_ends and ends_lines_in_cr(head[data_start:], whole_file=len(head) < head_bytes):
        stream = CrLineEnds(stream)
    stream.seek(data_start)
    return TextStream(stream, codec, data_start, name)


class CrLineEnds:
    """``stream`` with every CR read as LF: same length, same offsets."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        return self._stream.read(size).translate(_CR_TO_LF)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        # The stream belongs to whoever opened it.
        return


class Utf8FromWide:
    """A UTF-16 or UTF-32 stream, from just after its byte order mark, read as UTF-8 bytes.

    Offsets are those of the UTF-8 bytes. A seek forward reads up to there; a seek back starts
    again from the mark (the readers only seek back to the start, to look at the first bytes).
    """

    __slots__ = ("_decoder", "_encoding", "_eof", "_pending", "_position", "_raw", "_start")

    def __init__(self, raw: ByteStream, encoding: str, start: int) -> None:
        # Registering again replaces the handler with itself: no state, nothing to undo.
        codecs.register_error(_UNDECODABLE, _mark_undecodable)
        self._raw = raw
        self._encoding = encoding
        self._start = start
        self._decoder = codecs.getincrementaldecoder(encoding)(_UNDECODABLE)
        self._pending = b""
        self._position = 0
        self._eof = False
        self._rewind()

    def _rewind(self) -> None:
        self._raw.seek(self._start)
        self._decoder.reset()
        self._pending = b""
        self._position = 0
        self._eof = False

    def read(self, size: int = -1, /) -> bytes:
        while (size < 0 or len(self._pending) < size) and not self._eof:
            data = self._raw.read(_WIDE_READ_BYTES if size < 0 else max(size, _WIDE_READ_BYTES))
            if not data:
                self._eof = True
            text = self._decoder.decode(data, final=not data)
            self._pending += text.encode("utf-8", "surrogatepass")
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        self._position += len(out)
        return out

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence == 1:
            offset += self._position
        elif whence != 0:
            raise OSError(f"a re-encoded {self._encoding} stream cannot seek from its end")
        if offset < self._position:
            self._rewind()
        while self._position < offset:
            if not self.read(min(offset - self._position, _WIDE_READ_BYTES)):
                break
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        # The stream belongs to whoever opened it.
        return
