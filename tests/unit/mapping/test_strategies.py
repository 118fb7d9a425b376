"""Merge strategies and the write modes they produce, and what on_invalid does with bad values."""

from __future__ import annotations

import pytest

from cdpbridge.updates import AttributeWrite, WriteMode
from tests.unit.mapping.helpers import map_values, mapper_for, one_field


def test_set_replaces_the_value() -> None:
    update = map_values(one_field("{column: a, attribute: tier, strategy: set}"), a="gold")
    assert update.attributes == {"tier": AttributeWrite("gold", WriteMode.SET, "a")}


def test_add_sends_the_values_to_add_as_a_list() -> None:
    update = map_values(one_field("{column: a, attribute: tags, strategy: add, separator: ','}"), a="x,y")
    assert update.attributes == {"tags": AttributeWrite(["x", "y"], WriteMode.ADD, "a")}


def test_remove_sends_the_values_to_remove_as_a_list() -> None:
    update = map_values(one_field("{column: a, attribute: tags, type: array, strategy: remove}"), a="x")
    assert update.attributes == {"tags": AttributeWrite(["x"], WriteMode.REMOVE, "a")}


def test_add_with_nothing_to_add_writes_nothing() -> None:
    update = map_values(one_field("{column: a, attribute: tags, strategy: add}"), a="[]")
    assert update.attributes == {} and update.issues == []


def test_sum_increments_by_a_whole_number() -> None:
    update = map_values(one_field("{column: a, attribute: points, strategy: sum}"), a="-5")
    assert update.attributes == {"points": AttributeWrite(-5, WriteMode.INCREMENT, "a")}


def test_sum_by_zero_is_no_change() -> None:
    update = map_values(one_field("{column: a, attribute: points, type: integer, strategy: sum}"), a="0")
    assert update.attributes == {}


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (
            "2.5",
            "sum needs a whole number (Braze increments integers): "
            "not a whole number (has a fractional part)",
        ),
        ("lots", "sum needs a whole number (Braze increments integers): not an integer"),
    ],
)
def test_sum_refuses_decimals_and_non_numbers_with_the_reason(cell: str, reason: str) -> None:
    update = map_values(one_field("{column: a, attribute: points, strategy: sum}"), a=cell)
    assert update.attributes == {}
    assert [issue.reason for issue in update.issues] == [reason]


def test_set_if_empty_asks_for_a_write_only_when_braze_has_no_value() -> None:
    update = map_values(one_field("{column: a, attribute: source, strategy: set_if_empty}"), a="web")
    assert update.attributes == {"source": AttributeWrite("web", WriteMode.SET_IF_EMPTY, "a")}
    assert map_values(one_field("{column: a, strategy: set_if_empty}"), a="").attributes == {}


def test_clear_sets_a_value_and_unsets_on_empty() -> None:
    mapper = one_field("{column: a, attribute: coupon, strategy: clear}")
    assert map_values(mapper, a="SAVE10").attributes == {
        "coupon": AttributeWrite("SAVE10", WriteMode.SET, "a")
    }
    assert map_values(mapper, a="").attributes == {"coupon": AttributeWrite(None, WriteMode.UNSET, "a")}
    assert map_values(mapper).attributes == {"coupon": AttributeWrite(None, WriteMode.UNSET, "a")}


def test_merge_objects_merges_the_partial_object() -> None:
    update = map_values(
        one_field("{column: a, attribute: prefs, type: object, merge_objects: true}"), a='{"k": 1}'
    )
    assert update.attributes == {"prefs": AttributeWrite({"k": 1}, WriteMode.MERGE, "a")}


def test_merge_objects_with_clear_unsets_on_empty() -> None:
    mapper = one_field("{column: a, attribute: prefs, merge_objects: true, strategy: clear}")
    assert map_values(mapper, a="").attributes == {"prefs": AttributeWrite(None, WriteMode.UNSET, "a")}
    assert map_values(mapper, a='{"k": 1}').attributes["prefs"].mode is WriteMode.MERGE


def test_an_object_field_without_merge_replaces_the_object() -> None:
    update = map_values(one_field("{column: a, attribute: prefs, type: object}"), a='{"k": 1}')
    assert update.attributes["prefs"].mode is WriteMode.SET


# ----------------------------------------------------------------------------------- on_invalid


TWO_FIELDS = "fields:\n  - {column: n, type: integer}\n  - {column: s}\n"


def test_reject_row_keeps_the_issue_and_rejects_the_row() -> None:
    # Given the default on_invalid (reject_row) and a row with one bad value
    update = map_values(mapper_for(TWO_FIELDS), n="x", s="ok")
    # Then the row is rejected and the issue names the column
    assert update.rejected is True
    assert [(issue.column, issue.reason) for issue in update.issues] == [("n", "not an integer")]
    assert update.issues[0].position.row == 1


