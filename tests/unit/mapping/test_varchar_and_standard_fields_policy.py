"""Declared text lengths (varchar(n), max_length) and the standard-field guard (standard_fields)."""

from __future__ import annotations

import pytest

from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.mapping.enums import FieldType, StandardFieldsPolicy
from tests.unit.mapping.helpers import map_values, mapper_for, one_field

DECLARED_20 = "longer than its declared length of 20 characters"


@pytest.mark.parametrize(
    "spec", ['{column: a, type: "varchar(20)"}', "{column: a, type: varchar, max_length: 20}"]
)
def test_varchar_with_a_length_counts_characters_not_bytes(spec: str) -> None:
    mapper = one_field(spec)
    twenty = "Málaga Plaza Mayor 1"  # 20 characters, 21 bytes in UTF-8
    assert map_values(mapper, a=twenty).attributes["a"].value == twenty
    update = map_values(mapper, a=twenty + "2")
    assert "a" not in update.attributes
    assert [(issue.column, issue.reason) for issue in update.issues] == [("a", DECLARED_20)]
    assert update.rejected


def test_both_spellings_of_a_varchar_length_are_the_same_field() -> None:
    sized = load_mapping('version: 1\nidentifier: {column: id}\nfields: [{column: a, type: "varchar( 20 )"}]')
    plain = load_mapping(
        "version: 1\nidentifier: {column: id}\nfields: [{column: a, type: varchar, max_length: 20}]"
    )
    assert sized.fields == plain.fields
    assert (sized.fields[0].type, sized.fields[0].max_length) == (FieldType.VARCHAR, 20)


def test_a_declared_length_beyond_brazes_limit_still_refuses_past_255() -> None:
    update = map_values(one_field('{column: a, type: "varchar(1000)"}'), a="x" * 256)
    assert [issue.reason for issue in update.issues] == ["longer than 255 characters"]


def test_a_varchar_length_bounds_a_standard_field_before_it_is_normalised() -> None:
    mapper = one_field('{column: a, attribute: first_name, type: "varchar(3)"}')
    assert map_values(mapper, a="Ann").attributes["first_name"].value == "Ann"
    assert [issue.reason for issue in map_values(mapper, a="Anna").issues] == [
        "longer than its declared length of 3 characters"
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            '{column: a, type: "varchar(20)", max_length: 10}',
            "fields[0].max_length: is 10 but the type 'varchar(20)' declares 20",
        ),
        (
            "{column: a, type: integer, max_length: 3}",
            "fields[0].max_length: only applies to fields of type string or varchar",
        ),
    ],
)
def test_contradicting_or_misplaced_lengths_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(f"version: 1\nidentifier: {{column: id}}\nfields: [{spec}]")
    assert problem in str(caught.value)


# ------------------------------------------------------------------------------- standard fields


def test_warn_is_the_generic_default_and_writes_the_custom_attribute() -> None:
    mapper = mapper_for("fields: [{column: birthday, type: date}]")
    assert mapper.config.standard_fields is StandardFieldsPolicy.WARN
    assert map_values(mapper, birthday="1990-01-02").attributes["birthday"].value == "1990-01-02"


def test_refuse_refuses_a_shadowing_field_at_load_naming_the_standard_field() -> None:
    with pytest.raises(MappingConfigError) as caught:
        mapper_for("standard_fields: refuse\nfields: [{column: a, attribute: date_of_birth, type: date}]")
    assert str(caught.value) == (
        "fields[0].attribute: 'date_of_birth' would be a custom attribute shadowing Braze's standard "
        "field 'dob'; write it to 'dob' instead (standard_fields: refuse; map maps it)"
    )


@pytest.mark.parametrize(
    ("column", "standard"),
    [
        ("birthday", "dob"),
        ("birth_date", "dob"),
        ("Date-Of-Birth", "dob"),
        ("firstname", "first_name"),
        ("lastname", "last_name"),
        ("phone_number", "phone"),
        ("sex", "gender"),
    ],
)
def test_map_writes_the_standard_field_and_never_the_shadow(column: str, standard: str) -> None:
    mapper = mapper_for(f"standard_fields: map\nfields: [{{column: {column}}}]")
    assert [spec.target for spec in mapper.config.fields] == [standard]


def test_map_with_the_standard_field_also_mapped_is_refused_as_a_duplicate() -> None:
    with pytest.raises(
        MappingConfigError, match=r"fields\[1\]\.attribute: 'dob' is already written by fields\[0\]"
    ):
        mapper_for("standard_fields: map\nfields: [{column: dob}, {column: birthday}]")


def test_remaining_columns_follow_the_policy() -> None:
    mapped = mapper_for("standard_fields: map\nremaining: {}")
    update = map_values(mapped, birthday="1990-01-02", segment="gold")
    assert {name: write.value for name, write in update.attributes.items()} == {
        "dob": "1990-01-02",
        "segment": "gold",
    }
    refused = mapper_for("standard_fields: refuse\nremaining: {}")
    check = refused.check_columns(["id", "birthday", "segment"])
    assert [str(error) for error in check.errors] == [
        "remaining: column 'birthday' would become custom attribute 'birthday', shadowing Braze's "
        "standard field 'dob'; map it in fields or add it to remaining.exclude (standard_fields: refuse)"
    ]
