"""Issues never carry personal data; the committed JSON Schema matches the config models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cdpbridge.mapping.schema import mapping_schema, render_schema
from tests.unit.mapping.helpers import map_values, mapper_for, one_field

REPOSITORY = Path(__file__).resolve().parents[3]
SCHEMA_FILE = REPOSITORY / "schemas" / "mapping.schema.json"


# -------------------------------------------------------------------------------------------- PII


@pytest.mark.parametrize(
    ("spec", "cell"),
    [
        ("{column: mail, attribute: email}", "ann.lee(at)example.com"),
        ("{column: tel, attribute: phone}", "+49 151 CALL ANN"),
        ("{column: fn, attribute: first_name}", "Ann" * 100),
        ("{column: street_address, type: integer}", "Hauptstr. 5"),
        ("{column: notes, type: integer, pii: true}", "Ann's secret"),
        ("{column: b, attribute: dob}", "Ann's birthday"),
    ],
)
def test_issue_details_of_personal_data_describe_the_value_without_showing_it(spec: str, cell: str) -> None:
    # Given a PII column (by standard field, by name, or marked pii) and an invalid value
    column = spec.removeprefix("{column: ").partition(",")[0].rstrip("}")
    update = map_values(one_field(spec), **{column: cell})
    # Then the issue describes the value only by kind and length
    [issue] = update.issues
    assert "Ann" not in issue.detail and "Hauptstr" not in issue.detail and "example" not in issue.detail
    assert issue.detail == f"text of {len(cell)} characters (withheld: personal data)"


def test_pii_columns_covers_remaining_and_event_property_columns() -> None:
    mapper = mapper_for(
        "pii_columns: [nick, who]\n"
        "remaining: {type: integer}\n"
        "events: [{name: E, time_column: ts, properties: {who: {column: who, type: integer}}}]\n"
    )
    update = map_values(mapper, nick="Annie", who="Ann", ts="2024-01-01T00:00:00Z")
    assert {issue.column: issue.detail for issue in update.issues} == {
        "nick": "text of 5 characters (withheld: personal data)",
        "who": "text of 3 characters (withheld: personal data)",
    }


def test_other_columns_show_a_truncated_value_to_help_fix_the_file() -> None:
    update = map_values(one_field("{column: points, type: integer}"), points="12 points")
    assert update.issues[0].detail == "'12 points'"
    long_update = map_values(one_field("{column: points, type: integer}"), points="9" * 100 + "x")
    assert long_update.issues[0].detail.endswith("...")
    assert len(long_update.issues[0].detail) <= 60


def test_pii_false_cannot_expose_a_standard_personal_field() -> None:
    update = map_values(one_field("{column: m, attribute: email, pii: false}"), m="ann@@example.com")
    assert update.issues[0].detail == "text of 16 characters (withheld: personal data)"


# ----------------------------------------------------------------------------------------- schema


def test_the_committed_schema_file_is_up_to_date() -> None:
    # Given the schema file in the repository
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    # Then it is exactly what the models generate (regenerate with
    # `python -m cdpbridge.mapping.schema > schemas/mapping.schema.json`)
    assert committed == render_schema()


def test_the_schema_uses_the_keys_users_write() -> None:
    schema = mapping_schema()
    identifier = schema["$defs"]["IdentifierSpec"]["properties"]
    assert "as" in identifier and "kind" not in identifier
    assert "required" not in schema
    # identifier is required unless the integration's records carry their own identity
    assert schema["if"]["properties"]["integration"]["enum"] == ["segment"]
    assert schema["else"] == {"required": ["identifier"]}
    assert schema["additionalProperties"] is False


def test_documented_configs_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    # Given the schema and configs in the shapes the documentation shows
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    documents = [
        {
            "version": 1,
            "integration": "blueconic",
            "source": {"format": "csv", "delimiter": ",", "encoding": "utf-8"},
            "identifier": {"column": "customer_id", "as": "external_id"},
            "create_missing": True,
            "fields": [
                {"column": "first_name", "attribute": "first_name", "type": "string", "strategy": "set"},
                {"column": "points", "attribute": "loyalty_points", "type": "integer", "strategy": "sum"},
                {"column": "d", "type": "date", "format": "%d/%m/%Y"},
            ],
            "remaining": {"prefix": "bc_"},
            "events": [{"name": "E", "time_column": "ts", "properties": {"a": "col", "b": {"column": "c"}}}],
            "purchases": [],
        },
        yaml.safe_load((REPOSITORY / "docs" / "mapping.example.yaml").read_text(encoding="utf-8")),
    ]
    # Then each validates, and an unknown key does not
    for document in documents:
        validator.validate(document)
    assert not validator.is_valid({"identifier": {"column": "id"}, "stratgy": "set"})