def test_skip_field_drops_only_the_bad_value_and_still_reports_it() -> None:
    # Given on_invalid: skip_field and a row with one bad value
    update = map_values(mapper_for(TWO_FIELDS + "on_invalid: skip_field\n"), n="x", s="ok")
    # Then the good value is written, the bad one is reported, and the row is not rejected
    assert update.rejected is False
    assert update.attributes == {"s": AttributeWrite("ok", WriteMode.SET, "s")}
    assert [(issue.column, issue.reason) for issue in update.issues] == [("n", "not an integer")]


def test_a_clean_row_has_no_issues_and_is_not_rejected() -> None:
    update = map_values(mapper_for(TWO_FIELDS), n="3", s="ok")
    assert update.issues == [] and update.rejected is False


EXTREMES = """
fields:
  - {column: seen, type: datetime}
  - {column: score, type: decimal}
  - {column: visits, type: integer}
  - {column: tier}
"""
GOOD_ROW = {"seen": "2024-05-13T14:30:00Z", "score": "1.5", "visits": "3", "tier": "gold"}


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [
        ("seen", "9999-12-31T23:30:00-05:00", "date/time is outside the years 1-9999 once converted to UTC"),
        ("seen", "0001-01-01T00:30:00+05:00", "date/time is outside the years 1-9999 once converted to UTC"),
        (
            "seen",
            "13/05/2024 garbage",
            "time after the date not recognised (expected HH:MM[:SS], or h:MM[:SS] AM/PM)",
        ),
        ("score", "9" * 400, "number beyond the range of a 64-bit float (about 1.8e308)"),
        ("visits", "9" * 5000, "integer outside the 64-bit range Braze stores"),
    ],
)
def test_an_extreme_cell_rejects_its_row_and_leaves_the_other_cells_and_rows_alone(
    column: str, cell: str, reason: str
) -> None:
    # Given one mapper and a bad cell in the middle row of three
    mapper = mapper_for(EXTREMES)
    rows = [dict(GOOD_ROW, id="u1"), dict(GOOD_ROW, id="u2", **{column: cell}), dict(GOOD_ROW, id="u3")]
    # When every row is mapped (mapping must not raise)
    first, bad, last = (map_values(mapper, **row) for row in rows)
    # Then the bad cell is one issue on its row, which is rejected
    assert bad.rejected is True
    assert [(issue.column, issue.reason) for issue in bad.issues] == [(column, reason)]
    assert column not in bad.attributes
    # And its other cells still converted, and the rows around it are untouched
    assert set(bad.attributes) == set(GOOD_ROW) - {column}
    expected = {"seen": "2024-05-13T14:30:00Z", "score": 1.5, "visits": 3, "tier": "gold"}
    for update in (first, last):
        assert update.issues == [] and update.rejected is False
        assert {name: write.value for name, write in update.attributes.items()} == expected


def test_with_skip_field_an_extreme_cell_is_reported_and_the_rest_of_the_row_is_written() -> None:
    mapper = mapper_for(EXTREMES + "on_invalid: skip_field\n")
    update = map_values(mapper, **dict(GOOD_ROW, seen="9999-12-31T23:30:00-05:00"))
    assert update.rejected is False
    assert [issue.column for issue in update.issues] == ["seen"]
    assert {name: write.value for name, write in update.attributes.items()} == {
        "score": 1.5,
        "visits": 3,
        "tier": "gold",
    }


def test_every_invalid_value_of_a_row_is_reported() -> None:
    update = map_values(
        mapper_for("fields: [{column: a, type: integer}, {column: b, type: float}]"), a="x", b="y"
    )
    assert [issue.column for issue in update.issues] == ["a", "b"]


def test_repeated_values_map_to_equal_writes_whether_remembered_or_not() -> None:
    # Given a field whose values repeat, mapped well past the size of the per-field memo
    mapper = one_field("{column: a, attribute: country}")
    cells = ["Germany", "DE", "Atlantis"] * 3000
    # When every row is mapped
    updates = [map_values(mapper, a=cell) for cell in cells]
    # Then each value always maps the same way
    assert {update.attributes["country"].value for update in updates[0::3]} == {"DE"}
    assert {update.attributes["country"].value for update in updates[1::3]} == {"DE"}
    assert {issue.reason for update in updates[2::3] for issue in update.issues} == {
        "unknown country (expected an ISO 3166-1 code or an English name)"
    }
    assert all(not update.issues for update in updates[0::3])


def test_unique_values_past_the_memo_size_still_map_correctly() -> None:
    mapper = one_field("{column: a, type: integer}")
    values = [map_values(mapper, a=str(number)).attributes["a"].value for number in range(10_000)]
    assert values == list(range(10_000))
