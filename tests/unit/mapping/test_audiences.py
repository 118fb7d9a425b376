"""Audience rows into one custom attribute per audience: joining, leaving, scores and bad rows."""

from __future__ import annotations

from typing import Any

import pytest

from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.mapping.audiences import AudienceMapper, audience_score
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.updates import WriteMode

BASE = "version: 1\nintegration: amperity\nidentifier: {column: id}\n"


def mapper(audiences: str) -> AudienceMapper:
    return AudienceMapper(load_mapping(BASE + f"audiences: {audiences}\n"))


def written(transformer: AudienceMapper, **values: Any) -> dict[str, tuple[Any, WriteMode]]:
    values.setdefault("id", "u1")
    update = transformer.map_row(SourceRow(RowPosition("a.csv", 1), values))
    assert update.issues == [] and not update.rejected, update.issues
    assert update.update_existing_only
    return {name: (write.value, write.mode) for name, write in update.attributes.items()}


def rejected(transformer: AudienceMapper, **values: Any) -> list[tuple[str | None, str]]:
    values.setdefault("id", "u1")
    update = transformer.map_row(SourceRow(RowPosition("a.csv", 1), values))
    assert update.rejected and update.attributes == {}
    return [(issue.column, issue.reason) for issue in update.issues]


def test_member_flags_join_and_leave() -> None:
    flags = mapper("{member_column: member, attribute_pattern: 'amperity_{audience}'}")
    assert written(flags, audience="High Value", member="true") == {
        "amperity_high_value": (True, WriteMode.SET)
    }
    assert written(flags, audience="High Value", member="false") == {
        "amperity_high_value": (None, WriteMode.UNSET)
    }


def test_on_leave_false_sets_false() -> None:
    flags = mapper("{member_column: member, on_leave: false}")
    assert written(flags, audience="vip", member="0") == {"vip": (False, WriteMode.SET)}


def test_without_a_member_column_every_row_is_a_member() -> None:
    assert written(mapper("{attribute_pattern: 'aud_{audience}'}"), audience="Store Openers") == {
        "aud_store_openers": (True, WriteMode.SET)
    }


def test_names_as_written_when_not_folded() -> None:
    assert written(mapper("{fold_names: false, attribute_pattern: 'a_{audience}'}"), audience="VIP Tier") == {
        "a_VIP Tier": (True, WriteMode.SET)
    }


def test_scores_are_numbers_and_an_empty_score_leaves() -> None:
    scores = mapper("{score_column: score, attribute_pattern: '{audience}_score'}")
    assert written(scores, audience="churn", score="0.82") == {"churn_score": (0.82, WriteMode.SET)}
    assert written(scores, audience="frequency", score="7") == {"frequency_score": (7, WriteMode.SET)}
    assert written(scores, audience="churn", score="") == {"churn_score": (None, WriteMode.UNSET)}
    assert rejected(scores, audience="churn", score="high") == [("score", "not a number (an audience score)")]


def test_audience_score_keeps_whole_numbers_whole() -> None:
    assert (audience_score("3"), audience_score(2.5), audience_score("1.0")) == (3, 2.5, 1)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"audience": "", "member": "true"}, ("audience", "missing audience name")),
        ({"audience": "x", "member": ""}, ("member", "missing member flag (true or false)")),
        (
            {"audience": "x", "member": "maybe"},
            ("member", "not a recognised boolean (see true_values/false_values)"),
        ),
        (
            {"audience": "!!!", "member": "true"},
            ("audience", "audience name gives no valid attribute name: no letters or digits"),
        ),
        ({"id": "", "audience": "x", "member": "true"}, ("id", "missing identifier")),
    ],
)
def test_bad_rows_are_rejects_naming_the_column(values: dict[str, str], problem: tuple[str, str]) -> None:
    assert rejected(
        mapper("{member_column: member, attribute_pattern: 'amperity_{audience}'}"), **values
    ) == [problem]


def test_an_audience_that_would_name_a_standard_field_is_a_reject() -> None:
    plain = mapper("{member_column: member}")
    assert rejected(plain, audience="Email Subscribe", member="true") == [
        (
            "audience",
            "audience attribute 'email_subscribe' would write Braze's standard field 'email_subscribe'",
        )
    ]
    assert rejected(plain, audience="Birthday", member="true") == [
        ("audience", "audience attribute 'birthday' would write Braze's standard field 'dob'")
    ]


def test_the_header_needs_every_audience_column() -> None:
    check = mapper("{member_column: member}").check_columns(["id", "audience"])
    assert check.missing == ("member",)
    assert [str(error) for error in check.errors] == [
        "audiences.member_column: the file has no column 'member'"
    ]
    assert mapper("{member_column: member}").check_columns(["id", "audience", "member"]).errors == ()


@pytest.mark.parametrize(
    ("audiences", "problem"),
    [
        (
            "{member_column: m, score_column: s}",
            "audiences.score_column: give member_column or score_column, not both",
        ),
        (
            "{attribute_pattern: amperity}",
            "audiences.attribute_pattern: must contain '{audience}' exactly once",
        ),
        ("{score_column: s, on_leave: 'false'}", "audiences.on_leave: false only fits member-flag audiences"),
        ("{true_values: [y]}", "audiences.true_values: only applies with member_column"),
    ],
)
def test_inconsistent_audience_sections_are_refused(audiences: str, problem: str) -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(BASE + f"audiences: {audiences}\n")
    assert problem in str(caught.value)


def test_an_audience_section_leaves_fields_out() -> None:
    with pytest.raises(MappingConfigError, match="fields: an audience file is not column-mapped"):
        load_mapping(BASE + "audiences: {}\nfields: [{column: a}]\n")
