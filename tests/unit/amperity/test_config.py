"""Amperity's rules for mapping configs: defaults, identifiers, the standard-field guard, subscriptions."""

from __future__ import annotations

import pytest

from cdpbridge.integrations.amperity import EXAMPLE_AUDIENCES_MAPPING_PATH, EXAMPLE_MAPPING_PATH, INTEGRATION
from cdpbridge.mapping import IdentifierKind, MappingConfigError, load_mapping
from cdpbridge.mapping.audiences import AudienceMapper
from cdpbridge.mapping.enums import StandardFieldsPolicy
from cdpbridge.mapping.mapper import Mapper

BASE = "version: 1\nintegration: amperity\nidentifier: {column: customer_id}\n"


def problems_of(text: str) -> str:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(text)
    return str(caught.value)


def test_amperity_is_update_only_and_refuses_shadowing_names_unless_told_otherwise() -> None:
    config = load_mapping(BASE)
    assert config.update_existing_only
    assert config.standard_fields is StandardFieldsPolicy.REFUSE
    assert not load_mapping(BASE + "create_missing: true\n").update_existing_only


def test_the_examples_load_and_pick_their_transformer() -> None:
    results = load_mapping(EXAMPLE_MAPPING_PATH)
    audiences = load_mapping(EXAMPLE_AUDIENCES_MAPPING_PATH)
    assert isinstance(INTEGRATION.transformer(results), Mapper)
    assert isinstance(INTEGRATION.transformer(audiences), AudienceMapper)


@pytest.mark.parametrize("kind", ["external_id", "braze_id"])
def test_external_and_braze_ids_identify_users(kind: str) -> None:
    config = load_mapping(f"version: 1\nintegration: amperity\nidentifier: {{column: id, as: {kind}}}\n")
    assert config.identifier.kind is IdentifierKind(kind)


def test_a_user_alias_identifies_users() -> None:
    config = load_mapping(
        "version: 1\nintegration: amperity\n"
        "identifier: {column: id, as: user_alias, alias_label: amperity_id}\n"
    )
    assert config.identifier.kind is IdentifierKind.USER_ALIAS


@pytest.mark.parametrize("kind", ["email", "phone"])
def test_email_and_phone_identifiers_are_refused(kind: str) -> None:
    assert problems_of(f"version: 1\nintegration: amperity\nidentifier: {{column: id, as: {kind}}}\n") == (
        f"identifier.as: Amperity matches users by external_id, braze_id or a user alias, not by {kind}"
    )


def test_a_shadowed_name_is_refused_with_the_standard_field_it_shadows() -> None:
    assert problems_of(BASE + "fields: [{column: birthday, type: date}]\n") == (
        "fields[0].column: 'birthday' would be a custom attribute shadowing Braze's standard field 'dob'; "
        "write it to 'dob' instead (standard_fields: refuse; map maps it)"
    )


def test_a_shadowed_name_is_mapped_with_standard_fields_map() -> None:
    config = load_mapping(BASE + "standard_fields: map\nfields: [{column: birthday, type: date}]\n")
    assert [spec.target for spec in config.fields] == ["dob"]


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        (
            "{column: email_subscribe}",
            "fields[0].column: 'email_subscribe' writes the subscription state 'email_subscribe'",
        ),
        (
            "{column: opt_in, attribute: push_subscribe}",
            "fields[0].attribute: 'push_subscribe' writes the subscription state 'push_subscribe'",
        ),
        (
            "{column: groups, attribute: subscription_groups, type: array}",
            "fields[0].attribute: 'subscription_groups' writes the subscription state 'subscription_groups'",
        ),
        (
            "{column: email_opt_in, type: string}",
            "fields[0].column: 'email_opt_in' writes the subscription state 'email_subscribe'",
        ),
    ],
)
def test_a_subscription_mapping_is_refused_with_the_reason(field: str, problem: str) -> None:
    problems = problems_of(BASE + f"standard_fields: warn\nfields: [{field}]\n")
    assert (
        problem + ": Amperity never changes subscriptions (users manage them in Braze); remove this field"
        in problems
    )


def test_remaining_columns_need_a_prefix_that_cannot_reach_a_subscription() -> None:
    assert "remaining.prefix: with prefix '' a column could write the subscription state" in problems_of(
        BASE + "remaining: {}\n"
    )
    assert load_mapping(BASE + "remaining: {prefix: amperity_}\n").remaining is not None


def test_other_integrations_keep_their_own_defaults() -> None:
    generic = load_mapping("version: 1\nidentifier: {column: id}\nfields: [{column: email_subscribe}]\n")
    assert not generic.update_existing_only
    assert generic.standard_fields is StandardFieldsPolicy.WARN
