"""Every field type through the mapper: valid values, invalid values, null/empty/nan, leading zeros."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from cdpbridge.updates import WriteMode
from tests.unit.mapping.helpers import map_values, one_field


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
    ],
)
def test_integer_refuses_anything_else(cell: str, reason: str) -> None:
    assert refused("{column: a, type: integer}", cell) == reason


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
    for cell in ("inf", "-Infinity", "1e400"):
        assert refused("{column: a, type: float}", cell) == "not a finite number (nan or infinity)"
    assert refused("{column: a, type: float}", float("inf")) == "not a finite number (nan or infinity)"
    assert refused("{column: a, type: float}", "1,5") == "not a number"


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
    for cell in ("1e3", "1,5", "12.3.4", "abc", "-", "."):
        assert (
            refused("{column: a, type: decimal}", cell)
            == "not a decimal number (digits with an optional '.')"
        )


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
