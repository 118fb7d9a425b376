"""The opt-in export's user key: the SHA-256 of the trimmed, lower-cased e-mail address.

Only the digest is ever kept: an address is hashed as soon as it is read and never stored.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

_DIGEST: Final = re.compile(r"[0-9a-f]{64}")


def email_sha256(email: str) -> str:
    """The hex SHA-256 of ``email`` trimmed of surrounding white space and lower-cased."""
    normalised = email.strip().lower()
    if not normalised:
        raise ValueError("an empty e-mail address has no hash")
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def is_email_sha256(text: str) -> bool:
    """True for 64 lower-case hex digits, the form email_sha256 returns."""
    return _DIGEST.fullmatch(text) is not None
