"""Type coercion: turn one non-empty source value into the JSON-ready value Braze receives.

A converter is built once per configured field (``build_converter``) and called per row. It gets a
value that is not null (delimited text arrives as ``str``, already trimmed and checked against the
null values; JSON and Avro sources hand over native values) and returns the value to send, or raises
``InvalidValueError`` whose ``reason`` is a plain, value-free sentence fit for a rejects file.
No regular expressions: ``str`` methods and set look-ups are several times faster on short cells.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from cdpbridge.mapping.enums import FieldType

Converter = Callable[[Any], Any]

# Braze's limits for custom attribute strings and nested objects.
MAX_STRING_LENGTH: Final = 255
MAX_OBJECT_BYTES: Final = 100_000
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

DEFAULT_TRUE_VALUES: Final[frozenset[str]] = frozenset({"true", "t", "yes", "y", "1", "on"})
DEFAULT_FALSE_VALUES: Final[frozenset[str]] = frozenset({"false", "f", "no", "n", "0", "off"})

# strptime patterns tried for dates written the way people write them, after ISO 8601 failed.
_TEXTUAL_DATE_FORMATS: Final = ("%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y")
_SLASHED_DATETIME_FORMATS: Final = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%dT%H:%M:%S")
EPOCH_SECONDS: Final = "epoch"
EPOCH_MILLISECONDS: Final = "epoch_ms"


class InvalidValueError(ValueError):
    """A value that cannot be written; ``reason`` never contains the value itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ConverterOptions:
    """Per-field knobs of the converters."""

    separator: str | None = None
    formats: tuple[str, ...] = ()
    true_values: frozenset[str] = DEFAULT_TRUE_VALUES
    false_values: frozenset[str] = DEFAULT_FALSE_VALUES
    max_items: int | None = None
    # Cell text that means "no value" inside arrays is dropped like an empty element.
    null_values: frozenset[str] = field(default_factory=frozenset)


