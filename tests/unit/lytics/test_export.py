"""The Lytics import CSV: e-mail and external id first, fields flattened, users without ids left out."""

from __future__ import annotations

import csv
import io

import pytest
from pydantic import ValidationError

from cdpbridge.exports.segment import parse_export_document
from cdpbridge.integrations.lytics import EXAMPLE_EXPORT_CONFIG_PATH
from cdpbridge.integrations.lytics.export import LYTICS_EXPORT, LyticsExportConfig, write_lytics_csv


def config(**changes: object) -> LyticsExportConfig:
    document = {
        "segment": "Engaged",
        "fields": [
            {"braze": "first_name", "column": "first_name"},
            {"braze": "custom_attributes.lytics_segments", "column": "segments"},
            {"braze": "custom_attributes.address.city", "column": "city"},
            {"braze": "custom_attributes.prefs", "column": "prefs"},
            {"braze": "user_aliases.lytics", "column": "lytics_id"},
        ],
        **changes,
    }
    return LyticsExportConfig.model_validate(document)


def test_users_become_rows_with_the_ids_first_and_the_fields_flattened() -> None:
    users = [
        {
            "external_id": "LY-1",
            "email": "ana@example.com",
            "first_name": "Ana",
            "custom_attributes": {
                "lytics_segments": ["a", "b"],
                "address": {"city": "Lisbon"},
                "prefs": {"news": True},
            },
            "user_aliases": [{"alias_label": "lytics", "alias_name": "lx-1"}],
        },
        {"email": "dan@example.com", "first_name": "Dan"},
        {"braze_id": "b-3", "first_name": "Nobody"},
    ]
    out = io.StringIO()
    counters = write_lytics_csv(config(), users, out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows == [
        ["email", "external_id", "first_name", "segments", "city", "prefs", "lytics_id"],
        ["ana@example.com", "LY-1", "Ana", "a|b", "Lisbon", '{"news":true}', "lx-1"],
        ["dan@example.com", "", "Dan", "", "", "", ""],
    ]
    assert (counters.rows_written, counters.users_skipped) == (2, 1)


def test_the_export_asks_braze_for_what_the_columns_need() -> None:
    chosen = config()
    assert chosen.export_fields() == [
        "custom_attributes",
        "email",
        "external_id",
        "first_name",
        "user_aliases",
    ]
    assert chosen.export_custom_attributes() == ["address", "lytics_segments", "prefs"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fields": [{"braze": "favourite_colour", "column": "c"}]}, "not a field of Braze's user export"),
        ({"fields": [{"braze": "first_name", "column": "email"}]}, "column 'email' appears twice"),
        ({"fields": [{"braze": "custom_attributes", "column": "c"}]}, "name the attribute"),
    ],
)
def test_a_bad_config_names_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**changes)


def test_the_example_export_config_is_valid() -> None:
    text = EXAMPLE_EXPORT_CONFIG_PATH.read_text(encoding="utf-8")
    parsed = LYTICS_EXPORT.parse_config(parse_export_document(text, "export.example.yaml"), "example")
    assert isinstance(parsed, LyticsExportConfig)
    assert parsed.headers[:2] == ["email", "external_id"]
