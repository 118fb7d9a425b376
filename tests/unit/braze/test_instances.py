"""The instance table and rest_endpoint()."""

from __future__ import annotations

import pytest

from cdpbridge.braze import INSTANCE_HOSTS, UnknownBrazeInstanceError, rest_endpoint


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        *((f"US-0{n}", f"https://rest.iad-0{n}.braze.com") for n in range(1, 9)),
        ("US-10", "https://rest.us-10.braze.com"),
        ("EU-01", "https://rest.fra-01.braze.eu"),
        ("EU-02", "https://rest.fra-02.braze.eu"),
        ("AU-01", "https://rest.au-01.braze.com"),
        ("ID-01", "https://rest.id-01.braze.com"),
        ("JP-01", "https://rest.jp-01.braze.com"),
        ("KR-01", "https://rest.kr-01.braze.com"),
    ],
)
def test_every_documented_instance_maps_to_its_https_host(instance: str, expected: str) -> None:
    # Given a documented instance name / When its endpoint is asked for / Then it is the https host
    assert rest_endpoint(instance) == expected


def test_the_table_holds_exactly_the_fifteen_documented_instances() -> None:
    assert len(INSTANCE_HOSTS) == 15
    assert "US-09" not in INSTANCE_HOSTS


@pytest.mark.parametrize("spelling", ["us-03", "Us-03", "  US-03 ", "uS-03\n"])
def test_instance_names_are_case_and_whitespace_insensitive(spelling: str) -> None:
    assert rest_endpoint(spelling) == "https://rest.iad-03.braze.com"


@pytest.mark.parametrize("instance", ["US-09", "EU-03", "US-1", "", "rest.iad-01.braze.com"])
def test_an_unknown_instance_is_a_clear_error_naming_it(instance: str) -> None:
    # Given a name Braze does not operate / When resolved / Then the error names it and the valid ones
    with pytest.raises(UnknownBrazeInstanceError) as raised:
        rest_endpoint(instance)
    message = str(raised.value)
    assert repr(instance) in message
    assert "US-01" in message and "KR-01" in message
    assert isinstance(raised.value, ValueError)
