"""Which columns hold personal data, and how a value is described in an issue without leaking it.

Rejects files and logs travel further than the data itself (tickets, chat, e-mail), so an issue's
``detail`` shows a PII column's value only as its kind and length.
"""

from __future__ import annotations

import re
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

# Free text that reaches a rejects file (a reader's or Braze's error message, a value of a column whose
# name does not say it is personal) is scrubbed by shape as well: an e-mail address is any word with
# an "@" in it; a phone number is 7 to 15 digits, optionally after "+" or "00", with the separators
# people write them with. Over-matching (an order number of 8 digits) only costs detail; a date is
# not a phone number.
_EMAIL_SHAPE: Final = re.compile(r"[^\s'\"<>(),;\[\]]*@[^\s'\"<>(),;\[\]]*")
_PHONE_SHAPE: Final = re.compile(r"(?<![\w.+(])(?:\+|00|\()?\d(?:[ ()./-]{0,2}\d){6,14}(?!\w|\.\d)")
_DATE_SHAPE: Final = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
EMAIL_WITHHELD: Final = "<e-mail address withheld>"
PHONE_WITHHELD: Final = "<phone number withheld>"


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
    """A truncated repr, for columns not named as personal data (still scrubbed by shape)."""
    text = scrub_personal_data(repr(value))
    if len(text) > MAX_DETAIL_LENGTH:
        text = text[: MAX_DETAIL_LENGTH - 3] + "..."
    return text


def scrub_personal_data(text: str) -> str:
    """``text`` with every e-mail address and phone number in it replaced by a placeholder."""
    if not text:
        return text
    # A lone "@" (a handle sign, "@ 5 EUR") is not an address; "a@@b" is one, however malformed.
    text = _EMAIL_SHAPE.sub(lambda match: EMAIL_WITHHELD if len(match.group(0)) > 1 else "@", text)

    def phone_or_date(match: re.Match[str]) -> str:
        found = match.group(0)
        return found if _DATE_SHAPE.fullmatch(found.strip()) else PHONE_WITHHELD

    return _PHONE_SHAPE.sub(phone_or_date, text)


def detail_function(pii: bool) -> Callable[[Any], str]:
    return redacted_detail if pii else plain_detail
