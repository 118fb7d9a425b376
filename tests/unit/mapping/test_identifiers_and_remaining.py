"""Identifiers of each kind, remaining columns with a prefix, and the per-file column check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdpbridge.mapping import Mapper, load_mapping
from cdpbridge.updates import AttributeWrite, WriteMode
from tests.unit.mapping.helpers import map_values, mapper_for, source_row


def identifier_mapper(identifier: str, extra: str = "") -> Mapper:
    return Mapper(load_mapping(f"identifier: {identifier}\n{extra}"))


# ------------------------------------------------------------------------------------ identifiers


@pytest.mark.parametrize(
    ("identifier", "cell", "user_key", "members"),
    [
        ("{column: id}", " 42 ", "external_id:42", {"external_id": "42"}),
        ("{column: id, as: external_id}", 42, "external_id:42", {"external_id": "42"}),
        ("{column: id, as: braze_id}", "5f1c", "braze_id:5f1c", {"braze_id": "5f1c"}),
        ("{column: id, as: email}", "Ann@Example.com", "email:Ann@example.com", {"email": "Ann@example.com"}),
        ("{column: id, as: phone}", "+49 151 2345678", "phone:+491512345678", {"phone": "+491512345678"}),
        (
            "{column: id, as: user_alias, alias_label: crm_id}",
            "A-7",
            "alias:crm_id:A-7",
            {"user_alias": {"alias_name": "A-7", "alias_label": "crm_id"}},
        ),
    ],
)
def test_each_identifier_kind_gives_its_user_key_and_members(
    identifier: str, cell: object, user_key: str, members: dict[str, object]
) -> None:
    update = identifier_mapper(identifier).map_row(source_row({"id": cell}))
    assert update.issues == []
    assert update.user_key == user_key
    assert update.identifier == members


@pytest.mark.parametrize("cell", [None, "", "  ", "null", "nan"])
def test_a_missing_identifier_rejects_the_row(cell: object) -> None:
    # Given a row without a usable identifier
    update = identifier_mapper("{column: id}").map_row(source_row({"id": cell, "x": "1"}))
    # Then the issue names the identifier column and the row is rejected
    assert [(issue.column, issue.reason) for issue in update.issues] == [("id", "missing identifier")]
    assert update.rejected is True
    assert update.user_key == "" and update.identifier == {}


def test_a_missing_identifier_rejects_the_row_even_with_skip_field() -> None:
    update = identifier_mapper("{column: id}", "on_invalid: skip_field").map_row(source_row({"x": "1"}))
    assert update.rejected is True


def test_an_invalid_email_identifier_is_reported_without_the_address() -> None:
    update = identifier_mapper("{column: mail, as: email}").map_row(
        source_row({"mail": "ann(at)example.com"})
    )
    [issue] = update.issues
    assert issue.column == "mail"
    assert issue.reason == "invalid email identifier: e-mail address without '@'"
    assert "ann" not in issue.detail
    assert update.rejected is True


def test_a_national_phone_identifier_uses_the_default_country_code() -> None:
    mapper = identifier_mapper("{column: tel, as: phone}", "default_country_code: '+43'")
    assert mapper.map_row(source_row({"tel": "0664 1234567"})).user_key == "phone:+436641234567"


def test_update_existing_only_is_carried_on_every_update() -> None:
    assert (
        identifier_mapper("{column: id}", "create_missing: false")
        .map_row(source_row({"id": "1"}))
        .update_existing_only
    )
    assert (
        identifier_mapper("{column: id, as: user_alias, alias_label: l}")
        .map_row(source_row({"id": "1"}))
        .update_existing_only
    )
    assert not identifier_mapper("{column: id}").map_row(source_row({"id": "1"})).update_existing_only


# -------------------------------------------------------------------------------------- remaining


def test_remaining_columns_become_prefixed_custom_attributes() -> None:
    # Given a mapped field and remaining columns with prefix bc_
    mapper = mapper_for("fields: [{column: fn, attribute: first_name}]\nremaining: {prefix: bc_}\n")
    # When a row has other columns
    update = map_values(mapper, fn="Ann", zip="0123", segment="vip", empty="")
    # Then every other column is written with the prefix, text kept as text, empty ones skipped
    assert update.attributes == {
        "first_name": AttributeWrite("Ann", WriteMode.SET, "fn"),
        "bc_zip": AttributeWrite("0123", WriteMode.SET, "zip"),
        "bc_segment": AttributeWrite("vip", WriteMode.SET, "segment"),
    }


def test_without_remaining_other_columns_are_ignored() -> None:
    update = map_values(mapper_for("fields: [{column: a}]"), a="1", other="2")
    assert set(update.attributes) == {"a"}


def test_remaining_excludes_names_and_glob_patterns() -> None:
    mapper = mapper_for("remaining: {prefix: x_, exclude: [internal_*, secret]}\n")
    update = map_values(mapper, internal_score="1", secret="s", kept="k")
    assert set(update.attributes) == {"x_kept"}


def test_remaining_never_maps_configured_columns_or_overwrites_configured_attributes() -> None:
    mapper = mapper_for(
        "fields: [{column: a, attribute: b}]\nevents: [{name: E, time_column: ts}]\nremaining: {}\n"
    )
    update = map_values(mapper, a="from a", b="from b", ts="2024-01-01T00:00:00Z")
    assert update.attributes == {"b": AttributeWrite("from a", WriteMode.SET, "a")}


def test_remaining_keeps_native_json_types() -> None:
    mapper = mapper_for("remaining: {prefix: s_}\n")
    update = map_values(
        mapper, n=3, f=1.5, flag=True, tags=["a"], obj={"k": 1}, when=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert {name: write.value for name, write in update.attributes.items()} == {
        "s_n": 3,
        "s_f": 1.5,
        "s_flag": True,
        "s_tags": ["a"],
        "s_obj": {"k": 1},
        "s_when": "2024-01-01T00:00:00Z",
    }


def test_remaining_type_and_strategy_apply_to_every_remaining_column() -> None:
    mapper = mapper_for("remaining: {prefix: seg_, type: boolean, strategy: clear}\n")
    update = map_values(mapper, a="yes", b="", c="maybe")
    assert update.attributes["seg_a"] == AttributeWrite(True, WriteMode.SET, "a")
    assert update.attributes["seg_b"] == AttributeWrite(None, WriteMode.UNSET, "b")
    assert [(issue.column, issue.reason) for issue in update.issues] == [
        ("c", "not a recognised boolean (see true_values/false_values)")
    ]


def test_a_remaining_column_that_lands_on_a_standard_field_is_normalised_as_one() -> None:
    update = map_values(mapper_for("remaining: {}\n"), country="Deutschland")
    assert update.attributes["country"].value == "DE"


def test_a_remaining_column_whose_name_braze_refuses_is_an_issue_when_it_has_a_value() -> None:
    mapper = mapper_for("remaining: {}\n")
    assert map_values(mapper, **{"$bad": ""}).issues == []
    [issue] = map_values(mapper, **{"$bad": "1"}).issues
    assert issue.column == "$bad"
    assert issue.reason.startswith("column name is not a valid Braze attribute name")


def test_columns_lists_what_the_config_names_and_not_the_remaining_ones() -> None:
    mapper = mapper_for("fields: [{column: a}]\nremaining: {prefix: r_}\n")
    map_values(mapper, a="1", other="2")
    assert mapper.columns == frozenset({"id", "a"})


# ---------------------------------------------------------------------------------- column check


def test_check_columns_reports_missing_columns_and_shadowing_remaining_columns() -> None:
    mapper = mapper_for("fields: [{column: a}, {column: b}]\nremaining: {prefix: r_}\n")
    check = mapper.check_columns(["id", "a", "birthday"])
    assert check.missing == ("b",)
    assert [warning.standard_field for warning in check.warnings] == ["dob"]
    assert check.errors == ()


def test_check_columns_makes_a_missing_identifier_column_an_error() -> None:
    check = mapper_for("fields: [{column: a}]").check_columns(["a"])
    assert [str(error) for error in check.errors] == ["identifier.column: the file has no column 'id'"]


def test_check_columns_in_strict_mode_turns_everything_into_errors() -> None:
    mapper = mapper_for("strict: true\nfields: [{column: a}]\nremaining: {}\n")
    check = mapper.check_columns(["id", "email_address"])
    assert [str(error) for error in check.errors] == [
        "the file has no column 'a'",
        "remaining: column 'email_address' would become custom attribute 'email_address', shadowing "
        "Braze's standard field 'email'; map it in fields or add it to remaining.exclude",
    ]


def test_check_columns_makes_a_missing_clear_column_an_error() -> None:
    # Given a clear field whose column the file spells differently
    mapper = mapper_for("fields: [{column: city}, {column: tier, strategy: clear}]")
    # When the header is checked
    check = mapper.check_columns(["id", "Tier", "city"])
    # Then the field would unset the attribute for every user: an error naming the field and column
    assert check.missing == ("tier",)
    assert [error.path for error in check.errors] == ["fields[1].column"]
    assert "no column 'tier'" in str(check.errors[0])
    assert "unset 'tier' for every user" in str(check.errors[0])


def test_an_optional_field_may_be_missing_even_when_strict() -> None:
    # Given optional fields, one of them clear, in a strict config
    mapper = mapper_for(
        "strict: true\n"
        "fields: [{column: tier, strategy: clear, optional: true}, {column: region, optional: true}]"
    )
    # When the file has neither column
    check = mapper.check_columns(["id"])
    # Then nothing is missing or wrong; both columns are skipped
    assert (check.missing, check.errors, check.skipped) == ((), (), ("region", "tier"))


def test_a_column_an_event_needs_is_not_optional_because_a_field_is() -> None:
    mapper = mapper_for(
        "fields: [{column: at, type: datetime, optional: true}]\nevents: [{name: Visit, time_column: at}]"
    )
    check = mapper.check_columns(["id"])
    assert (check.missing, check.skipped) == (("at",), ())


def test_a_mapper_without_columns_writes_nothing_for_their_clear_fields() -> None:
    # Given a clear field on a column the file lacks
    mapper = mapper_for("fields: [{column: tier, strategy: clear, optional: true}, {column: city}]")
    assert map_values(mapper, city="Lyon").attributes["tier"] == AttributeWrite(None, WriteMode.UNSET, "tier")
    # When the mapper leaves that column out
    narrowed = mapper.without_columns(["tier"])
    # Then rows write their other fields and do not unset the attribute
    update = map_values(narrowed, city="Lyon")
    assert set(update.attributes) == {"city"}
    assert mapper.without_columns(["not-named"]) is mapper
