"""Braze's standard user fields: what each accepts, how source values are normalised, and the custom
names that shadow them.

Braze stores a standard field only under its exact lower-case name; anything else becomes a custom
attribute. A CDP column called ``birthday`` or ``Email`` therefore silently creates a second, unused
copy of the data (and costs data points), which is why shadowing names are flagged.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Final

import orjson

from cdpbridge.mapping.coerce import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    MAX_OBJECT_BYTES,
    Converter,
    ConverterOptions,
    InvalidValueError,
    boolean_converter,
    date_converter,
    describe_kind,
    json_size,
    to_float,
    to_string,
)
from cdpbridge.mapping.countries import country_to_alpha2
from cdpbridge.mapping.enums import FieldType
from cdpbridge.mapping.languages import language_to_iso639_1

MAX_EMAIL_LENGTH: Final = 254
MAX_EMAIL_LOCAL_LENGTH: Final = 64
E164_MIN_DIGITS: Final = 7
E164_MAX_DIGITS: Final = 15


@dataclass(frozen=True, slots=True)
class StandardField:
    """One Braze standard field: its natural type, the configurable types that fit, whether it is PII."""

    name: str
    natural_type: FieldType
    accepted_types: frozenset[FieldType]
    pii: bool


_TEXT_TYPES: Final = frozenset({FieldType.STRING, FieldType.VARCHAR})


def _text_field(name: str, *, pii: bool) -> StandardField:
    return StandardField(name, FieldType.STRING, _TEXT_TYPES, pii)


STANDARD_FIELDS: Final[dict[str, StandardField]] = {
    standard.name: standard
    for standard in (
        _text_field("first_name", pii=True),
        _text_field("last_name", pii=True),
        _text_field("email", pii=True),
        _text_field("phone", pii=True),
        StandardField("dob", FieldType.DATE, frozenset({FieldType.DATE, FieldType.DATETIME}), pii=True),
        _text_field("country", pii=False),
        _text_field("home_city", pii=True),
        _text_field("language", pii=False),
        _text_field("gender", pii=False),
        _text_field("time_zone", pii=False),
        _text_field("email_subscribe", pii=False),
        _text_field("push_subscribe", pii=False),
        StandardField("subscription_groups", FieldType.ARRAY, frozenset({FieldType.ARRAY}), pii=False),
        StandardField(
            "email_open_tracking_disabled", FieldType.BOOLEAN, frozenset({FieldType.BOOLEAN}), pii=False
        ),
        StandardField(
            "email_click_tracking_disabled", FieldType.BOOLEAN, frozenset({FieldType.BOOLEAN}), pii=False
        ),
        StandardField("current_location", FieldType.OBJECT, frozenset({FieldType.OBJECT}), pii=True),
        StandardField("push_tokens", FieldType.ARRAY, frozenset({FieldType.ARRAY}), pii=True),
    )
}

# Custom attribute names (folded: lower case, '_' for separators) that mean a standard field.
# A postal code has no standard field in Braze, so zip/postcode are deliberately not listed.
SHADOWED_NAMES: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("birthday", "birth_date", "birthdate", "date_of_birth", "dateofbirth", "bday", "geburtsdatum"), "dob"
    ),
    **dict.fromkeys(
        ("e_mail", "email_address", "emailaddress", "mail", "mail_address", "email_addr", "e_mail_address"),
        "email",
    ),
    **dict.fromkeys(
        (
            "mobile",
            "phone_number",
            "phonenumber",
            "mobile_number",
            "mobile_phone",
            "mobilephone",
            "cell",
            "cellphone",
            "cell_phone",
            "telephone",
            "tel",
            "msisdn",
            "phone_no",
        ),
        "phone",
    ),
    **dict.fromkeys(
        ("firstname", "first", "given_name", "givenname", "forename", "fname", "vorname"), "first_name"
    ),
    **dict.fromkeys(
        ("lastname", "surname", "family_name", "familyname", "lname", "last", "nachname"), "last_name"
    ),
    **dict.fromkeys(("timezone", "tz", "tz_name", "timezone_name", "zeitzone"), "time_zone"),
    **dict.fromkeys(("city", "home_town", "hometown", "homecity", "town"), "home_city"),
    **dict.fromkeys(("country_code", "countrycode", "country_name", "country_iso", "land"), "country"),
    **dict.fromkeys(
        ("lang", "locale", "preferred_language", "language_code", "languagecode", "sprache"), "language"
    ),
    **dict.fromkeys(("sex", "geschlecht"), "gender"),
    **dict.fromkeys(
        ("email_subscription", "email_opt_in", "email_optin", "email_consent"), "email_subscribe"
    ),
    **dict.fromkeys(("push_subscription", "push_opt_in", "push_optin", "push_consent"), "push_subscribe"),
    **dict.fromkeys(("location", "geo_location", "geolocation", "lat_long", "latlong"), "current_location"),
}


def fold_attribute_name(name: str) -> str:
    """Lower case with '-', ' ' and '.' as '_', so 'Date-Of-Birth' and 'date_of_birth' compare equal."""
    folded = name.strip().lower()
    for separator in ("-", " ", "."):
        folded = folded.replace(separator, "_")
    return folded


def shadowed_standard_field(name: str) -> str | None:
    """The standard field a custom attribute name stands in for, or None.

    Exact standard names are not shadows; spellings that differ only in case or separators are,
    because Braze would store them as custom attributes.
    """
    if name in STANDARD_FIELDS:
        return None
    folded = fold_attribute_name(name)
    if folded in STANDARD_FIELDS:
        return folded
    return SHADOWED_NAMES.get(folded)


# ------------------------------------------------------------------------------------ normalisers


_EMAIL_LOCAL_FORBIDDEN: Final = frozenset(' ()<>[]\\,;:"\u00a0')


# The plain ASCII address that makes up nearly every file, in one match: dot-separated local atoms
# of letters, digits, _ + -; two or more domain labels that neither start nor end with '-'.
_PLAIN_EMAIL: Final = re.compile(
    r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@((?:[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*\.)+[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*)"
)
_PLAIN_EMAIL_MAX_LENGTH: Final = 63


def normalize_email(value: Any) -> str:
    """A basic RFC 5321-shaped check; the domain is lower-cased (the local part is case-sensitive)."""
    if value.__class__ is str and len(value) <= _PLAIN_EMAIL_MAX_LENGTH:
        plain = _PLAIN_EMAIL.fullmatch(value)
        if plain is not None:
            local, domain = plain.groups()
            top_level = domain[domain.rfind(".") + 1 :]
            if len(top_level) >= 2 and not top_level.isdigit():
                return value if domain.islower() else f"{local}@{domain.lower()}"
    text = (value if value.__class__ is str else to_string(value)).strip()
    local, _at, domain = text.partition("@")
    domain = domain.lower()
    # Fast path for the plain ASCII addresses that make up nearly every file; anything else gets the
    # full check below, which also says what is wrong.
    if (
        0 < len(local) <= MAX_EMAIL_LOCAL_LENGTH
        and len(text) <= 63
        and text.isascii()
        and local.replace(".", "").replace("_", "").replace("+", "").replace("-", "").isalnum()
        and local[0] != "."
        and local[-1] != "."
        and ".." not in text
        and domain.replace("-", "").replace(".", "").isalnum()
        and "." in domain
        and domain[0] not in ".-"
        and domain[-1] not in ".-"
        and ".-" not in domain
        and "-." not in domain
    ):
        top_level = domain[domain.rfind(".") + 1 :]
        if len(top_level) >= 2 and not top_level.isdigit():
            return f"{local}@{domain}"
    return _checked_email(text)


def _checked_email(text: str) -> str:
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidValueError(f"e-mail address longer than {MAX_EMAIL_LENGTH} characters")
    local, at, domain = text.rpartition("@")
    if not at:
        raise InvalidValueError("e-mail address without '@'")
    if not local or not domain:
        raise InvalidValueError("e-mail address with an empty local part or domain")
    if "@" in local:
        raise InvalidValueError("e-mail address with more than one '@'")
    if len(local) > MAX_EMAIL_LOCAL_LENGTH:
        raise InvalidValueError(f"e-mail local part longer than {MAX_EMAIL_LOCAL_LENGTH} characters")
    if not local.isprintable() or not _EMAIL_LOCAL_FORBIDDEN.isdisjoint(local):
        raise InvalidValueError("e-mail local part contains spaces or special characters")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidValueError("e-mail local part has a misplaced '.'")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidValueError("e-mail domain without a '.'")
    for label in labels:
        if not label or len(label) > 63:
            raise InvalidValueError("e-mail domain has an empty or over-long label")
        if label.startswith("-") or label.endswith("-") or not label.replace("-", "").isalnum():
            raise InvalidValueError("e-mail domain contains invalid characters")
    top_level = labels[-1]
    if len(top_level) < 2 or top_level.isdigit():
        raise InvalidValueError("e-mail domain has an invalid top-level domain")
    return f"{local}@{domain}"


_PLAIN_E164: Final = re.compile(rf"\+[1-9][0-9]{{{E164_MIN_DIGITS - 1},{E164_MAX_DIGITS - 1}}}")
_PHONE_FORMATTING: Final = str.maketrans("", "", " -.()/\t\u00a0\u2009\u202f")


def normalize_default_country_code(code: str) -> str:
    """'+49', '0049' or '49' to '49'; raise ValueError for anything that is not 1-3 digits."""
    digits = code.strip().removeprefix("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if not (1 <= len(digits) <= 3 and digits.isascii() and digits.isdigit()) or digits.startswith("0"):
        raise ValueError("must be a country calling code such as +49 or 1")
    return digits


def normalize_phone(value: Any, default_country_code: str | None = None) -> str:
    """E.164 (+ and 7-15 digits): formatting is stripped, a leading 00 becomes +; a national number
    gets ``default_country_code`` (its trunk 0 dropped) and without one is refused."""
    if value.__class__ is str and _PLAIN_E164.fullmatch(value) is not None:
        return value  # already E.164, as most files send it
    if value.__class__ is str:
        text = value.strip().replace(" ", "")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise InvalidValueError(f"expected a phone number, got {describe_kind(value)}")
    if not text.isdigit() and not (text[:1] == "+" and text[1:].isdigit()):
        text = text.translate(_PHONE_FORMATTING)  # slower, so only when there is more than spaces
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    else:
        if default_country_code is None:
            raise InvalidValueError(
                "phone number without a country code (+...) and no default_country_code configured"
            )
        digits = default_country_code + text.removeprefix("0")
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidValueError("phone number contains characters other than digits and formatting")
    if digits.startswith("0"):
        raise InvalidValueError("phone number country code cannot start with 0")
    if not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS:
        raise InvalidValueError(f"phone number must have {E164_MIN_DIGITS}-{E164_MAX_DIGITS} digits")
    return "+" + digits


def normalize_country(value: Any) -> str:
    text = to_string(value).strip()
    code = country_to_alpha2(text)
    if code is None:
        raise InvalidValueError("unknown country (expected an ISO 3166-1 code or an English name)")
    return code


def normalize_language(value: Any) -> str:
    text = to_string(value).strip()
    code = language_to_iso639_1(text)
    if code is None:
        raise InvalidValueError("unknown language (expected an ISO 639-1 code or a language name)")
    return code


_GENDERS: Final[dict[str, str | None]] = {
    **dict.fromkeys(("m", "male", "man", "men", "mr", "herr", "mann", "männlich", "masculine", "boy"), "M"),
    **dict.fromkeys(
        ("f", "female", "woman", "women", "ms", "mrs", "miss", "frau", "weiblich", "w", "feminine", "girl"),
        "F",
    ),
    **dict.fromkeys(
        (
            "o",
            "other",
            "d",
            "divers",
            "diverse",
            "x",
            "non-binary",
            "nonbinary",
            "non binary",
            "non_binary",
            "nb",
            "enby",
            "genderqueer",
        ),
        "O",
    ),
    **dict.fromkeys(("n", "not applicable", "not_applicable", "n/a", "na"), "N"),
    **dict.fromkeys(
        (
            "p",
            "prefer not to say",
            "prefer_not_to_say",
            "prefer-not-to-say",
            "prefer not to answer",
            "declined",
            "decline to state",
            "withheld",
        ),
        "P",
    ),
    # Unknown is not a gender Braze knows; it means "no value", like an empty cell.
    **dict.fromkeys(("u", "unknown", "unspecified"), None),
}


def normalize_gender(value: Any) -> str | None:
    text = to_string(value).strip().casefold()
    if text not in _GENDERS:
        raise InvalidValueError("unknown gender (expected M, F, O, N, P or a common word for them)")
    return _GENDERS[text]


@cache
def _time_zone_names() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def normalize_time_zone(value: Any) -> str:
    text = to_string(value).strip()
    name = _time_zone_names().get(text.casefold())
    if name is None:
        raise InvalidValueError("not an IANA time zone name (e.g. Europe/Berlin)")
    return name


_SUBSCRIPTION_STATES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "opted_in",
            "opted in",
            "opted-in",
            "optedin",
            "opt_in",
            "opt-in",
            "opt in",
            "optin",
            "double_opt_in",
            "double opt-in",
            "double opt in",
            "doi",
            # A true consent flag from a CDP is an explicit opt-in.
            "true",
            "t",
            "yes",
            "y",
            "1",
            "on",
        ),
        "opted_in",
    ),
    **dict.fromkeys(("subscribed", "subscribe", "sub", "default"), "subscribed"),
    **dict.fromkeys(
        (
            "unsubscribed",
            "unsubscribe",
            "unsub",
            "opted_out",
            "opted out",
            "opted-out",
            "optedout",
            "opt_out",
            "opt-out",
            "opt out",
            "optout",
            "false",
            "f",
            "no",
            "n",
            "0",
            "off",
        ),
        "unsubscribed",
    ),
}


def normalize_subscription_state(value: Any) -> str:
    if isinstance(value, bool):
        return "opted_in" if value else "unsubscribed"
    if isinstance(value, int) and value in (0, 1):
        return "opted_in" if value else "unsubscribed"
    text = to_string(value).strip().casefold()
    state = _SUBSCRIPTION_STATES.get(text)
    if state is None:
        raise InvalidValueError("not a subscription state (opted_in, subscribed or unsubscribed)")
    return state


def _json_container(value: Any, expected: type) -> Any:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidValueError(f"not valid JSON (expected {describe_kind(expected())})") from None
    if not isinstance(value, expected):
        raise InvalidValueError(f"expected {describe_kind(expected())}, got {describe_kind(value)}")
    if json_size(value) > MAX_OBJECT_BYTES:
        raise InvalidValueError("larger than 100 KB")
    return value


def normalize_subscription_groups(value: Any) -> list[dict[str, str]]:
    groups = _json_container(value, list)
    normalized: list[dict[str, str]] = []
    for group in groups:
        if not isinstance(group, dict):
            raise InvalidValueError("each subscription group must be an object")
        group_id = group.get("subscription_group_id")
        state = group.get("subscription_state")
        if not isinstance(group_id, str) or not group_id.strip():
            raise InvalidValueError("a subscription group has no subscription_group_id")
        if state not in ("subscribed", "unsubscribed"):
            raise InvalidValueError("subscription_state must be 'subscribed' or 'unsubscribed'")
        normalized.append({"subscription_group_id": group_id.strip(), "subscription_state": state})
    return normalized


def normalize_push_tokens(value: Any) -> list[dict[str, str]]:
    tokens = _json_container(value, list)
    normalized: list[dict[str, str]] = []
    for token in tokens:
        if not isinstance(token, dict):
            raise InvalidValueError("each push token must be an object")
        if not all(isinstance(token.get(key), str) and token[key] for key in ("app_id", "token")):
            raise InvalidValueError("a push token needs non-empty app_id and token")
        unknown = set(token) - {"app_id", "token", "device_id"}
        if unknown:
            raise InvalidValueError("a push token has keys other than app_id, token and device_id")
        normalized.append(dict(token))
    return normalized


def normalize_current_location(value: Any) -> dict[str, float]:
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        # "lat,lon" as most CDPs export a point.
        latitude_text, comma, longitude_text = value.partition(",")
        if not comma:
            raise InvalidValueError("expected 'latitude,longitude' or a JSON object")
        latitude, longitude = to_float(latitude_text.strip()), to_float(longitude_text.strip())
    else:
        location = _json_container(value, dict)
        if set(location) != {"latitude", "longitude"}:
            raise InvalidValueError("current_location needs exactly latitude and longitude")
        latitude, longitude = to_float(location["latitude"]), to_float(location["longitude"])
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise InvalidValueError("latitude must be within ±90 and longitude within ±180")
    return {"latitude": latitude, "longitude": longitude}


def standard_converter(  # noqa: PLR0912 - one branch per kind of Braze standard field
    name: str,
    options: ConverterOptions | None = None,
    *,
    default_country_code: str | None = None,
) -> Converter:
    """The normalising converter for one standard field (``name`` must be in STANDARD_FIELDS)."""
    options = options or ConverterOptions()
    match name:
        case "email":
            return normalize_email
        case "phone":
            return partial(normalize_phone, default_country_code=default_country_code)
        case "dob":
            return date_converter(options.formats)
        case "country":
            return normalize_country
        case "language":
            return normalize_language
        case "gender":
            return normalize_gender
        case "time_zone":
            return normalize_time_zone
        case "email_subscribe" | "push_subscribe":
            return normalize_subscription_state
        case "email_open_tracking_disabled" | "email_click_tracking_disabled":
            return boolean_converter(options.true_values, options.false_values)
        case "subscription_groups":
            return normalize_subscription_groups
        case "push_tokens":
            return normalize_push_tokens
        case "current_location":
            return normalize_current_location
        case "first_name" | "last_name" | "home_city":
            return to_string
    raise ValueError(f"{name!r} is not a Braze standard field")


def normalize_standard_field(name: str, value: Any, *, default_country_code: str | None = None) -> Any:
    """Normalise one value of a Braze standard field, e.g. ('country', 'Deutschland') -> 'DE'.

    Raises ``InvalidValueError`` (a ValueError) with a value-free reason when the value is invalid,
    and ValueError when ``name`` is not a standard field.
    """
    if name not in STANDARD_FIELDS:
        raise ValueError(f"{name!r} is not a Braze standard field")
    converter: Callable[[Any], Any] = standard_converter(
        name,
        ConverterOptions(true_values=DEFAULT_TRUE_VALUES, false_values=DEFAULT_FALSE_VALUES),
        default_country_code=(
            normalize_default_country_code(default_country_code) if default_country_code else None
        ),
    )
    if isinstance(value, str):
        value = value.strip()
    return converter(value)
