"""Loading mapping configs: valid YAML and JSON, files, and errors that name their key path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpbridge.mapping import (
    FieldType,
    IdentifierKind,
    MappingConfig,
    MappingConfigError,
    OnInvalid,
    SourceFormat,
    Strategy,
    load_mapping,
)

BRIEF_EXAMPLE = """
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: customer_id, as: external_id}
create_missing: true
fields:
  - {column: first_name, attribute: first_name, type: string, strategy: set}
  - {column: points, attribute: loyalty_points, type: integer, strategy: sum}
remaining: {prefix: "bc_"}
events: []
purchases: []
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(text)
    return str(caught.value).splitlines()


# ------------------------------------------------------------------------------------ valid configs


def test_the_documented_example_loads_with_every_key_understood() -> None:
    # Given the example config from the documentation
    # When it is loaded
    config = load_mapping(BRIEF_EXAMPLE)
    # Then every key has the documented meaning
    assert config.version == 1
    assert config.integration == "generic"
    assert config.source.format is SourceFormat.CSV
    assert config.source.effective_delimiter == ","
    assert config.identifier.column == "customer_id"
    assert config.identifier.kind is IdentifierKind.EXTERNAL_ID
    assert config.create_missing is True
    assert config.update_existing_only is False
    assert [field.target for field in config.fields] == ["first_name", "loyalty_points"]
    assert config.fields[1].type is FieldType.INTEGER
    assert config.fields[1].strategy is Strategy.SUM
    assert config.remaining is not None and config.remaining.prefix == "bc_"
    assert config.events == [] and config.purchases == []
    assert config.on_invalid is OnInvalid.REJECT_ROW


def test_json_text_loads_the_same_config_as_yaml() -> None:
    # Given the example as JSON text
    from_yaml = load_mapping(BRIEF_EXAMPLE)
    as_json = json.dumps(from_yaml.model_dump(mode="json", by_alias=True))
    # When the JSON text is loaded
    from_json = load_mapping(as_json)
    # Then it is the same config
    assert from_json == from_yaml


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_a_file_path_as_text_or_path_is_read(tmp_path: Path, suffix: str) -> None:
    # Given the example saved as a file
    config = load_mapping(BRIEF_EXAMPLE)
    path = tmp_path / f"blueconic{suffix}"
    if suffix == ".json":
        path.write_text(config.model_dump_json(by_alias=True))
    else:
        path.write_text(BRIEF_EXAMPLE)
    # When it is loaded by Path and by path text
    # Then both give the config
    assert load_mapping(path) == config
    assert load_mapping(str(path)) == config


def test_the_defaults_fit_a_minimal_config() -> None:
    # Given only an identifier
    config = load_mapping("identifier: {column: id}")
    # Then the defaults apply
    assert config.version == 1
    assert config.identifier.kind is IdentifierKind.EXTERNAL_ID
    assert config.source.format is SourceFormat.CSV
    assert config.null_values == ["", "null", "NULL", "nan", "NaN", "None"]
    assert config.trim is True
    assert config.strict is False
    assert config.remaining is None
    assert config.max_event_properties_bytes == 50_000


def test_yaml_yes_and_no_stay_text_so_they_can_be_listed_as_boolean_values() -> None:
    # Given true_values written without quotes (YAML 1.1 would read yes/no/on as booleans)
    config = load_mapping(
        "identifier: {column: id}\n"
        "fields:\n  - {column: opt, type: boolean, true_values: [yes, on, Y], false_values: [no, off]}\n"
    )
    # Then they are kept as the text the user wrote
    assert config.fields[0].true_values == ["yes", "on", "Y"]
    assert config.fields[0].false_values == ["no", "off"]


def test_a_single_date_format_may_be_written_as_text() -> None:
    config = load_mapping(
        "identifier: {column: id}\nfields:\n  - {column: d, type: date, format: '%d/%m/%Y'}\n"
    )
    assert config.fields[0].format == ["%d/%m/%Y"]


