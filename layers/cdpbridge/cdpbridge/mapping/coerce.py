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
from datetime import UTC, date, datetime, time
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
_SLASHED_DATETIME_FORMATS: Final = ("%Y/%m/%dT%H:%M:%S",)
# Times after a day/month/year date that ISO 8601 does not cover: a one-digit hour, or a 12-hour clock.
_CLOCK_TIME_FORMATS: Final = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p", "%I:%M%p", "%I:%M:%S%p")
_EXPECTED_DATETIME: Final = "not a recognised date/time (expected ISO 8601)"
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
    # A text field's declared length in characters (Amperity's varchar(N)).
    max_length: int | None = None


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


def _not_finite() -> InvalidValueError:
    return InvalidValueError("not a finite number (nan or infinity)")


def _beyond_float_range() -> InvalidValueError:
    # float() turns these into infinity (or refuses a huge int), and JSON would send infinity as null,
    # which unsets the attribute instead of writing a number.
    return InvalidValueError("number beyond the range of a 64-bit float (about 1.8e308)")


def _beyond_int64() -> InvalidValueError:
    return InvalidValueError("integer outside the 64-bit range Braze stores")


def _is_finite(number: int | float | Decimal) -> bool:
    """Finite, without converting: math.isfinite raises on a huge int and on a signalling Decimal NaN."""
    if isinstance(number, float):
        return math.isfinite(number)
    if isinstance(number, Decimal):
        return number.is_finite()
    return True


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


def within_declared_length(convert: Converter, max_length: int) -> Converter:
    """``convert`` for a field declared ``varchar(max_length)``: a value longer than that many
    characters is invalid, whatever ``convert`` would make of it (a standard field's normaliser
    included). Native values are measured as the text they would be sent as."""
    reason = f"longer than its declared length of {max_length} characters"

    def convert_declared(value: Any) -> Any:
        text = value if value.__class__ is str else native_to_text(value)
        if len(text) > max_length:
            raise InvalidValueError(reason)
        return convert(value)

    return convert_declared


# ---------------------------------------------------------------------------------------- numbers


def _integer_from_text(text: str) -> int:
    body = text[1:] if text[:1] in ("+", "-") else text
    # int() refuses text of more than 4,300 digits with a ValueError; any such number is far outside
    # the 64-bit range.
    if _is_ascii_digits(body):
        try:
            return int(text)
        except ValueError:
            raise _beyond_int64() from None
    whole, dot, fraction = body.partition(".")
    if dot and _is_ascii_digits(whole) and (not fraction or _is_ascii_digits(fraction)):
        if fraction.strip("0"):
            raise InvalidValueError("not a whole number (has a fractional part)")
        # Spreadsheet and pandas exports write whole numbers of float columns as "12.0".
        try:
            return int(text[: len(text) - len(body)] + whole)
        except ValueError:
            raise _beyond_int64() from None
    raise InvalidValueError("not an integer")


