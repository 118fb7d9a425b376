"""Large binary reads cut into blocks of whole lines, with byte offsets: the base of the text readers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cdpbridge.sources._io import ByteStream

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class OverlongLine:
    """A line longer than the record limit, skipped without being held in memory."""

    offset: int
    length: int


def skip_bom(stream: ByteStream, *, skips_utf8_bom: bool) -> int:
    """Steps over a UTF-8 byte order mark at the start of ``stream``; returns the data's first offset."""
    stream.seek(0)
    if not skips_utf8_bom:
        return 0
    head = _read_at_least(stream, len(UTF8_BOM))
    if head.startswith(UTF8_BOM):
        stream.seek(len(UTF8_BOM))
        return len(UTF8_BOM)
    stream.seek(0)
    return 0


def _read_at_least(stream: ByteStream, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = stream.read(count - len(data))
        if not more:
            break
        data += more
    return data


def line_blocks(
    stream: ByteStream, offset: int, *, chunk_bytes: int, max_line_bytes: int
) -> Iterator[tuple[int, bytes | OverlongLine]]:
    """Yields ``(offset, block)`` where block holds whole lines (each ending in ``\\n``; the last
    block of the stream may end without one). ``stream`` must stand at ``offset``.

    Only the unfinished tail of a read is carried over, so memory is one read plus one line.
    A line growing past ``max_line_bytes`` is discarded up to its newline and reported as an
    OverlongLine instead of being buffered.
    """
    read = stream.read
    # The unfinished line: pieces of successive reads, joined once its newline comes (joining on
    # every read would copy a long line once per read).
    pieces: list[bytes] = []
    held = 0
    skipping_from = -1
    skipped = 0
    while True:
        data = read(chunk_bytes)
        if not data:
            if skipping_from >= 0:
                yield skipping_from, OverlongLine(skipping_from, skipped)
            elif pieces:
                yield offset, b"".join(pieces)
            return
        if skipping_from >= 0:
            newline = data.find(b"\n")
            if newline < 0:
                skipped += len(data)
                continue
            skipped += newline + 1
            yield skipping_from, OverlongLine(skipping_from, skipped)
            offset = skipping_from + skipped
            skipping_from = -1
            data = data[newline + 1 :]
            if not data:
                continue
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            held += len(data)
            if held > max_line_bytes:
                skipping_from, skipped = offset, held
                pieces, held = [], 0
            else:
                pieces.append(data)
            continue
        tail = data[cut:] if cut < len(data) else b""
        if cut < len(data):
            data = data[:cut]
        if pieces:
            pieces.append(data)
            data = b"".join(pieces)
        pieces, held = ([tail], len(tail)) if tail else ([], 0)
        yield offset, data
        offset += len(data)