def test_event_properties_may_name_a_column_or_a_typed_spec() -> None:
    config = load_mapping(
        "identifier: {column: id}\n"
        "events:\n"
        "  - name: Plan Changed\n"
        "    time_column: ts\n"
        "    properties: {plan: plan_col, amount: {column: amt, type: float}}\n"
    )
    properties = config.events[0].properties
    assert properties["plan"].column == "plan_col" and properties["plan"].type is None
    assert properties["amount"].column == "amt" and properties["amount"].type is FieldType.FLOAT


@pytest.mark.parametrize(
    ("identifier", "create_missing", "expected"),
    [
        ("{column: id}", "", False),
        ("{column: id}", "create_missing: false", True),
        ("{column: id, as: braze_id}", "create_missing: true", False),
        ("{column: id, as: user_alias, alias_label: crm}", "", True),
        ("{column: id, as: user_alias, alias_label: crm}", "create_missing: false", True),
        ("{column: id, as: user_alias, alias_label: crm}", "create_missing: true", False),
    ],
)
def test_update_existing_only_follows_create_missing_and_the_identifier(
    identifier: str, create_missing: str, expected: bool
) -> None:
    config = load_mapping(f"identifier: {identifier}\n{create_missing}\n")
    assert config.update_existing_only is expected


def test_named_columns_cover_identifier_fields_events_and_purchases() -> None:
    config = load_mapping(
        "identifier: {column: id}\n"
        "fields: [{column: a}, {column: b, attribute: bee}]\n"
        "events: [{name_column: ev, time_column: ts, when_column: flag, properties: {p: pc}}]\n"
        "purchases: [{product_id_column: sku, currency_column: cur, price_column: price,"
        " quantity_column: qty, time_column: pts, properties: {q: qc}}]\n"
    )
    assert config.named_columns == {
        "id", "a", "b", "ev", "ts", "flag", "pc", "sku", "cur", "price", "qty", "pts", "qc"
    }  # fmt: skip


# ------------------------------------------------------------------------------- errors by key path


def test_a_wrong_strategy_names_its_field_and_the_allowed_values() -> None:
    problems = problems_of(
        "identifier: {column: id}\nfields: [{column: a}, {column: b}, {column: c, strategy: merge}]"
    )
    assert problems == [
        "fields[2].strategy: 'merge' is not one of 'set', 'add', 'remove', 'sum', 'set_if_empty' or 'clear'"
    ]


def test_sum_on_a_decimal_field_is_refused_at_load_time() -> None:
    assert problems_of("identifier: {column: id}\nfields: [{column: a, type: decimal, strategy: sum}]") == [
        "fields[0].strategy: sum works on integer fields only (Braze increments whole numbers)"
    ]


def test_add_on_a_non_array_field_is_refused() -> None:
    assert problems_of("identifier: {column: id}\nfields: [{column: a, type: string, strategy: add}]") == [
        "fields[0].strategy: add works on array fields only (type: array)"
    ]


def test_a_misspelt_key_is_reported_with_a_suggestion() -> None:
    assert problems_of("identifier: {column: id}\nfields: [{column: a, stratgy: set}]") == [
        "fields[0].stratgy: unknown key (did you mean 'strategy'?)"
    ]


def test_a_key_in_the_wrong_section_says_so() -> None:
    assert problems_of("identifier: {column: id}\nprefix: bc_\n") == [
        "prefix: not a key of this section (it belongs elsewhere in the config)"
    ]


def test_a_missing_required_key_is_named() -> None:
    assert problems_of("fields: []") == ["identifier: is required"]
    assert problems_of("identifier: {as: email}") == ["identifier.column: is required"]


def test_a_user_alias_without_label_is_refused() -> None:
    assert problems_of("identifier: {column: id, as: user_alias}") == [
        "identifier.alias_label: is required when the identifier is a user_alias"
    ]


