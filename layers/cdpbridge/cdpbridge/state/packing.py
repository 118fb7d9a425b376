"""The compact encoding of one user's field state: {attribute: 8-byte digest} as one binary value.

Both stores keep a user's digests as one value, so a read decodes one value per user (not one per
attribute) and a write replaces one item or row.

Layout (version 1): byte 0 = 1; bytes 1-2 = entry count n (big-endian); then the n 8-byte
digests; then the n attribute names, UTF-8, separated by NUL. Braze attribute names never hold
NUL; a name that does (or an empty one) is refused. Decoding slices and splits once instead of
walking entry by entry: about 4 us for 20 attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from cdpbridge.state.contracts import CorruptFieldStateError
from cdpbridge.state.digest import DIGEST_SIZE, RECORD_DIGEST_KEY

PACKING_VERSION: Final = 1
_HEADER: Final = 3
_MAX_ENTRIES: Final = 0xFFFF
_DIGEST_SIZES: Final = {DIGEST_SIZE}
_RECORD_NAME: Final = RECORD_DIGEST_KEY.encode()
_RECORD_FIRST: Final = _RECORD_NAME + b"\x00"
_RECORD_LAST: Final = b"\x00" + _RECORD_NAME


def pack_digests(state: Mapping[str, bytes]) -> bytes:
    """Encodes {attribute: digest}; raises ValueError naming the attribute it cannot store."""
    count = len(state)
    if count > _MAX_ENTRIES:
        raise ValueError(f"cannot pack {count} attribute digests; at most {_MAX_ENTRIES} fit")
    names = "\x00".join(state)
    if "" in state or names.count("\x00") != max(count - 1, 0):
        bad = next(name for name in state if not name or "\x00" in name)
        raise ValueError(f"attribute name {bad!r} cannot be stored: it is empty or contains NUL")
    if count and set(map(len, state.values())) != _DIGEST_SIZES:
        name, digest = next((name, digest) for name, digest in state.items() if len(digest) != DIGEST_SIZE)
        raise ValueError(f"attribute {name!r}: a digest must be {DIGEST_SIZE} bytes, got {len(digest)}")
    return bytes((PACKING_VERSION, count >> 8, count & 0xFF)) + b"".join(state.values()) + names.encode()


def unpack_digests(blob: bytes) -> dict[str, bytes]:
    """Decodes ``pack_digests`` output; raises CorruptFieldStateError on anything else."""
    if len(blob) < _HEADER or blob[0] != PACKING_VERSION:
        raise CorruptFieldStateError("field state has an unknown packing version")
    count = (blob[1] << 8) | blob[2]
    names_start = _HEADER + DIGEST_SIZE * count
    if len(blob) < names_start:
        raise CorruptFieldStateError(f"field state is too short for {count} digests")
    if count == 0:
        return {}
    try:
        names = blob[names_start:].decode().split("\x00")
    except UnicodeDecodeError:
        raise CorruptFieldStateError("field state names are not UTF-8") from None
    if len(names) != count:
        raise CorruptFieldStateError(f"field state holds {len(names)} names for {count} digests")
    return {
        name: blob[offset : offset + DIGEST_SIZE]
        for name, offset in zip(names, range(_HEADER, names_start, DIGEST_SIZE), strict=True)
    }


def packed_record_entry(blob: bytes) -> bytes | None:
    """The RECORD_DIGEST_KEY entry of a packed state, read in place when its name is the last or
    the first (the engine's writes put it last: it is planned after the attributes, and a merge
    keeps the order). None when it is elsewhere, absent, or the state is not one this version
    packs: ``unpack_digests`` then decides (and refuses a damaged state)."""
    if len(blob) < _HEADER or blob[0] != PACKING_VERSION:
        return None
    count = (blob[1] << 8) | blob[2]
    names_start = _HEADER + DIGEST_SIZE * count
    if not count or len(blob) <= names_start:
        return None
    # No name holds NUL, so a NUL before the last name ends the previous one (or, with one entry,
    # it is the digest's last byte, and the name is the only one: the same place either way).
    if blob.endswith(_RECORD_LAST) or blob[names_start:] == _RECORD_NAME:
        offset = names_start - DIGEST_SIZE
    elif blob.startswith(_RECORD_FIRST, names_start):
        offset = _HEADER
    else:
        return None
    return blob[offset : offset + DIGEST_SIZE]
