"""Decompression bombs built in milliseconds: gigabytes of output from a few megabytes of input.

A gzip file may be several members one after the other, so a bomb is one small compressed member
repeated. A zip member is one deflate stream; after a full flush the compressor starts afresh, so
the same chunk compresses to the same bytes every time and the stream is that piece repeated. The
zip bomb's CRC is not that of its content (computing it would cost reading the whole bomb): a
reader that got to the end would refuse it, one that stops at its limit never gets there.
"""

from __future__ import annotations

import gzip
import struct
import zlib

MIB = 1024 * 1024


def gzip_bomb(head: bytes, chunk: bytes, repeats: int) -> bytes:
    """``head`` then ``chunk`` ``repeats`` times, as a multi-member gzip file."""
    member = gzip.compress(chunk, compresslevel=9, mtime=0)
    return gzip.compress(head, mtime=0) + member * repeats


def deflate_bomb(head: bytes, chunk: bytes, repeats: int) -> bytes:
    """A raw deflate stream of ``head`` then ``chunk`` ``repeats`` times."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + piece * repeats + compressor.flush()


def zip_bomb(members: dict[str, tuple[bytes, bytes, int]]) -> bytes:
    """A zip archive of deflated members: name -> (head, chunk, repeats), each member ``head`` then
    ``chunk`` ``repeats`` times. The CRC is right for members of up to 16 repeats."""
    local_part = bytearray()
    directory = bytearray()
    for name, (head, chunk, repeats) in members.items():
        data = deflate_bomb(head, chunk, repeats)
        size = len(head) + len(chunk) * repeats
        # Sizes past 4 GiB would need zip64 records: a zip bomb here stays below.
        assert size < 1 << 32 and len(data) < 1 << 32, "a zip bomb member must stay under 4 GiB"
        crc = zlib.crc32(head)
        for _ in range(repeats if repeats <= 16 else 0):
            crc = zlib.crc32(chunk, crc)
        name_bytes = name.encode()
        offset = len(local_part)
        local_part += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(name_bytes), 0
        )
        local_part += name_bytes + data
        directory += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(data),
            size,
            len(name_bytes),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += name_bytes
    count = len(members)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(local_part), 0)
    return bytes(local_part + directory + end)
