"""Which columns hold personal data, and how a value is described in an issue without leaking it.

Rejects files and logs travel further than the data itself (tickets, chat, e-mail), so an issue's
``detail`` shows a PII column's value only as its kind and length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from cdpbridge.mapping.coerce import describe_kind
from cdpbridge.mapping.standard import fold_attribute_name

# Name fragments that mark a column as personal data. Over-matching ("plan_name") only costs detail
# in a rejects file; under-matching would leak an address.
_PII_FRAGMENTS: Final = (
    "mail",
    "phone",
    "mobile",
    "msisdn",
    "cell",
    "tel",
    "fax",
    "name",
    "address",
    "addr",
    "street",
    "city",
    "zip",
    "postal",
    "postcode",
    "plz",
    "birth",
    "dob",
    "bday",
    "ssn",
    "social_security",
    "passport",
    "national_id",
    "tax_id",
    "iban",
    "card",
    "ip_address",
    "ipaddress",
    "location",
    "latitude",
    "longitude",
    "geo",
    "password",
    "token",
)

MAX_DETAIL_LENGTH: Final = 60


def looks_like_pii(*names: str | None) -> bool:
    """Whether any of the (column or attribute) names suggests personal data."""
    for name in names:
        if name is None:
            continue
        folded = fold_attribute_name(name)
        if any(fragment in folded for fragment in _PII_FRAGMENTS):
            return True
    return False


def redacted_detail(value: Any) -> str:
    """A PII-safe description: the value's kind and size only."""
    if isinstance(value, str):
        return f"text of {len(value)} characters (withheld: personal data)"
    if isinstance(value, list | tuple | dict):
        return f"{describe_kind(value)} of {len(value)} items (withheld: personal data)"
    return f"{describe_kind(value)} (withheld: personal data)"


def plain_detail(value: Any) -> str:
    """A truncated repr, for columns that hold no personal data."""
    text = repr(value)
    if len(text) > MAX_DETAIL_LENGTH:
        text = text[: MAX_DETAIL_LENGTH - 3] + "..."
    return text


def detail_function(pii: bool) -> Callable[[Any], str]:
    return redacted_detail if pii else plain_detail
