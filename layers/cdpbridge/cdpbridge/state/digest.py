"""Digests of attribute values: what dedupe stores instead of the values Braze acknowledged.

A digest is 8 bytes of BLAKE2b over the canonical orjson encoding of the value (object keys
sorted at every depth), so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` digest alike.

Encoding, not Python equality, decides what is "the same value", and that is deliberate: the
digest stands for the JSON Braze received. ``1`` and ``1.0`` encode as ``1`` and ``1.0`` and get
different digests; ``True`` and ``1`` likewise. Braze keeps a type per custom attribute, so
treating them alike could skip a write that changes what Braze holds, while treating them apart
costs at most one data point when a mapper flips between the two. ``NaN`` and infinities encode
as ``null`` (what orjson, and so users.track, sends), so they digest like ``None``.

With 64 bits, two different values of one attribute collide with probability about 2**-64 per
comparison: far below any other source of error in a sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

DIGEST_SIZE: Final = 8

_SORTED_KEYS: Final = orjson.OPT_SORT_KEYS
# Scalars encode alike with or without sorted keys; the option is for objects.
_dumps: Final = orjson.dumps
# Copying a keyed-and-sized hasher is cheaper than building one (it skips the parameter parsing);
# this is called once per changed attribute in the engine's inner loop.
_EMPTY_HASHER: Final = hashlib.blake2b(digest_size=DIGEST_SIZE)


def value_digest(value: Any) -> bytes:
    """The 8-byte digest of a JSON-ready value; raises TypeError for a value JSON cannot carry."""
    kind = value.__class__
    if kind is str:
        digest = _STR_DIGESTS.get(value)
        return digest if digest is not None else _remember(_STR_DIGESTS, value)
    if kind is int:
        digest = _INT_DIGESTS.get(value)
        return digest if digest is not None else _remember(_INT_DIGESTS, value)
    if kind is bool:
        return _TRUE_DIGEST if value else _FALSE_DIGEST
    # 0.0 and -0.0 are one key but encode apart, and NaN is never found again: neither is remembered.
    if kind is float and value and value == value:  # noqa: PLR0124 - false only for NaN, in one step
        digest = _FLOAT_DIGESTS.get(value)
        return digest if digest is not None else _remember(_FLOAT_DIGESTS, value)
    return _encoded_digest(value)


def _encoded_digest(value: Any) -> bytes:
    try:
        encoded = orjson.dumps(value, option=_SORTED_KEYS)
    except orjson.JSONEncodeError as exc:
        # The value itself may be personal data: name its type, never its content.
        raise TypeError(f"cannot digest a value of type {type(value).__name__}: {exc}") from None
    hasher = _EMPTY_HASHER.copy()
    hasher.update(encoded)
    return hasher.digest()


# The same few values recur in most columns of most files (countries, tiers, flags, small counts):
# their digests are remembered, by exact type so that 1 and True never share an entry (and 1 and
# 1.0, which encode apart). Bounded: a memo is emptied when full.
_DIGEST_MEMO_LIMIT: Final = 1 << 16
_STR_DIGESTS: Final[dict[str, bytes]] = {}
_INT_DIGESTS: Final[dict[int, bytes]] = {}
_FLOAT_DIGESTS: Final[dict[float, bytes]] = {}


remembered_str_digest: Final = _STR_DIGESTS.get
"""The digest value_digest remembers for a text value, or None: one C call where a caller in a hot
loop (dedupe planning) would otherwise make a Python call per value. The memo is emptied in place
when full, never replaced, so this stays bound to it."""


def _remember[ValueT: (str, int, float)](memo: dict[ValueT, bytes], value: ValueT) -> bytes:
    # _encoded_digest inlined: a value digested here is new, and most of a first load's values are.
    try:
        encoded = _dumps(value)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cannot digest a value of type {type(value).__name__}: {exc}") from None
    hasher = _EMPTY_HASHER.copy()
    hasher.update(encoded)
    digest = hasher.digest()
    if len(memo) >= _DIGEST_MEMO_LIMIT:
        memo.clear()
    memo[value] = digest
    return digest


_TRUE_DIGEST: Final = _encoded_digest(True)
_FALSE_DIGEST: Final = _encoded_digest(False)


def value_digests(values: Mapping[str, Any]) -> dict[str, bytes]:
    """Digests of several attributes at once: attribute name to digest."""
    return {name: value_digest(value) for name, value in values.items()}


NULL_DIGEST: Final = value_digest(None)

LIST_ELEMENT_PREFIX: Final = "$e:"
"""Entries ``$e:<attribute>:<element digest, hex>`` of a user's field state say whether one element
is in the array attribute (LIST_ELEMENT_PRESENT, after an acknowledged add) or not in it
(LIST_ELEMENT_ABSENT, after an acknowledged remove). They count only while the attribute's own
entry is LIST_TRACKED: any other write to the attribute replaces that entry, and so voids them."""
LIST_TRACKED: Final = b"\xff$list\x00\x00"
LIST_ELEMENT_PRESENT: Final = b"\xff$in\x00\x00\x00\x00"
LIST_ELEMENT_ABSENT: Final = b"\xff$out\x00\x00\x00"

RECORD_DIGEST_KEY: Final = "$record"
"""The entry of a user's field state that holds the digest of the whole source record last
acknowledged for that user (raw values of the mapped columns, the identifier, and the mapping
config it went through). Braze refuses attribute names starting with '$' and so does the mapping
config, so no attribute digest ever shares this entry."""
