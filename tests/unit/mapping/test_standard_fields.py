"""Braze standard fields: normalisation (valid and invalid) and custom names that shadow them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cdpbridge.mapping import (
    STANDARD_FIELDS,
    InvalidValueError,
    MappingConfigError,
    load_mapping,
    normalize_standard_field,
    shadowed_standard_field,
)
from cdpbridge.mapping.countries import ALPHA2_CODES, ISO_3166_1
from cdpbridge.mapping.languages import ISO_639_1
from cdpbridge.mapping.standard import _checked_email, normalize_email, normalize_phone
from tests.unit.mapping.helpers import map_values, mapper_for


def invalid(name: str, value: Any, **options: Any) -> str:
    with pytest.raises(InvalidValueError) as caught:
        normalize_standard_field(name, value, **options)
    return caught.value.reason


# ------------------------------------------------------------------------------------------ dob


@pytest.mark.parametrize(
    "value",
    ["1990-07-04", "04.07.1990", "1990/07/04", "19900704", "1990-07-04T23:00:00-05:00", "July 4, 1990"],
)
def test_dob_accepts_common_date_forms_and_datetimes(value: str) -> None:
    assert normalize_standard_field("dob", value) == "1990-07-04"


def test_dob_refuses_what_is_not_a_date() -> None:
    assert invalid("dob", "07/04/1990") == "ambiguous day/month order; set `format` (e.g. %d/%m/%Y)"
    assert invalid("dob", "1990-13-01") == "not a valid calendar date"
    assert invalid("dob", "sometime") == "not a recognised date (expected YYYY-MM-DD)"


def test_dob_takes_the_format_of_its_field() -> None:
    mapper = mapper_for("fields: [{column: b, attribute: dob, format: '%m/%d/%Y'}]")
    assert map_values(mapper, b="07/04/1990").attributes["dob"].value == "1990-07-04"


# -------------------------------------------------------------------------------------- country


def test_the_country_table_is_the_full_iso_3166_1_list() -> None:
    assert len(ISO_3166_1) == 249
    assert len(ALPHA2_CODES) == 249
    assert len({alpha3 for _, alpha3, _ in ISO_3166_1}) == 249


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("USA", "US"),
        ("United States of America", "US"),
        ("U.S.", "US"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("the Netherlands", "NL"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d\u2019Ivoire", "CI"),
        ("Republic of Korea", "KR"),
        ("South Korea", "KR"),
        ("North Korea", "KP"),
        ("Democratic Republic of the Congo", "CD"),
        ("Congo", "CG"),
        ("St. Lucia", "LC"),
        ("Bolivia", "BO"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Österreich", "AT"),
    ],
)
def test_country_names_codes_and_aliases_become_alpha_2(value: str, expected: str) -> None:
    assert normalize_standard_field("country", value) == expected


def test_every_iso_name_and_code_resolves_to_its_own_alpha_2() -> None:
    for alpha2, alpha3, name in ISO_3166_1:
        assert normalize_standard_field("country", alpha2) == alpha2
        assert normalize_standard_field("country", alpha3) == alpha2
        assert normalize_standard_field("country", name) == alpha2


@pytest.mark.parametrize("value", ["Atlantis", "XX", "Virgin Islands"])
def test_unknown_or_ambiguous_countries_are_invalid(value: str) -> None:
    assert invalid("country", value) == "unknown country (expected an ISO 3166-1 code or an English name)"


# ------------------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("eng", "en"),
        ("en-US", "en"),
        ("pt_BR", "pt"),
        ("English", "en"),
        ("German", "de"),
        ("Deutsch", "de"),
        ("ger", "de"),
        ("deu", "de"),
        ("Français", "fr"),
        ("Norwegian Bokmål", "nb"),
        ("zh-Hans-CN", "zh"),
        ("iw", "he"),
    ],
)
def test_language_names_codes_and_locales_become_iso_639_1(value: str, expected: str) -> None:
    assert normalize_standard_field("language", value) == expected


def test_every_iso_639_1_code_and_english_name_resolves() -> None:
    for code, name, terminology, _bibliographic in ISO_639_1:
        assert normalize_standard_field("language", code) == code
        assert normalize_standard_field("language", name) == code
        assert normalize_standard_field("language", terminology) == code


def test_unknown_language_is_invalid() -> None:
    assert (
        invalid("language", "Klingon") == "unknown language (expected an ISO 639-1 code or a language name)"
    )


# --------------------------------------------------------------------------------------- gender


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", "M"),
        ("M", "M"),
        ("Herr", "M"),
        ("female", "F"),
        ("w", "F"),
        ("other", "O"),
        ("non-binary", "O"),
        ("divers", "O"),
        ("not applicable", "N"),
        ("prefer not to say", "P"),
        ("P", "P"),
    ],
)
def test_gender_words_and_codes_become_braze_codes(value: str, expected: str) -> None:
    assert normalize_standard_field("gender", value) == expected


def test_unknown_gender_means_no_value_and_nonsense_is_invalid() -> None:
    assert normalize_standard_field("gender", "unknown") is None
    assert invalid("gender", "robot") == "unknown gender (expected M, F, O, N, P or a common word for them)"
    # Through the mapper, "unknown" writes nothing (or unsets with clear).
    assert map_values(mapper_for("fields: [{column: g, attribute: gender}]"), g="unknown").attributes == {}


# ------------------------------------------------------------------------------------ time_zone


def test_time_zone_is_an_iana_name_in_its_canonical_spelling() -> None:
    assert normalize_standard_field("time_zone", "Europe/Berlin") == "Europe/Berlin"
    assert normalize_standard_field("time_zone", "america/new_york") == "America/New_York"
    assert normalize_standard_field("time_zone", "UTC") == "UTC"
    assert invalid("time_zone", "CEST+2") == "not an IANA time zone name (e.g. Europe/Berlin)"


# ---------------------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ann.Lee@Example.COM", "Ann.Lee@example.com"),
        ("  ann+news@mail.example.co.uk ", "ann+news@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("jörg@bücher.de", "jörg@bücher.de"),
    ],
)
def test_email_keeps_the_local_part_and_lower_cases_the_domain(value: str, expected: str) -> None:
    assert normalize_standard_field("email", value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ann.example.com", "e-mail address without '@'"),
        ("@example.com", "e-mail address with an empty local part or domain"),
        ("a@b@example.com", "e-mail address with more than one '@'"),
        ("ann lee@example.com", "e-mail local part contains spaces or special characters"),
        ("ann..lee@example.com", "e-mail local part has a misplaced '.'"),
        ("ann@localhost", "e-mail domain without a '.'"),
        ("ann@exa_mple.com", "e-mail domain contains invalid characters"),
        ("ann@example..com", "e-mail domain has an empty or over-long label"),
        ("ann@example.c", "e-mail domain has an invalid top-level domain"),
        ("ann@10.0.0.1", "e-mail domain has an invalid top-level domain"),
    ],
)
def test_email_refuses_addresses_of_the_wrong_shape(value: str, reason: str) -> None:
    assert invalid("email", value) == reason


# ---------------------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+49 151 2345-6789", "+4915123456789"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("0049 151 23456789", "+4915123456789"),
        ("+44.20.7946.0958", "+442079460958"),
    ],
)
def test_phone_numbers_with_a_country_code_become_e164(value: str, expected: str) -> None:
    assert normalize_standard_field("phone", value) == expected


def test_a_national_number_needs_a_default_country_code() -> None:
    assert invalid("phone", "0151 23456789") == (
        "phone number without a country code (+...) and no default_country_code configured"
    )
    assert normalize_standard_field("phone", "0151 23456789", default_country_code="+49") == "+4915123456789"
    mapper = mapper_for("default_country_code: '0049'\nfields: [{column: p, attribute: phone}]")
    assert map_values(mapper, p="0151 23456789").attributes["phone"].value == "+4915123456789"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("+49 151 CALL-ME", "phone number contains characters other than digits and formatting"),
        ("+123", "phone number must have 7-15 digits"),
        ("+1234567890123456", "phone number must have 7-15 digits"),
        ("+0151234567", "phone number country code cannot start with 0"),
    ],
)
def test_phone_refuses_what_cannot_be_e164(value: str, reason: str) -> None:
    assert invalid("phone", value) == reason


# --------------------------------------------------------------------------- subscription states


@pytest.mark.parametrize("name", ["email_subscribe", "push_subscribe"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("opted_in", "opted_in"),
        ("Opted In", "opted_in"),
        ("true", "opted_in"),
        ("yes", "opted_in"),
        (True, "opted_in"),
        ("subscribed", "subscribed"),
        ("unsubscribed", "unsubscribed"),
        ("opt-out", "unsubscribed"),
        ("false", "unsubscribed"),
        ("no", "unsubscribed"),
        (False, "unsubscribed"),
    ],
)
def test_subscription_states_accept_common_synonyms(name: str, value: Any, expected: str) -> None:
    assert normalize_standard_field(name, value) == expected


def test_an_unknown_subscription_state_is_invalid() -> None:
    assert (
        invalid("email_subscribe", "maybe")
        == "not a subscription state (opted_in, subscribed or unsubscribed)"
    )


# ----------------------------------------------------------------------- booleans and the rest


@pytest.mark.parametrize("name", ["email_open_tracking_disabled", "email_click_tracking_disabled"])
def test_tracking_disabled_fields_are_booleans(name: str) -> None:
    assert normalize_standard_field(name, "yes") is True
    assert normalize_standard_field(name, "0") is False
    assert invalid(name, "perhaps") == "not a recognised boolean (see true_values/false_values)"


def test_names_and_city_are_text_up_to_255_characters() -> None:
    assert normalize_standard_field("first_name", " Ann ") == "Ann"
    assert normalize_standard_field("home_city", "Köln") == "Köln"
    assert invalid("last_name", "x" * 256) == "longer than 255 characters"


def test_current_location_from_a_pair_or_an_object() -> None:
    assert normalize_standard_field("current_location", "52.52, 13.405") == {
        "latitude": 52.52,
        "longitude": 13.405,
    }
    assert normalize_standard_field("current_location", '{"latitude": 1, "longitude": 2}') == {
        "latitude": 1.0,
        "longitude": 2.0,
    }
    assert invalid("current_location", "91,0") == "latitude must be within ±90 and longitude within ±180"
    assert invalid("current_location", "Berlin") == "expected 'latitude,longitude' or a JSON object"


def test_subscription_groups_and_push_tokens_are_checked_json_arrays() -> None:
    groups = '[{"subscription_group_id": "g1", "subscription_state": "subscribed"}]'
    assert normalize_standard_field("subscription_groups", groups) == [
        {"subscription_group_id": "g1", "subscription_state": "subscribed"}
    ]
    assert invalid(
        "subscription_groups", '[{"subscription_group_id": "g1", "subscription_state": "yes"}]'
    ) == ("subscription_state must be 'subscribed' or 'unsubscribed'")
    tokens = [{"app_id": "a", "token": "t", "device_id": "d"}]
    assert normalize_standard_field("push_tokens", tokens) == tokens
    assert invalid("push_tokens", '[{"app_id": "a"}]') == "a push token needs non-empty app_id and token"


def test_an_unknown_standard_field_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a Braze standard field"):
        normalize_standard_field("birthday", "1990-01-01")


def test_standard_fields_match_the_braze_reference() -> None:
    assert set(STANDARD_FIELDS) == {
        "first_name", "last_name", "email", "phone", "dob", "country", "home_city", "language", "gender",
        "time_zone", "email_subscribe", "push_subscribe", "subscription_groups",
        "email_open_tracking_disabled", "email_click_tracking_disabled", "current_location", "push_tokens",
    }  # fmt: skip


# ------------------------------------------------------------------------------------ shadowing


@pytest.mark.parametrize(
    ("name", "standard"),
    [
        ("birthday", "dob"),
        ("Date-Of-Birth", "dob"),
        ("birth_date", "dob"),
        ("e_mail", "email"),
        ("email_address", "email"),
        ("Email", "email"),
        ("mobile", "phone"),
        ("phone_number", "phone"),
        ("firstname", "first_name"),
        ("lastname", "last_name"),
        ("timezone", "time_zone"),
        ("First Name", "first_name"),
    ],
)
def test_custom_names_that_shadow_standard_fields_are_recognised(name: str, standard: str) -> None:
    assert shadowed_standard_field(name) == standard


@pytest.mark.parametrize("name", ["dob", "email", "loyalty_points", "zip", "postcode"])
def test_standard_and_unrelated_names_are_not_shadows(name: str) -> None:
    assert shadowed_standard_field(name) is None


def test_a_shadowing_attribute_is_a_warning_on_the_config() -> None:
    # Given a field written to 'birthday'
    config = load_mapping("identifier: {column: id}\nfields: [{column: b, attribute: birthday, type: date}]")
    # Then the config warns and names the standard field to use
    [warning] = config.warnings()
    assert warning.path == "fields[0].attribute"
    assert warning.standard_field == "dob"
    assert "'dob'" in warning.message


def test_a_shadowing_attribute_is_refused_in_strict_mode() -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping("strict: true\nidentifier: {column: id}\nfields: [{column: mobile}]")
    assert str(caught.value) == (
        "fields[0].column: 'mobile' would be a custom attribute shadowing Braze's standard field 'phone'; "
        "write it to 'phone' instead"
    )


def test_a_shadowing_remaining_column_is_a_warning_for_that_file() -> None:
    # Given remaining columns with a prefix, and a file whose header has a 'birthday' column
    config = load_mapping("identifier: {column: id}\nremaining: {prefix: bc_, exclude: [mobile]}\n")
    # When the header is checked
    warnings = config.warnings(["id", "birthday", "mobile", "tier"])
    # Then only the mapped shadowing column is flagged
    assert [(warning.path, warning.standard_field) for warning in warnings] == [("remaining", "dob")]


def test_plain_address_shortcut_agrees_with_the_full_e_mail_check() -> None:
    rng = random.Random(7)
    alphabet = "aZ09._+-@"
    compared = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 14))) + rng.choice(
            ("", ".com", ".De", ".c0", ".12", "-.io")
        )
        try:
            expected: str | None = _checked_email(text)
        except InvalidValueError:
            expected = None
        try:
            got: str | None = normalize_email(text)
        except InvalidValueError:
            got = None
        assert got == expected, text
        compared += expected is not None
    assert compared > 100  # enough accepted addresses to mean something


def test_plain_e164_shortcut_agrees_with_the_full_phone_check() -> None:
    rng = random.Random(11)
    for _ in range(5_000):
        text = "+" + "".join(rng.choice("0123456789") for _ in range(rng.randrange(5, 18)))
        digits = text[1:]
        valid = not digits.startswith("0") and 7 <= len(digits) <= 15
        try:
            assert normalize_phone(text) == text
            assert valid, text
        except InvalidValueError:
            assert not valid, text