def describe_kind(value: Any) -> str:
    """A value's kind in words, for reasons that must not quote the value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes | bytearray):
        return "binary data"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


def _too_long() -> InvalidValueError:
    # No length in the reason: reasons group rejects in the run report; the detail gives the length.
    return InvalidValueError(f"longer than {MAX_STRING_LENGTH} characters")


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts superscripts and other scripts' digits, which int() then refuses.
    return text.isascii() and text.isdigit()


# ---------------------------------------------------------------------------------------- strings


def native_to_text(value: Any) -> str:
    """Text for a scalar that arrived natively from JSON or Avro."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError("not a finite number (nan or infinity)")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidValueError("not a finite number (nan or infinity)")
        return str(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    raise InvalidValueError(f"expected text, got {describe_kind(value)}")


def to_string(value: Any) -> str:
    text = value if value.__class__ is str else native_to_text(value)
    if len(text) > MAX_STRING_LENGTH:
        raise _too_long()
    return text


# ---------------------------------------------------------------------------------------- numbers


def _integer_from_text(text: str) -> int:
    body = text[1:] if text[:1] in ("+", "-") else text
    if _is_ascii_digits(body):
        return int(text)
    whole, dot, fraction = body.partition(".")
    if dot and _is_ascii_digits(whole) and (not fraction or _is_ascii_digits(fraction)):
        if fraction.strip("0"):
            raise InvalidValueError("not a whole number (has a fractional part)")
        # Spreadsheet and pandas exports write whole numbers of float columns as "12.0".
        return int(text[: len(text) - len(body)] + whole)
    raise InvalidValueError("not an integer")


def to_integer(value: Any) -> int:
    if value.__class__ is str:
        number = _integer_from_text(value)
    elif isinstance(value, bool):
        raise InvalidValueError("expected an integer, got a boolean")
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise InvalidValueError("not a finite number (nan or infinity)")
        if value != int(value):
            raise InvalidValueError("not a whole number (has a fractional part)")
        number = int(value)
    else:
        raise InvalidValueError(f"expected an integer, got {describe_kind(value)}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidValueError("integer outside the 64-bit range Braze stores")
    return number


def to_float(value: Any) -> float:
    if value.__class__ is str:
        # float() also takes "1_000", "nan", "infinity" and other scripts' digits; none is a
        # number a CDP meant to send.
        if not value.isascii() or "_" in value:
            raise InvalidValueError("not a number")
        try:
            number = float(value)
        except ValueError:
            raise InvalidValueError("not a number") from None
    elif isinstance(value, bool):
        raise InvalidValueError("expected a number, got a boolean")
    elif isinstance(value, int | float | Decimal):
        number = float(value)
    else:
        raise InvalidValueError(f"expected a number, got {describe_kind(value)}")
    if not math.isfinite(number):
        raise InvalidValueError("not a finite number (nan or infinity)")
    return number


def is_decimal_text(text: str) -> bool:
    """Plain decimal notation: optional sign, digits, optional point and digits; no exponent."""
    body = text[1:] if text[:1] in ("+", "-") else text
    whole, _dot, fraction = body.partition(".")
    if not whole and not fraction:
        return False
    return (not whole or _is_ascii_digits(whole)) and (not fraction or _is_ascii_digits(fraction))


def to_decimal(value: Any) -> float:
    if value.__class__ is str:
        whole, _dot, fraction = value.partition(".")
        if whole.isdigit() and value.isascii() and (fraction.isdigit() or not fraction):
            return float(value)  # the common unsigned case, without the full check below
        if not is_decimal_text(value):
            raise InvalidValueError("not a decimal number (digits with an optional '.')")
        return float(value)
    return to_float(value)


def to_increment(value: Any) -> int:
    """The amount of a ``sum`` strategy: Braze's ``inc`` takes whole numbers only."""
    try:
        return to_integer(value)
    except InvalidValueError as error:
        raise InvalidValueError(
            f"sum needs a whole number (Braze increments integers): {error.reason}"
        ) from None


# --------------------------------------------------------------------------------------- booleans


def boolean_converter(true_values: frozenset[str], false_values: frozenset[str]) -> Converter:
    truthy = frozenset(text.casefold() for text in true_values)
    falsy = frozenset(text.casefold() for text in false_values)

    def to_boolean(value: Any) -> bool:
        if value.__class__ is str:
            folded = value.casefold()
            if folded in truthy:
                return True
            if folded in falsy:
                return False
            raise InvalidValueError("not a recognised boolean (see true_values/false_values)")
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return value == 1
        raise InvalidValueError(f"expected a boolean, got {describe_kind(value)}")

    return to_boolean


# ------------------------------------------------------------------------------------ dates, times


def iso_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a 'Z'; a moment without a zone is taken to be UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().removesuffix("+00:00") + "Z"


def _date_from_parts(text: str, separator: str) -> date | None:
    parts = text.split(separator)
    if len(parts) != 3 or not all(_is_ascii_digits(part) for part in parts):
        return None
    first, second, third = parts
    if len(first) == 4:
        return date(int(first), int(second), int(third))
    if len(third) != 4:
        raise InvalidValueError("two-digit years are ambiguous; use a four-digit year or set `format`")
    if separator == ".":
        # Dotted dates are day-first wherever they are used (DE, AT, CH, PL, RU, ...).
        return date(int(third), int(second), int(first))
    day_or_month, month_or_day = int(first), int(second)
    if day_or_month > 12 >= month_or_day:
        return date(int(third), month_or_day, day_or_month)
    if month_or_day > 12 >= day_or_month or day_or_month == month_or_day:
        return date(int(third), day_or_month, month_or_day)
    raise InvalidValueError("ambiguous day/month order; set `format` (e.g. %d/%m/%Y)")


def parse_date(text: str, formats: Iterable[str] = ()) -> date:
    """A calendar date from ISO text, a datetime, or common day-first/month-first forms."""
    formats = tuple(formats)
    if formats:
        for pattern in formats:
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        raise InvalidValueError("does not match the configured date format")
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    if len(text) > 10 and text[10] in "T ":
        try:
            # The date as written: a birthday does not move when the clock is in another zone.
            return datetime.fromisoformat(text).date()
        except ValueError:
            pass
    try:
        for separator in ("/", ".", "-"):
            if separator in text:
                parsed = _date_from_parts(text.split(" ", 1)[0] if separator != "-" else text, separator)
                if parsed is not None:
                    return parsed
    except ValueError as error:
        if isinstance(error, InvalidValueError):
            raise
        raise InvalidValueError("not a valid calendar date") from None
    for pattern in _TEXTUAL_DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise InvalidValueError("not a recognised date (expected YYYY-MM-DD)")


def _datetime_from_epoch(number: float, milliseconds: bool) -> datetime:
    seconds = number / 1000 if milliseconds else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidValueError("epoch timestamp out of range") from None


def parse_datetime(value: Any, formats: Iterable[str] = ()) -> datetime:
    """A zone-aware moment; text without a zone, and naive native values, are UTC."""
    formats = tuple(formats)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise InvalidValueError("expected a date and time, got a boolean")
    if isinstance(value, int | float | Decimal):
        if not math.isfinite(value):
            raise InvalidValueError("not a finite number (nan or infinity)")
        return _datetime_from_epoch(float(value), EPOCH_MILLISECONDS in formats)
    if value.__class__ is not str:
        raise InvalidValueError(f"expected a date and time, got {describe_kind(value)}")
    text: str = value
    if formats:
        for pattern in formats:
            if pattern in (EPOCH_SECONDS, EPOCH_MILLISECONDS):
                if text.isascii() and is_decimal_text(text):
                    return _datetime_from_epoch(float(text), pattern == EPOCH_MILLISECONDS)
                continue
            try:
                parsed = datetime.strptime(text, pattern)
            except ValueError:
                continue
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        raise InvalidValueError("does not match the configured date/time format")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _fallback_datetime(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _fallback_datetime(text: str) -> datetime:
    for pattern in _SLASHED_DATETIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    if "," in text and ":" in text:
        try:
            return email.utils.parsedate_to_datetime(text)  # RFC 2822, as HTTP and mail write it
        except (TypeError, ValueError):
            pass
    try:
        day = parse_date(text)
    except InvalidValueError:
        raise InvalidValueError("not a recognised date/time (expected ISO 8601)") from None
    return datetime(day.year, day.month, day.day)


def date_converter(formats: tuple[str, ...]) -> Converter:
    from_iso = date.fromisoformat

    def to_date(value: Any) -> str:
        if value.__class__ is str:
            if not formats and len(value) == 10 and value[4] == value[7] == "-":
                try:
                    from_iso(value)
                except ValueError:
                    pass
                else:
                    return value  # already YYYY-MM-DD
            return parse_date(value, formats).isoformat()
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        raise InvalidValueError(f"expected a date, got {describe_kind(value)}")

    return to_date


def datetime_converter(formats: tuple[str, ...]) -> Converter:
    if formats:
        return lambda value: iso_datetime(parse_datetime(value, formats))
    from_iso = datetime.fromisoformat

    def to_datetime(value: Any) -> str:
        if value.__class__ is str:
            try:
                moment = from_iso(value)
            except ValueError:
                return iso_datetime(parse_datetime(value))
            if (
                moment.tzinfo is UTC
                and len(value) == 20
                and value[19] == "Z"
                and value[10] == "T"
                and value[4] == value[7] == "-"
                and value[13] == value[16] == ":"
            ):
                return value  # already the canonical form this converter produces
            return iso_datetime(moment)
        return iso_datetime(parse_datetime(value))

    return to_datetime


# ------------------------------------------------------------------------------ arrays and objects


def _array_element(item: Any) -> str:
    if item.__class__ is str:
        text: str = item
        return text.strip()
    if isinstance(item, bool | int | float | Decimal):
        return native_to_text(item)
    raise InvalidValueError(f"array elements must be text or numbers, got {describe_kind(item)}")


def array_converter(separator: str | None, max_items: int | None, null_values: frozenset[str]) -> Converter:
    def to_array(value: Any) -> list[str]:
        items: Iterable[Any]
        if value.__class__ is str:
            if value.startswith("["):
                try:
                    items = orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise InvalidValueError("starts with '[' but is not a valid JSON array") from None
                if not isinstance(items, list):
                    raise InvalidValueError("starts with '[' but is not a valid JSON array")
            elif separator is not None:
                items = value.split(separator)
            else:
                items = (value,)
        elif isinstance(value, list | tuple):
            items = value
        else:
            items = (value,)
        elements: dict[str, None] = {}  # ordered and unique: Braze arrays hold each value once
        for item in items:
            if item is None:
                continue
            text = item.strip() if item.__class__ is str else _array_element(item)
            if not text or text in null_values:
                continue
            if len(text) > MAX_STRING_LENGTH:
                raise InvalidValueError(f"an array element is longer than {MAX_STRING_LENGTH} characters")
            elements[text] = None
        if max_items is not None and len(elements) > max_items:
            raise InvalidValueError(f"more than {max_items} array elements")
        return list(elements)

    return to_array


def json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:
        raise InvalidValueError("contains values that are not JSON (e.g. binary data)") from None


def to_object(value: Any) -> dict[str, Any]:
    if value.__class__ is str:
        if not value.startswith("{"):
            raise InvalidValueError("expected a JSON object ('{...}')")
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidValueError("not a valid JSON object") from None
        if not isinstance(parsed, dict):
            raise InvalidValueError("expected a JSON object ('{...}')")
        obj: dict[str, Any] = parsed
    elif isinstance(value, dict):
        obj = value
    else:
        raise InvalidValueError(f"expected an object, got {describe_kind(value)}")
    size = json_size(obj)
    if size > MAX_OBJECT_BYTES:
        raise InvalidValueError("nested object larger than 100 KB")
    return obj


# ------------------------------------------------------------------------------- inferred (untyped)


def infer_value(value: Any) -> Any:
    """Untyped values: text stays text (so '0123' keeps its zero), native JSON/Avro types are kept.

    Native floats must be finite, Decimals become floats, dates become ISO text, lists become lists
    of strings (or stay lists of objects), objects are kept within Braze's 100 KB.
    """
    cls = value.__class__
    if cls is str:
        if len(value) > MAX_STRING_LENGTH:
            raise _too_long()
        return value
    if cls is bool:
        return value
    if cls is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidValueError("integer outside the 64-bit range Braze stores")
        return value
    if cls is float:
        if not math.isfinite(value):
            raise InvalidValueError("not a finite number (nan or infinity)")
        return value
    if isinstance(value, Decimal):
        return to_float(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        if value and all(isinstance(item, dict) for item in value):
            if json_size(value) > MAX_OBJECT_BYTES:
                raise InvalidValueError("array of objects larger than 100 KB")
            return list(value)
        return _INFERRED_ARRAY(value)
    if isinstance(value, dict):
        return to_object(value)
    raise InvalidValueError(f"cannot be sent to Braze: {describe_kind(value)}")


_INFERRED_ARRAY: Final = array_converter(None, None, frozenset())


def build_converter(field_type: FieldType | None, options: ConverterOptions) -> Converter:
    """The converter for one configured type; ``None`` means inferred (see ``infer_value``)."""
    match field_type:
        case None:
            return infer_value
        case FieldType.STRING | FieldType.VARCHAR:
            return to_string
        case FieldType.INTEGER:
            return to_integer
        case FieldType.FLOAT:
            return to_float
        case FieldType.DECIMAL:
            return to_decimal
        case FieldType.BOOLEAN:
            return boolean_converter(options.true_values, options.false_values)
        case FieldType.DATE:
            return date_converter(options.formats)
        case FieldType.DATETIME:
            return datetime_converter(options.formats)
        case FieldType.ARRAY:
            return array_converter(options.separator, options.max_items, options.null_values)
        case FieldType.OBJECT:
            return to_object
    raise ValueError(f"unknown field type {field_type!r}")