def to_integer(value: Any) -> int:
    if value.__class__ is str:
        number = _integer_from_text(value)
    elif isinstance(value, bool):
        raise InvalidValueError("expected an integer, got a boolean")
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        if not _is_finite(value):
            raise _not_finite()
        if isinstance(value, Decimal) and value.adjusted() >= 19:
            raise _beyond_int64()  # before int(), which would build every digit of Decimal('1e999999')
        if value != int(value):
            raise InvalidValueError("not a whole number (has a fractional part)")
        number = int(value)
    else:
        raise InvalidValueError(f"expected an integer, got {describe_kind(value)}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise _beyond_int64()
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
        if not math.isfinite(number):
            # "1e400" overflows to infinity; "nan" and "-Infinity" are spelled out (no digit in them).
            raise _beyond_float_range() if any(char.isdigit() for char in value) else _not_finite()
        return number
    if value.__class__ is float:  # JSON and Avro floats: nothing to convert
        native: float = value
        if math.isfinite(native):
            return native
        raise _not_finite()
    if isinstance(value, bool):
        raise InvalidValueError("expected a number, got a boolean")
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # beyond the float range; an int never becomes infinity
            raise _beyond_float_range() from None
    if not isinstance(value, float | Decimal):
        raise InvalidValueError(f"expected a number, got {describe_kind(value)}")
    if not _is_finite(value):
        raise _not_finite()
    number = float(value)  # Decimal('1e400') becomes infinity
    if not math.isfinite(number):
        raise _beyond_float_range()
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
        # The first test is the common unsigned case, without the full check.
        if not (whole.isdigit() and value.isascii() and (fraction.isdigit() or not fraction)) and (
            not is_decimal_text(value)
        ):
            raise InvalidValueError("not a decimal number (digits with an optional '.')")
        number = float(value)
        # More than 308 digits before the point is infinity as a float; plain digits cannot be nan.
        if not math.isfinite(number):
            raise _beyond_float_range()
        return number
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
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    else:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:30-05:00 is after year 9999 in UTC (0001-01-01T00:30+05:00 before year 1):
            # a valid local time that datetime cannot hold in UTC.
            raise InvalidValueError("date/time is outside the years 1-9999 once converted to UTC") from None
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


_EXPECTED_CLOCK_TIME: Final = "time after the date not recognised (expected HH:MM[:SS], or h:MM[:SS] AM/PM)"


def _clock_time(text: str) -> time:
    """The time that follows a day/month/year date: ISO 8601 (a zone allowed) or a common clock form."""
    # isascii: strptime's \d takes other scripts' digits too.
    if ":" in text and text.isascii():
        try:
            return time.fromisoformat(text)
        except ValueError:
            pass
        for pattern in _CLOCK_TIME_FORMATS:
            try:
                return datetime.strptime(text, pattern).time()
            except ValueError:
                continue
    raise InvalidValueError(_EXPECTED_CLOCK_TIME)


def _numeric_date_time(text: str) -> tuple[date, time | None] | None:
    """A date of digits separated by '/', '.' or '-', alone or followed by a space and a time.

    None when the text does not start with such a date. Whatever follows the date must be a time:
    taking the date and dropping the rest would turn a time into midnight and accept trailing garbage.
    """
    date_text, _space, time_text = text.partition(" ")
    time_text = time_text.strip()  # spaces are not garbage (cells are only untrimmed with trim: false)
    for separator in ("/", ".", "-"):
        if separator not in date_text:
            continue
        try:
            day = _date_from_parts(date_text, separator)
        except InvalidValueError:
            raise
        except (ValueError, OverflowError):
            # date() raises OverflowError rather than ValueError for parts beyond a C int.
            raise InvalidValueError("not a valid calendar date") from None
        if day is not None:
            return day, (_clock_time(time_text) if time_text else None)
    return None


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
    numeric = _numeric_date_time(text)
    if numeric is not None:
        return numeric[0]  # the date as written, like an ISO date and time above
    textual = _textual_date(text)
    if textual is None:
        raise InvalidValueError("not a recognised date (expected YYYY-MM-DD)")
    return textual


def _textual_date(text: str) -> date | None:
    for pattern in _TEXTUAL_DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _datetime_from_epoch(number: float | int | Decimal, milliseconds: bool) -> datetime:
    try:
        # float() of an int too large for a float raises OverflowError, like fromtimestamp does.
        seconds = float(number) / 1000 if milliseconds else float(number)
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
        if not _is_finite(value):
            raise _not_finite()
        return _datetime_from_epoch(value, EPOCH_MILLISECONDS in formats)
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
    if text[4:5] == "/":  # strptime is slow; only year-first slashed text can match these
        for pattern in _SLASHED_DATETIME_FORMATS:
            try:
                return datetime.strptime(text, pattern)
            except ValueError:
                continue
    if "," in text and ":" in text:
        try:
            moment = email.utils.parsedate_to_datetime(text)  # RFC 2822, as HTTP and mail write it
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            # The parser reads years below 100 as 19xx/20xx, so "0001" would silently become 2001.
            if f"{moment.year:04d}" not in text:
                raise InvalidValueError("ambiguous year in an RFC 2822 date (use four digits, 100 or later)")
            return moment
    numeric = _numeric_date_time(text)
    if numeric is not None:
        day, clock = numeric
        return datetime.combine(day, clock) if clock is not None else datetime(day.year, day.month, day.day)
    # ISO text and numeric dates were tried above: only the written-out forms are left.
    written = _textual_date(text)
    if written is None:
        raise InvalidValueError(_EXPECTED_DATETIME)
    return datetime(written.year, written.month, written.day)


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
    def to_array(value: Any) -> list[str]:  # noqa: PLR0912 - runs once per cell: the branches are the accepted array spellings
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


def infer_value(value: Any) -> Any:  # noqa: PLR0912 - runs once per untyped cell: one branch per native type
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
