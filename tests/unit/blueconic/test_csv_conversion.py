"""Exported Braze users -> BlueConic CSV rows: values, identifiers and CSV quoting."""

import csv
import io

import pytest

from cdpbridge.integrations.blueconic.export import (
    BlueConicExportConfig,
    braze_value,
    csv_cell,
    write_blueconic_csv,
)

USER = {
    "external_id": "U1",
    "first_name": "Ana",
    "dob": "1990-05-17",
    "user_aliases": [
        {"alias_name": "bc-1", "alias_label": "blueconic"},
        {"alias_name": "crm-1", "alias_label": "crm"},
    ],
    "custom_attributes": {"tier": "gold", "a.b": 3},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("external_id", "U1"),
        ("dob", "1990-05-17"),
        ("email", None),
        ("custom_attributes.tier", "gold"),
        ("custom_attributes.a.b", 3),  # custom attribute names may hold dots
        ("custom_attributes.missing", None),
        ("user_aliases.crm", "crm-1"),
        ("user_aliases.other", None),
    ],
)
def test_braze_value_reads_fields_custom_attributes_and_aliases_by_label(path, value):
    assert braze_value(USER, path) == value


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("text, with comma", "text, with comma"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (12.5, "12.5"),
        (["a", "b", 3], "a|b|3"),
        (["a", None], "a"),
        ([], ""),
        ({"channel": "email"}, '{"channel":"email"}'),
        ([{"id": 1}], '[{"id":1}]'),
    ],
)
def test_cells_keep_text_lower_case_booleans_join_arrays_and_write_objects_as_json(value, cell):
    assert csv_cell(value, "|") == cell


def test_the_csv_has_a_header_one_row_per_identified_user_and_counts_the_rest():
    # Given a config with two identifier columns and users with one, both or neither
    config = BlueConicExportConfig.model_validate(
        {
            "segment": "VIP",
            "identifiers": [
                {"braze": "external_id", "column": "crm_id"},
                {"braze": "user_aliases.blueconic", "column": "bc_id"},
            ],
            "fields": [
                {"braze": "first_name", "column": "firstname"},
                {"braze": "custom_attributes.tier", "column": "tier"},
            ],
            "list_separator": ";",
        }
    )
    users = [
        USER,
        {"user_aliases": [{"alias_name": "bc-2", "alias_label": "blueconic"}], "first_name": 'Eve "E"'},
        {"email": "only@example.com", "first_name": "Nil"},
        {"external_id": "", "first_name": "Empty"},
        {"external_id": "U3", "custom_attributes": {"tier": ["x", "y"]}},
    ]
    out = io.StringIO(newline="")

    # When they are written
    counters = write_blueconic_csv(config, users, out)

    # Then identified users are rows, in order, quoted as CSV needs, with CRLF line ends
    text = out.getvalue()
    assert text.splitlines(keepends=True)[0] == "crm_id,bc_id,firstname,tier\r\n"
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["crm_id", "bc_id", "firstname", "tier"],
        ["U1", "bc-1", "Ana", "gold"],
        ["", "bc-2", 'Eve "E"', ""],
        ["U3", "", "", "x;y"],
    ]
    assert '"Eve ""E"""' in text
    assert (counters.rows_written, counters.users_skipped) == (3, 2)
