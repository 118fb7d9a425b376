"""Which S3 keys an S3 notification may hand to a run: the check made before anything is read.

Anyone who can write to the drop bucket chooses the key. A key is later turned into report, rejects
and retry keys and into local paths by the CLI, so a key that climbs out of its folder (``..``),
carries control or invisible formatting characters (terminal escapes in a log viewer, a right-to-left
override that makes ``evil.exe.csv`` read as ``evil.csv.exe``), or lies outside the prefixes the
function was configured for is refused with the reason, before the file is opened.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

# S3's own limit: a key is at most 1024 bytes of UTF-8.
MAX_KEY_BYTES: Final = 1024

# Unicode categories refused anywhere in a key: control characters (Cc, e.g. NUL, ESC, CR, LF, DEL
# and the C1 range), formatting characters (Cf, e.g. bidirectional overrides and zero-width
# characters), surrogates (Cs: no valid UTF-8 encodes one) and unassigned code points (Cn).
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Cn"})


class UnsafeKeyError(ValueError):
    """The key must not be processed; the message says which key and why (control characters escaped)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        # !a (ascii) escapes every control and non-ASCII character, so the message itself is safe to log.
        super().__init__(f"refused S3 key {key!a}: {reason}")


def check_object_key(key: str, allowed_prefixes: Iterable[str]) -> str:
    """Returns ``key`` unchanged when it is safe to process, else raises :class:`UnsafeKeyError`.

    ``key`` is the notification's key after URL decoding. ``allowed_prefixes`` are folder prefixes
    ending in ``/`` (e.g. ``inbound/generic/``); the key must lie under one of them.
    """
    prefixes = tuple(allowed_prefixes)
    if not prefixes:
        raise ValueError("check_object_key needs at least one allowed prefix")
    if not all(prefix.endswith("/") for prefix in prefixes):
        # "inbound/generic" would also admit "inbound/generic-other/...".
        raise ValueError(f"allowed prefixes must end in '/': {prefixes!r}")
    if not key:
        raise UnsafeKeyError(key, "the key is empty")
    for position, character in enumerate(key):
        category = unicodedata.category(character)
        if category in _REFUSED_CATEGORIES:
            name = unicodedata.name(character, f"U+{ord(character):04X}")
            raise UnsafeKeyError(key, f"character {position} is {name} (category {category})")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise UnsafeKeyError(key, f"the key is longer than S3's {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise UnsafeKeyError(key, "the key starts with '/'")
    segments = key.split("/")
    if any(segment in {".", ".."} for segment in segments):
        raise UnsafeKeyError(key, "the key has a '.' or '..' path segment")
    if "\\" in key:
        # Windows path separators turn "a\..\b" into a climb once the CLI maps a key onto a path.
        raise UnsafeKeyError(key, "the key contains a backslash")
    if any(segment == "" for segment in segments[:-1]):
        raise UnsafeKeyError(key, "the key has an empty path segment ('//')")
    if any(key.startswith(prefix) for prefix in prefixes):
        return key
    raise UnsafeKeyError(key, f"the key is outside the configured prefixes {', '.join(prefixes)}")