def test_an_alias_label_for_another_identifier_is_refused() -> None:
    assert problems_of("identifier: {column: id, alias_label: crm}") == [
        "identifier.alias_label: only applies when the identifier is a user_alias"
    ]


def test_attribute_names_follow_brazes_rules() -> None:
    long_name = "a" * 256
    problems = problems_of(
        "identifier: {column: id}\n"
        f"fields: [{{column: a, attribute: $x}}, {{column: b, attribute: {long_name}}}]"
    )
    assert problems == [
        "fields[0].attribute: not a valid Braze attribute name: "
        "must not start with '$' (Braze reserves those names)",
        "fields[1].attribute: not a valid Braze attribute name: longer than 255 characters (256)",
    ]


def test_two_fields_writing_one_attribute_are_refused() -> None:
    assert problems_of(
        "identifier: {column: id}\nfields: [{column: a, attribute: x}, {column: b, attribute: x}]"
    ) == ["fields[1].attribute: 'x' is already written by fields[0]"]


def test_options_that_do_not_fit_the_type_are_named() -> None:
    problems = problems_of(
        "identifier: {column: id}\n"
        "fields:\n"
        "  - {column: a, type: date, separator: ','}\n"
        "  - {column: b, type: string, format: '%Y'}\n"
        "  - {column: c, type: integer, true_values: [y]}\n"
        "  - {column: d, type: string, merge_objects: true}\n"
        "  - {column: e, type: string, max_items: 3}\n"
        "  - {column: f, type: boolean, true_values: [y], false_values: [Y]}\n"
    )
    assert problems == [
        "fields[0].separator: only applies to fields of type array",
        "fields[1].format: only applies to fields of type date or datetime",
        "fields[2].true_values: only applies to fields of type boolean",
        "fields[3].merge_objects: only applies to fields of type object",
        "fields[4].max_items: only applies to fields of type array",
        "fields[5].false_values: ['y'] also listed as true values",
    ]


def test_standard_fields_refuse_other_types_and_array_strategies() -> None:
    problems = problems_of(
        "identifier: {column: id}\n"
        "fields:\n"
        "  - {column: a, attribute: dob, type: integer}\n"
        "  - {column: b, attribute: email, strategy: add}\n"
    )
    assert problems == [
        "fields[0].type: 'dob' is a Braze standard field; its type is date, datetime",
        "fields[1].strategy: 'email' is a Braze standard field: use set, set_if_empty or clear",
    ]


def test_event_and_purchase_rules_are_checked() -> None:
    problems = problems_of(
        "identifier: {column: id}\n"
        "events:\n"
        "  - {name: x, name_column: y, time_column: t, properties: {'$p': c, '': d}}\n"
        "purchases:\n"
        "  - {currency: XYZ, price_column: p, time_column: t}\n"
    )
    assert problems == [
        "events[0].name: give exactly one of name and name_column",
        "events[0].properties['$p']: not a valid property name: "
        "must not start with '$' (Braze reserves those names)",
        "events[0].properties['']: not a valid property name: must not be empty",
        "purchases[0].product_id: give exactly one of product_id and product_id_column",
        "purchases[0].currency: 'XYZ' is not an ISO 4217 currency code",
    ]


