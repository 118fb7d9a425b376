"""Every field type through the mapper: valid values, invalid values, null/empty/nan, leading zeros."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from cdpbridge.mapping import STANDARD_FIELDS
from cdpbridge.updates import WriteMode
from tests.unit.mapping.helpers import map_values, mapper_for, one_field

OUT_OF_INT64 = "integer outside the 64-bit range Braze stores"
NOT_FINITE = "not a finite number (nan or infinity)"
BEYOND_FLOAT = "number beyond the range of a 64-bit float (about 1.8e308)"
OUTSIDE_UTC_YEARS = "date/time is outside the years 1-9999 once converted to UTC"
EXPECTED_TIME = "time after the date not recognised (expected HH:MM[:SS], or h:MM[:SS] AM/PM)"
# 9999-12-31T23:30 at UTC-5 is 10000-01-01T04:30 in UTC; 0001-01-01T00:30 at UTC+5 is year 0 in UTC.
AFTER_YEAR_9999 = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
BEFORE_YEAR_1 = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5)))


def written(spec: str, value: Any, extra: str = "") -> Any:
    """The value a single field writes for one cell (asserting there was no issue)."""
    update = map_values(one_field(spec, extra), a=value)
    assert update.issues == [], update.issues
    return update.attributes["a"].value


def refused(spec: str, value: Any) -> str:
    """The reason a single field gives for refusing one cell."""
    update = map_values(one_field(spec), a=value)
    assert "a" not in update.attributes
    assert len(update.issues) == 1, update.issues
    issue = update.issues[0]
    assert issue.column == "a"
    return issue.reason


# ---------------------------------------------------------------------------------------- strings


@pytest.mark.parametrize("field_type", ["string", "varchar"])
def test_text_types_keep_text_as_written_including_leading_zeros(field_type: str) -> None:
    assert written(f"{{column: a, type: {field_type}}}", "0123") == "0123"
    assert written(f"{{column: a, type: {field_type}}}", "  Köln  ") == "Köln"


@pytest.mark.parametrize("field_type", ["string", "varchar"])
def test_text_longer_than_255_characters_is_invalid_not_truncated(field_type: str) -> None:
    assert written(f"{{column: a, type: {field_type}}}", "x" * 255) == "x" * 255
    assert refused(f"{{column: a, type: {field_type}}}", "x" * 256) == "longer than 255 characters"


@pytest.mark.parametrize(
    "spec", ["{column: a, type: 'varchar(5)'}", "{column: a, type: varchar, max_length: 5}"]
)
def test_a_varchar_longer_than_its_declared_length_in_characters_is_invalid(spec: str) -> None:
    # Five characters are within varchar(5) however many bytes they take in UTF-8
    assert written(spec, "Zoë's") == "Zoë's"
    assert written(spec, "日本語です") == "日本語です"
    assert refused(spec, "Zoë's!") == "longer than its declared length of 5 characters"
    # A native value is measured as the text it is sent as
    assert written(spec, 12345) == "12345"
    assert refused(spec, 123456) == "longer than its declared length of 5 characters"


def test_a_declared_length_applies_to_a_standard_field_before_its_own_rules() -> None:
    update = map_values(one_field("{column: fn, attribute: first_name, type: 'varchar(3)'}"), fn="Anna")
    assert "first_name" not in update.attributes
    assert [issue.reason for issue in update.issues] == ["longer than its declared length of 3 characters"]
    assert (
        map_values(one_field("{column: fn, attribute: first_name, type: 'varchar(3)'}"), fn="Ana").issues
        == []
    )


def test_a_declared_length_applies_to_event_properties() -> None:
    mapper = mapper_for(
        "events:\n  - {name: seen, time_column: at, properties: {code: {column: c, type: 'varchar(2)'}}}\n"
    )
    update = map_values(mapper, at="2026-01-01T00:00:00Z", c="abc")
    assert [issue.reason for issue in update.issues] == [
        "property 'code': longer than its declared length of 2 characters"
    ]


def test_native_scalars_become_text_for_a_string_field() -> None:
    assert written("{column: a, type: string}", 12345) == "12345"
    assert written("{column: a, type: string}", True) == "true"
    assert written("{column: a, type: string}", 1.5) == "1.5"
    assert refused("{column: a, type: string}", ["x"]) == "expected text, got a list"


def test_untyped_text_is_never_guessed_to_be_a_number() -> None:
    # Given an untyped custom attribute and CSV text that looks numeric
    # Then the text is kept, zeros and all
    assert written("{column: a}", "0123") == "0123"
    assert written("{column: a}", "1e5") == "1e5"
    assert written("{column: a}", "true") == "true"


def test_untyped_native_values_keep_their_json_type() -> None:
    assert written("{column: a}", 42) == 42
    assert written("{column: a}", 2.5) == 2.5
    assert written("{column: a}", False) is False
    assert written("{column: a}", ["x", 2]) == ["x", "2"]
    assert written("{column: a}", {"k": 1}) == {"k": 1}
    assert written("{column: a}", Decimal("9.95")) == 9.95
    assert written("{column: a}", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    assert written("{column: a}", date(2024, 1, 2)) == "2024-01-02"
    assert refused("{column: a}", float("nan")) == "not a finite number (nan or infinity)"
    assert refused("{column: a}", b"\x00") == "cannot be sent to Braze: binary data"


# --------------------------------------------------------------------------------------- integers


@pytest.mark.parametrize(
    ("cell", "expected"), [("42", 42), ("-7", -7), ("+3", 3), ("0042", 42), ("12.0", 12)]
)
def test_integer_accepts_whole_numbers(cell: str, expected: int) -> None:
    assert written("{column: a, type: integer}", cell) == expected


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1.5", "not a whole number (has a fractional part)"),
        ("abc", "not an integer"),
        ("1_000", "not an integer"),
        ("١٢", "not an integer"),
        ("1e3", "not an integer"),
        ("9223372036854775808", "integer outside the 64-bit range Braze stores"),
        # int() itself refuses text of more than 4,300 digits (with a ValueError of its own).
        ("9" * 5000, OUT_OF_INT64),
        ("-" + "9" * 5000, OUT_OF_INT64),
        ("9" * 5000 + ".0", OUT_OF_INT64),
        ("1e400", "not an integer"),
        ("inf", "not an integer"),
        ("-Infinity", "not an integer"),
    ],
)
def test_integer_refuses_anything_else(cell: str, reason: str) -> None:
    assert refused("{column: a, type: integer}", cell) == reason


def test_integer_refuses_nan_text_once_it_is_not_a_null_value() -> None:
    update = map_values(one_field("{column: a, type: integer}", 'null_values: [""]'), a="nan")
    assert [issue.reason for issue in update.issues] == ["not an integer"]


def test_integer_range_is_checked_for_native_decimals_and_floats() -> None:
    assert written("{column: a, type: integer}", Decimal("9223372036854775807")) == 2**63 - 1
    assert refused("{column: a, type: integer}", Decimal("1e19")) == OUT_OF_INT64
    assert refused("{column: a, type: integer}", Decimal("1e999999")) == OUT_OF_INT64
    assert refused("{column: a, type: integer}", 1e300) == OUT_OF_INT64
    assert refused("{column: a, type: integer}", 10**400) == OUT_OF_INT64
    assert refused("{column: a, type: integer}", Decimal("sNaN")) == NOT_FINITE


def test_integer_from_native_values() -> None:
    assert written("{column: a, type: integer}", 7) == 7
    assert written("{column: a, type: integer}", 7.0) == 7
    assert refused("{column: a, type: integer}", 7.5) == "not a whole number (has a fractional part)"
    assert refused("{column: a, type: integer}", True) == "expected an integer, got a boolean"


# ------------------------------------------------------------------------------- floats, decimals


def test_float_accepts_numbers_and_refuses_nan_and_infinity() -> None:
    assert written("{column: a, type: float}", "2.5") == 2.5
    assert written("{column: a, type: float}", "-1e3") == -1000.0
    assert written("{column: a, type: float}", 3) == 3.0
    assert written("{column: a, type: float}", "1.7976931348623157e308") == 1.7976931348623157e308
    for cell in ("inf", "-Infinity", "+infinity"):
        assert refused("{column: a, type: float}", cell) == NOT_FINITE
    assert refused("{column: a, type: float}", float("inf")) == NOT_FINITE
    assert refused("{column: a, type: float}", "1,5") == "not a number"


@pytest.mark.parametrize("cell", ["1e400", "-1e400", "9" * 400, "2e308"])
def test_float_text_that_overflows_to_infinity_is_refused_as_out_of_range(cell: str) -> None:
    # JSON has no infinity: it would go out as null, which unsets the attribute.
    assert refused("{column: a, type: float}", cell) == BEYOND_FLOAT


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(10**400, BEYOND_FLOAT, id="int-1e400"),  # float() raises OverflowError for it
        pytest.param(-(10**400), BEYOND_FLOAT, id="int--1e400"),
        (Decimal("1e400"), BEYOND_FLOAT),  # float() turns it into infinity
        (Decimal("NaN"), NOT_FINITE),
        (Decimal("sNaN"), NOT_FINITE),  # float() raises ValueError for a signalling NaN
        (Decimal("-Infinity"), NOT_FINITE),
        (float("nan"), NOT_FINITE),
    ],
)
def test_float_refuses_native_numbers_outside_the_float_range(value: Any, reason: str) -> None:
    assert refused("{column: a, type: float}", value) == reason


def test_nan_is_refused_by_a_float_field_once_it_is_not_a_null_value() -> None:
    # Given a float field and null values that no longer include nan
    update = map_values(one_field("{column: a, type: float}", 'null_values: [""]'), a="nan")
    # Then nan is an invalid value, never a float
    assert "a" not in update.attributes
    assert [issue.reason for issue in update.issues] == ["not a finite number (nan or infinity)"]


def test_decimal_is_validated_as_decimal_text_and_sent_as_a_number() -> None:
    assert written("{column: a, type: decimal}", "19.99") == 19.99
    assert written("{column: a, type: decimal}", "-0.5") == -0.5
    assert written("{column: a, type: decimal}", ".5") == 0.5
    assert written("{column: a, type: decimal}", Decimal("1.25")) == 1.25
    for cell in ("1e3", "1,5", "12.3.4", "abc", "-", ".", "inf", "-Infinity", "1e400"):
        assert (
            refused("{column: a, type: decimal}", cell)
            == "not a decimal number (digits with an optional '.')"
        )


@pytest.mark.parametrize("cell", ["9" * 400, "-" + "9" * 400, "+" + "9" * 309 + ".5", "1" + "0" * 309])
def test_decimal_text_too_long_for_a_float_is_refused_not_sent_as_infinity(cell: str) -> None:
    assert refused("{column: a, type: decimal}", cell) == BEYOND_FLOAT


def test_decimal_keeps_long_text_that_is_still_within_the_float_range() -> None:
    assert written("{column: a, type: decimal}", "1" + "0" * 308) == 1e308
    assert written("{column: a, type: decimal}", "0." + "9" * 400) == 1.0  # rounded, still finite
    assert refused("{column: a, type: decimal}", 10**400) == BEYOND_FLOAT
    assert refused("{column: a, type: decimal}", Decimal("sNaN")) == NOT_FINITE


# --------------------------------------------------------------------------------------- booleans


@pytest.mark.parametrize("cell", ["true", "TRUE", "t", "yes", "Y", "1", "on"])
def test_boolean_true_spellings(cell: str) -> None:
    assert written("{column: a, type: boolean}", cell) is True


@pytest.mark.parametrize("cell", ["false", "F", "no", "n", "0", "Off"])
def test_boolean_false_spellings(cell: str) -> None:
    assert written("{column: a, type: boolean}", cell) is False


def test_boolean_custom_values_replace_the_defaults() -> None:
    spec = "{column: a, type: boolean, true_values: [ja], false_values: [nein]}"
    assert written(spec, "Ja") is True
    assert written(spec, "nein") is False
    assert refused(spec, "yes") == "not a recognised boolean (see true_values/false_values)"


def test_boolean_from_native_values() -> None:
    assert written("{column: a, type: boolean}", True) is True
    assert written("{column: a, type: boolean}", 0) is False
    assert refused("{column: a, type: boolean}", 2) == "expected a boolean, got a number"


# ------------------------------------------------------------------------------------ dates, times


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-02-29", "2024-02-29"),
        ("20240229", "2024-02-29"),
        ("2024/02/29", "2024-02-29"),
        ("29.02.2024", "2024-02-29"),
        ("29/02/2024", "2024-02-29"),
        ("02/29/2024", "2024-02-29"),
        ("2024-02-29T23:30:00+05:00", "2024-02-29"),
        ("29 February 2024", "2024-02-29"),
        ("Feb 29, 2024", "2024-02-29"),
    ],
)
def test_date_accepts_iso_and_unambiguous_common_forms(cell: str, expected: str) -> None:
    assert written("{column: a, type: date}", cell) == expected


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("03/04/2024", "ambiguous day/month order; set `format` (e.g. %d/%m/%Y)"),
        ("2024-02-30", "not a valid calendar date"),
        ("01/02/24", "two-digit years are ambiguous; use a four-digit year or set `format`"),
        ("yesterday", "not a recognised date (expected YYYY-MM-DD)"),
    ],
)
def test_date_refuses_ambiguous_and_impossible_dates(cell: str, reason: str) -> None:
    assert refused("{column: a, type: date}", cell) == reason


def test_date_format_settles_the_day_month_order() -> None:
    assert written("{column: a, type: date, format: '%d/%m/%Y'}", "03/04/2024") == "2024-04-03"
    assert written("{column: a, type: date, format: ['%m/%d/%Y', '%Y']}", "03/04/2024") == "2024-03-04"
    assert refused("{column: a, type: date, format: '%d/%m/%Y'}", "2024-04-03") == (
        "does not match the configured date format"
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-01-31T10:15:00Z", "2024-01-31T10:15:00Z"),
        ("2024-01-31T10:15:00", "2024-01-31T10:15:00Z"),
        ("2024-01-31 10:15", "2024-01-31T10:15:00Z"),
        ("2024-01-31T11:15:00+01:00", "2024-01-31T10:15:00Z"),
        ("2024-01-31T10:15:00.250Z", "2024-01-31T10:15:00.250000Z"),
        ("2024-01-31", "2024-01-31T00:00:00Z"),
        ("2024/01/31 10:15:00", "2024-01-31T10:15:00Z"),
        ("Wed, 31 Jan 2024 10:15:00 +0000", "2024-01-31T10:15:00Z"),
    ],
)
def test_datetime_is_sent_as_iso_8601_in_utc_and_no_zone_means_utc(cell: str, expected: str) -> None:
    assert written("{column: a, type: datetime}", cell) == expected


def test_datetime_from_native_values_and_epoch_formats() -> None:
    berlin = timezone(timedelta(hours=1))
    assert written("{column: a, type: datetime}", datetime(2024, 1, 31, 11, 15, tzinfo=berlin)) == (
        "2024-01-31T10:15:00Z"
    )
    assert written("{column: a, type: datetime}", datetime(2024, 1, 31, 10, 15)) == "2024-01-31T10:15:00Z"
    assert written("{column: a, type: datetime}", 1706696100) == "2024-01-31T10:15:00Z"
    assert written("{column: a, type: datetime, format: epoch}", "1706696100") == "2024-01-31T10:15:00Z"
    assert written("{column: a, type: datetime, format: epoch_ms}", "1706696100000") == "2024-01-31T10:15:00Z"
    assert written("{column: a, type: datetime, format: '%d.%m.%Y %H:%M'}", "31.01.2024 10:15") == (
        "2024-01-31T10:15:00Z"
    )


def test_datetime_refuses_unparseable_text() -> None:
    assert refused("{column: a, type: datetime}", "soon") == "not a recognised date/time (expected ISO 8601)"
    assert refused("{column: a, type: datetime}", True) == "expected a date and time, got a boolean"


@pytest.mark.parametrize(
    "cell",
    [
        "9999-12-31T23:30:00-05:00",
        "0001-01-01T00:30:00+05:00",
        "9999-12-31 23:30-05:00",
        "Fri, 31 Dec 9999 23:30:00 -0500",
        "31/12/9999 23:30-05:00",
    ],
)
def test_datetime_whose_utc_moment_falls_outside_years_1_to_9999_is_invalid(cell: str) -> None:
    assert refused("{column: a, type: datetime}", cell) == OUTSIDE_UTC_YEARS


def test_datetime_at_the_edges_of_the_range_is_still_written() -> None:
    assert written("{column: a, type: datetime}", "9999-12-31T23:30:00Z") == "9999-12-31T23:30:00Z"
    assert written("{column: a, type: datetime}", "9999-12-31T18:59:59-05:00") == "9999-12-31T23:59:59Z"
    assert written("{column: a, type: datetime}", "0001-01-01T05:30:00+05:00") == "0001-01-01T00:30:00Z"


def test_datetime_out_of_utc_range_is_invalid_with_a_format_and_for_native_values() -> None:
    with_zone = "{column: a, type: datetime, format: '%Y-%m-%dT%H:%M:%S%z'}"
    assert refused(with_zone, "9999-12-31T23:30:00-0500") == OUTSIDE_UTC_YEARS
    assert refused("{column: a, type: datetime}", AFTER_YEAR_9999) == OUTSIDE_UTC_YEARS
    assert refused("{column: a, type: datetime}", BEFORE_YEAR_1) == OUTSIDE_UTC_YEARS


@pytest.mark.parametrize("spec", ["{column: a, type: string}", "{column: a}"])
def test_native_datetimes_out_of_utc_range_are_invalid_for_text_and_untyped_fields(spec: str) -> None:
    assert refused(spec, AFTER_YEAR_9999) == OUTSIDE_UTC_YEARS


def test_a_date_field_keeps_the_date_as_written_even_at_the_end_of_the_range() -> None:
    assert written("{column: a, type: date}", "9999-12-31T23:30:00-05:00") == "9999-12-31"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(10**400, "epoch timestamp out of range", id="int-1e400"),  # float() raises for it
        (Decimal("1e400"), "epoch timestamp out of range"),
        (Decimal("sNaN"), NOT_FINITE),
        (float("-inf"), NOT_FINITE),
    ],
)
def test_datetime_from_native_numbers_outside_the_epoch_range_is_invalid(value: Any, reason: str) -> None:
    assert refused("{column: a, type: datetime}", value) == reason
    assert refused("{column: a, type: datetime, format: epoch_ms}", value) == reason


def test_epoch_text_too_long_for_a_float_is_out_of_range() -> None:
    assert refused("{column: a, type: datetime, format: epoch}", "9" * 400) == "epoch timestamp out of range"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("13/05/2024 14:30", "2024-05-13T14:30:00Z"),
        ("05/13/2024 2:30 PM", "2024-05-13T14:30:00Z"),
        ("05/13/2024 2:30pm", "2024-05-13T14:30:00Z"),
        ("13.05.2024 14:30:00", "2024-05-13T14:30:00Z"),
        ("13-05-2024 14:30", "2024-05-13T14:30:00Z"),
        ("1.5.2024 9:05", "2024-05-01T09:05:00Z"),
        ("13/05/2024 12:05:09 AM", "2024-05-13T00:05:09Z"),
        ("13/05/2024 14:30:00.250", "2024-05-13T14:30:00.250000Z"),
        ("13/05/2024 14:30+02:00", "2024-05-13T12:30:00Z"),
        ("2024/05/13 2:30 PM", "2024-05-13T14:30:00Z"),
        ("2024-05-13 2:30 PM", "2024-05-13T14:30:00Z"),
        ("13/05/2024", "2024-05-13T00:00:00Z"),
    ],
)
def test_datetime_day_first_and_month_first_forms_keep_their_time(cell: str, expected: str) -> None:
    assert written("{column: a, type: datetime}", cell) == expected


@pytest.mark.parametrize(
    "cell",
    [
        "13/05/2024 garbage",
        "13.05.2024 14:30 Uhr",
        "2024/05/13 garbage",
        "2024-05-13 garbage",
        "13/05/2024 14",
        "13/05/2024 25:00",
        "13/05/2024 14:30 PM",
        "13/05/2024 14h30",
        "13/05/2024 ١٤:٣٠",
    ],
)
def test_datetime_refuses_a_date_followed_by_anything_but_a_time(cell: str) -> None:
    assert refused("{column: a, type: datetime}", cell) == EXPECTED_TIME


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("03/04/2024 14:30", "ambiguous day/month order; set `format` (e.g. %d/%m/%Y)"),
        ("31/02/2024 14:30", "not a valid calendar date"),
        ("2024/99999999999999999999/01 10:00", "not a valid calendar date"),  # date() overflows
        ("99999999999999999999/05/2024", "not a valid calendar date"),
        (
            "Mon, 01 Jan 0001 00:30:00 +0000",
            "ambiguous year in an RFC 2822 date (use four digits, 100 or later)",
        ),
    ],
)
def test_datetime_names_what_is_wrong_with_the_date_part(cell: str, reason: str) -> None:
    assert refused("{column: a, type: datetime}", cell) == reason


def test_a_time_around_the_date_is_kept_when_cells_are_not_trimmed() -> None:
    mapper = one_field("{column: a, type: datetime}", "trim: false")
    update = map_values(mapper, a="13/05/2024 14:30 ")
    assert update.issues == []
    assert update.attributes["a"].value == "2024-05-13T14:30:00Z"


def test_a_date_field_takes_a_day_first_date_and_time_but_not_trailing_garbage() -> None:
    assert written("{column: a, type: date}", "13/05/2024 14:30") == "2024-05-13"
    assert written("{column: a, type: date}", "05/13/2024 2:30 PM") == "2024-05-13"
    assert refused("{column: a, type: date}", "13/05/2024 garbage") == EXPECTED_TIME
    assert refused("{column: a, type: date}", "29.02.2024 foo") == EXPECTED_TIME
    assert refused("{column: a, type: date}", "2024/99999999999999999999/01") == "not a valid calendar date"


# Cells that once made a converter raise something other than an invalid value (which would end the
# run) or pass a non-finite number (which JSON sends as null).
HOSTILE_CELLS: tuple[Any, ...] = (
    "9999-12-31T23:30:00-05:00",
    "0001-01-01T00:30:00+05:00",
    "Fri, 31 Dec 9999 23:30:00 -0500",
    "Fri, 31 Dec 99999999999 23:30:00 -0500",
    "13/05/2024 garbage",
    "2024/99999999999999999999/01",
    "99999999999999999999/05/2024",
    "9" * 400,
    "9" * 5000,
    "." + "9" * 400,
    "1e400",
    "-Infinity",
    10**400,
    -(10**400),
    Decimal("1e400"),
    Decimal("sNaN"),
    Decimal("NaN"),
    Decimal("1e999999"),
    float("nan"),
    float("inf"),
    AFTER_YEAR_9999,
    BEFORE_YEAR_1,
    [10**400],
    [Decimal("sNaN")],
    [AFTER_YEAR_9999],
)


@pytest.mark.parametrize(
    "spec",
    [
        "{column: a}",
        "{column: a, type: string}",
        "{column: a, type: integer}",
        "{column: a, type: float}",
        "{column: a, type: decimal}",
        "{column: a, type: boolean}",
        "{column: a, type: date}",
        "{column: a, type: datetime}",
        "{column: a, type: datetime, format: epoch_ms}",
        "{column: a, type: datetime, format: '%Y-%m-%dT%H:%M:%S%z'}",
        "{column: a, type: array, separator: ','}",
        "{column: a, type: object}",
        "{column: a, type: integer, strategy: sum}",
        *(f"{{column: a, attribute: {name}}}" for name in STANDARD_FIELDS),
    ],
)
def test_hostile_cells_become_issues_or_finite_values_never_exceptions(spec: str) -> None:
    mapper = one_field(spec, "default_country_code: '+49'")
    for cell in HOSTILE_CELLS:
        update = map_values(mapper, a=cell)
        for write in update.attributes.values():
            assert not (isinstance(write.value, float) and not math.isfinite(write.value)), (spec, cell)
        assert update.attributes or update.issues, (spec, cell)


# ------------------------------------------------------------------------------- arrays, objects


def test_array_reads_a_json_array_cell() -> None:
    assert written("{column: a, type: array}", '["red", "blue", 3, "red"]') == ["red", "blue", "3"]


def test_array_splits_plain_cells_on_the_separator_and_drops_empty_elements() -> None:
    assert written("{column: a, type: array, separator: ';'}", "red; blue;;null; red") == ["red", "blue"]


def test_array_without_separator_takes_a_plain_cell_as_one_element() -> None:
    assert written("{column: a, type: array}", "red,blue") == ["red,blue"]


def test_array_from_native_list_and_limits() -> None:
    assert written("{column: a, type: array}", ["a", None, 2]) == ["a", "2"]
    assert refused("{column: a, type: array}", "[1, 2") == "starts with '[' but is not a valid JSON array"
    assert (
        refused("{column: a, type: array}", '[{"x": 1}]')
        == "array elements must be text or numbers, got an object"
    )
    assert refused("{column: a, type: array, max_items: 2}", "[1, 2, 3]") == "more than 2 array elements"
    assert refused("{column: a, type: array}", f'["{"x" * 256}"]') == (
        "an array element is longer than 255 characters"
    )


def test_a_set_array_may_be_explicitly_empty() -> None:
    assert written("{column: a, type: array}", "[]") == []


def test_object_reads_a_json_object_cell_up_to_100_kb() -> None:
    assert written("{column: a, type: object}", '{"size": "M", "n": 2}') == {"size": "M", "n": 2}
    assert written("{column: a, type: object}", {"nested": {"k": [1]}}) == {"nested": {"k": [1]}}
    assert refused("{column: a, type: object}", "size=M") == "expected a JSON object ('{...}')"
    assert refused("{column: a, type: object}", "{oops") == "not a valid JSON object"
    big = '{"k": "' + "x" * 100_000 + '"}'
    assert refused("{column: a, type: object}", big) == "nested object larger than 100 KB"


# ------------------------------------------------------------------------------ null, empty, nan


@pytest.mark.parametrize("cell", [None, "", "   ", "null", "NULL", "nan", "NaN", "None"])
def test_empty_and_null_values_write_nothing_with_strategy_set(cell: Any) -> None:
    for spec in (
        "{column: a}",
        "{column: a, type: float}",
        "{column: a, type: integer}",
        "{column: a, type: date}",
    ):
        update = map_values(one_field(spec), a=cell)
        assert update.attributes == {} and update.issues == []


def test_a_missing_column_writes_nothing() -> None:
    update = map_values(one_field("{column: a, type: integer}"))
    assert update.attributes == {} and update.issues == []


@pytest.mark.parametrize("cell", [None, "", "nan", "null"])
def test_empty_and_null_values_unset_with_strategy_clear(cell: Any) -> None:
    update = map_values(one_field("{column: a, type: float, strategy: clear}"), a=cell)
    write = update.attributes["a"]
    assert write.mode is WriteMode.UNSET and write.value is None


def test_null_values_are_configurable_and_compared_after_trimming() -> None:
    mapper = one_field("{column: a}", 'null_values: ["-", "n/a"]')
    assert map_values(mapper, a=" n/a ").attributes == {}
    assert map_values(mapper, a="-").attributes == {}
    assert map_values(mapper, a="null").attributes["a"].value == "null"


def test_trimming_can_be_turned_off() -> None:
    assert written("{column: a}", "  padded ", "trim: false") == "  padded "
