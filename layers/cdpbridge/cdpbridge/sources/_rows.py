"""Building a SourceRow and its RowPosition at the speed the per-row budget needs.

RowPosition is a frozen dataclass: its generated __init__ goes through object.__setattr__ once
per field, which costs more than parsing a short CSV row. ``make_row`` fills the same slots
through their descriptors instead; the objects are identical (same class, equal, same hash). If
either class ever gains a field or a __post_init__, the plain constructors are used instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from cdpbridge.records import RowPosition, SourceRow

MakeRow = Callable[[str, int, int, int, dict[str, Any]], SourceRow]


def _plain_make_row(
    source: str, row: int, offset: int, block_index: int, values: dict[str, Any]
) -> SourceRow:
    return SourceRow(RowPosition(source, row, offset, block_index), values)


def _slot_make_row() -> MakeRow:
    new = object.__new__
    position_slots = RowPosition.__dict__
    set_source = position_slots["source"].__set__
    set_row = position_slots["row"].__set__
    set_offset = position_slots["offset"].__set__
    set_block_index = position_slots["block_index"].__set__
    row_slots = SourceRow.__dict__
    set_position = row_slots["position"].__set__
    set_values = row_slots["values"].__set__

    def make_row(source: str, row: int, offset: int, block_index: int, values: dict[str, Any]) -> SourceRow:
        position = new(RowPosition)
        set_source(position, source)
        set_row(position, row)
        set_offset(position, offset)
        set_block_index(position, block_index)
        item = new(SourceRow)
        set_position(item, position)
        set_values(item, values)
        return item

    return make_row


def _slots_match() -> bool:
    position_fields = tuple(field.name for field in dataclasses.fields(RowPosition))
    row_fields = tuple(field.name for field in dataclasses.fields(SourceRow))
    return (
        position_fields == ("source", "row", "offset", "block_index")
        and row_fields == ("position", "values")
        and not hasattr(RowPosition, "__post_init__")
        and not hasattr(SourceRow, "__post_init__")
    )


make_row: MakeRow = _slot_make_row() if _slots_match() else _plain_make_row
