"""Mapper.record_digest: what an unchanged record is recognised by, without mapping it."""

from __future__ import annotations

import pytest

from tests.unit.mapping.helpers import mapper_for, source_row

FIELDS = """
fields:
  - {column: city, attribute: city}
  - {column: tier, attribute: tier}
"""


def test_the_digest_names_the_user_and_depends_on_every_mapped_cell() -> None:
    mapper = mapper_for(FIELDS)
    first = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold"}))
    again = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold"}, row=9))
    other_city = mapper.record_digest(source_row({"id": "u1", "city": "Lyon", "tier": "gold"}))
    other_user = mapper.record_digest(source_row({"id": "u2", "city": "Paris", "tier": "gold"}))
    assert first is not None and first[0] == "external_id:u1"
    assert first == again
    assert other_city is not None and other_city[1] != first[1]
    assert other_user is not None and other_user[1] != first[1]


def test_columns_the_mapping_does_not_read_do_not_change_the_digest() -> None:
    mapper = mapper_for(FIELDS)
    plain = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold"}))
    extra = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold", "note": "x"}))
    assert plain == extra


def test_with_remaining_columns_every_column_counts() -> None:
    mapper = mapper_for(FIELDS + "remaining: {}\n")
    plain = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold"}))
    extra = mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tier": "gold", "note": "x"}))
    assert plain is not None and extra is not None and plain[1] != extra[1]


def test_any_change_of_the_mapping_changes_the_digest() -> None:
    row = source_row({"id": "u1", "city": "Paris", "tier": "gold"})
    before = mapper_for(FIELDS).record_digest(row)
    renamed = mapper_for(FIELDS.replace("attribute: tier", "attribute: level")).record_digest(row)
    typed = mapper_for(FIELDS + "trim: false\n").record_digest(row)
    assert before is not None and renamed is not None and typed is not None
    assert len({before[1], renamed[1], typed[1]}) == 3


@pytest.mark.parametrize(
    "extra",
    [
        "  - {column: tags, attribute: tags, strategy: add}\n",
        "  - {column: tags, attribute: tags, type: array, strategy: remove}\n",
        "  - {column: points, attribute: points, strategy: sum}\n",
        "  - {column: since, attribute: since, strategy: set_if_empty}\n",
    ],
    ids=["add", "remove", "sum", "set_if_empty"],
)
def test_writes_whose_effect_depends_on_braze_make_records_unrecognisable(extra: str) -> None:
    mapper = mapper_for(FIELDS + extra)
    assert mapper.record_digest(source_row({"id": "u1", "city": "Paris", "tags": "x", "points": "1"})) is None


def test_a_config_with_events_makes_records_unrecognisable() -> None:
    mapper = mapper_for(
        FIELDS + "events:\n  - {name: visit, time_column: at}\n",
    )
    assert mapper.record_digest(source_row({"id": "u1", "city": "Paris", "at": "2026-01-01"})) is None


def test_a_row_without_a_usable_identifier_is_left_to_the_mapper() -> None:
    mapper = mapper_for(FIELDS)
    assert mapper.record_digest(source_row({"id": "", "city": "Paris"})) is None


def test_a_cell_json_cannot_carry_leaves_the_row_to_the_mapper() -> None:
    mapper = mapper_for(FIELDS)
    assert mapper.record_digest(source_row({"id": "u1", "city": object()})) is None


@pytest.mark.parametrize("kind", ["external_id", "braze_id", "email", "user_alias"])
@pytest.mark.parametrize("cell", ["u1", "  u1 ", "", "  ", "NULL", None, 42, True], ids=repr)
def test_the_digest_names_the_user_the_mapped_row_names(kind: str, cell: object) -> None:
    label = ", alias_label: crm" if kind == "user_alias" else ""
    base = f"version: 1\nidentifier: {{column: id, as: {kind}{label}}}\nnull_values: ['', 'NULL']\n"
    mapper = mapper_for(FIELDS, base=base)
    row = source_row({"id": cell, "city": "Paris", "tier": "gold"})
    mapped = mapper.map_row(row)
    recognised = mapper.record_digest(row)
    if any(issue.column == "id" for issue in mapped.issues):
        assert recognised is None
    else:
        assert recognised is not None and recognised[0] == mapped.user_key