def test_source_settings_are_checked() -> None:
    assert problems_of("identifier: {column: id}\nsource: {format: jsonl, delimiter: ';'}") == [
        "source.delimiter: only applies to csv, tsv and psv files"
    ]
    assert problems_of("identifier: {column: id}\nsource: {format: csv, encoding: klingon}") == [
        "source.encoding: unknown text encoding 'klingon'"
    ]
    assert problems_of("identifier: {column: id}\nsource: {format: csv, encoding: utf-16}") == [
        "source.encoding: 'utf-16' is not ASCII-compatible (UTF-16/32 are not read); re-encode as UTF-8"
    ]
    assert problems_of("identifier: {column: id}\nsource: {format: csv, header: false}") == [
        "source.columns: is required when the file has no header line"
    ]
    assert problems_of("identifier: {column: id}\nsource: {format: xml}") == [
        "source.format: 'xml' is not one of 'csv', 'tsv', 'psv', 'jsonl', 'json', 'avro' or 'parquet'"
    ]
    assert problems_of("identifier: {column: id}\nsource: {format: parquet, header: false}") == [
        "source.header: only applies to csv, tsv and psv files"
    ]
    assert load_mapping("identifier: {column: id}\nsource: {format: parquet}").source.format == "parquet"


def test_a_declared_varchar_length_is_read_as_amperity_writes_it() -> None:
    # varchar(20) is type varchar with max_length 20, for fields, remaining columns and properties
    config = load_mapping(
        "identifier: {column: id}\nfields:\n  - {column: code, type: 'varchar(20)'}\n"
        "remaining: {type: 'varchar (8)'}\n"
    )
    assert (config.fields[0].type, config.fields[0].max_length) == ("varchar", 20)
    assert config.remaining is not None and config.remaining.max_length == 8
    # And a length said twice must agree; max_length is for text fields only
    assert problems_of(
        "identifier: {column: id}\nfields:\n  - {column: code, type: 'varchar(20)', max_length: 30}"
    ) == ["fields[0].max_length: is 30 but the type 'varchar(20)' declares 20"]
    assert problems_of(
        "identifier: {column: id}\nfields:\n  - {column: n, type: integer, max_length: 3}"
    ) == ["fields[0].max_length: only applies to fields of type string or varchar"]
    assert problems_of("identifier: {column: id}\nfields:\n  - {column: n, type: 'varchar(0)'}") == [
        "fields[0].max_length: must be greater than or equal to 1"
    ]


def test_wrong_value_kinds_are_explained_in_plain_words() -> None:
    problems = problems_of(
        "version: 2\nidentifier: {column: id}\nstrict: maybe\nnull_values: [1]\nfields: {column: a}\n"
        "default_country_code: abc\n"
    )
    assert problems == [
        "version: must be 1",
        "fields: must be a list",
        "strict: must be true or false",
        "null_values[0]: must be text (quote it in YAML)",
        "default_country_code: must be a country calling code such as +49 or 1",
    ]


def test_every_problem_of_one_file_is_listed_with_the_file_name(tmp_path: Path) -> None:
    # Given a file with two independent problems
    path = tmp_path / "lytics.yaml"
    path.write_text("identifier: {column: id}\nfields: [{column: a, type: tiny}]\non_invalid: ignore\n")
    # When it is loaded
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(path)
    # Then each problem is on its own line, prefixed with the file
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert [problem.path for problem in caught.value.problems] == ["fields[0].type", "on_invalid"]


def test_syntax_errors_give_the_line() -> None:
    assert problems_of("identifier: {column: id\nfields: [")[0].startswith("not valid YAML at line")
    assert problems_of('{"identifier": {"column": "id"},}')[0].startswith("not valid JSON at line 1")


def test_a_repeated_key_is_an_error_rather_than_silently_replaced() -> None:
    assert problems_of("identifier: {column: a}\nidentifier: {column: b}\n") == [
        "not valid YAML at line 2, column 1: duplicate key 'identifier'"
    ]


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems_of("- just\n- a list\n") == ["the config must be a mapping of keys to values"]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MappingConfigError, match=r"nope\.yaml: file not found"):
        load_mapping(missing)


def test_the_config_error_is_a_value_error_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError, match="identifier: is required"):
        load_mapping("{}")


def test_models_can_be_built_in_python_too() -> None:
    config = MappingConfig.model_validate({"identifier": {"column": "id", "as": "email"}})
    assert config.identifier.kind is IdentifierKind.EMAIL
