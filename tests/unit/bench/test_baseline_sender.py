"""The baseline sender's reading of a CSV: the simple typing a generic import does."""

from __future__ import annotations

from pathlib import Path

from baseline_sender import attribute_objects, cast_value


def test_plain_numbers_and_booleans_are_cast_and_everything_else_stays_text() -> None:
    assert cast_value("42") == 42
    assert cast_value("-3.25") == -3.25
    assert cast_value("TRUE") is True
    assert cast_value("false") is False
    # A phone number and a zip code with a leading zero stay text, as Braze must receive them.
    assert cast_value("+4915000000001") == "+4915000000001"
    assert cast_value("01234") == "01234"
    assert cast_value("2026-01-01") == "2026-01-01"
    assert cast_value("1e5") == "1e5"


def test_each_row_becomes_one_object_with_every_non_empty_column(tmp_path: Path) -> None:
    # Given a file with an id column and an empty cell
    path = tmp_path / "users.csv"
    path.write_text("customer_id,tier,points\nC1,gold,10\nC2,,7\n")
    # Then the id becomes external_id and every other non-empty column an attribute
    assert list(attribute_objects(path, "customer_id")) == [
        {"external_id": "C1", "tier": "gold", "points": 10},
        {"external_id": "C2", "points": 7},
    ]
