"""Small builders shared by the mapping tests."""

from __future__ import annotations

from typing import Any

from cdpbridge.mapping import Mapper, load_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.updates import UserUpdate

BASE_CONFIG = """
version: 1
identifier: {column: id, as: external_id}
"""


def mapper_for(yaml_body: str = "", base: str = BASE_CONFIG) -> Mapper:
    """A mapper for BASE_CONFIG plus the given YAML lines (fields, remaining, events, ...)."""
    return Mapper(load_mapping(base + yaml_body))


def source_row(values: dict[str, Any], row: int = 1, source: str = "users.csv") -> SourceRow:
    return SourceRow(RowPosition(source, row), values)


def map_values(mapper: Mapper, **values: Any) -> UserUpdate:
    """Map one row whose identifier column 'id' is 'u1' unless given."""
    values.setdefault("id", "u1")
    return mapper.map_row(source_row(values))


def one_field(spec: str, extra: str = "") -> Mapper:
    """A mapper with a single field given as a YAML flow mapping, e.g. '{column: a, type: integer}'."""
    return mapper_for(f"fields:\n  - {spec}\n{extra}")
