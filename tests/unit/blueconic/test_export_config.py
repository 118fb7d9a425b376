"""The BlueConic export config: segment forms, Braze paths, columns, and what Braze is asked for."""

import pytest

from cdpbridge.exports.segment import SegmentExportError, SegmentRef
from cdpbridge.integrations.blueconic.export import (
    BLUECONIC_EXPORT,
    BlueConicExportConfig,
    braze_path_problem,
    load_export_config,
)

BASE = {
    "segment": {"id": "3f0c1d2e-aaaa-bbbb-cccc-1234567890ab"},
    "identifiers": [{"braze": "external_id", "column": "crm_customer_id"}],
}


def config(**changes: object) -> BlueConicExportConfig:
    parsed = BLUECONIC_EXPORT.parse_config({**BASE, **changes}, "test.yaml")
    assert isinstance(parsed, BlueConicExportConfig)
    return parsed


def test_export_fields_name_each_top_level_field_once_and_custom_attributes_narrow_the_export():
    # Given identifiers and fields from every kind of path
    parsed = config(
        identifiers=[
            {"braze": "external_id", "column": "crm_customer_id"},
            {"braze": "user_aliases.blueconic", "column": "profile_id"},
        ],
        fields=[
            {"braze": "first_name", "column": "firstname"},
            {"braze": "custom_attributes.loyalty_tier", "column": "tier"},
            {"braze": "custom_attributes.points", "column": "points"},
            {"braze": "email", "column": "email"},
        ],
    )

    # Then Braze is asked for the top-level fields and only the named custom attributes
    assert parsed.export_fields() == [
        "custom_attributes",
        "email",
        "external_id",
        "first_name",
        "user_aliases",
    ]
    assert parsed.export_custom_attributes() == ["loyalty_tier", "points"]
    assert [column.column for column in parsed.columns] == [
        "crm_customer_id",
        "profile_id",
        "firstname",
        "tier",
        "points",
        "email",
    ]


def test_without_custom_attributes_none_are_asked_for_and_the_whole_object_asks_for_all():
    assert config().export_custom_attributes() is None
    whole = config(fields=[{"braze": "custom_attributes", "column": "all_custom"}])
    assert whole.export_custom_attributes() is None
    assert "custom_attributes" in whole.export_fields()


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ({"id": "abc"}, SegmentRef(id="abc")),
        ({"name": "VIP"}, SegmentRef(name="VIP")),
        ("VIP", SegmentRef(id_or_name="VIP")),
    ],
)
def test_a_segment_is_an_id_a_name_or_a_bare_text(segment, expected):
    assert config(segment=segment).segment == expected


@pytest.mark.parametrize("segment", [{"id": "a", "name": "b"}, {}, {"name": ""}, {"label": "x"}])
def test_a_segment_needs_exactly_one_of_id_and_name(segment):
    with pytest.raises(SegmentExportError, match=r"test\.yaml: invalid blueconic export config:\n  segment"):
        config(segment=segment)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("loyalty_tier", "custom_attributes.<name>"),
        ("custom_attributes.", "name the attribute"),
        ("user_aliases.", "name the alias label"),
        ("first_name.initial", "only custom_attributes.<name> and user_aliases.<label>"),
    ],
)
def test_a_path_braze_does_not_export_is_refused_with_the_reason(path, reason):
    # When a field names it
    with pytest.raises(SegmentExportError) as error:
        config(fields=[{"braze": path, "column": "x"}])

    # Then the error names the entry, the path and why
    message = str(error.value)
    assert "fields.0.braze" in message
    assert repr(path) in message
    assert reason in message
    assert braze_path_problem(path) is not None


def test_known_paths_pass():
    for path in ("external_id", "dob", "custom_attributes.a.b", "user_aliases.blueconic", "push_subscribe"):
        assert braze_path_problem(path) is None


def test_columns_must_be_unique_and_identifiers_given():
    with pytest.raises(SegmentExportError, match="column 'crm_customer_id' appears twice"):
        config(fields=[{"braze": "email", "column": "crm_customer_id"}])
    with pytest.raises(SegmentExportError, match="identifiers"):
        config(identifiers=[])


def test_unknown_keys_and_bad_folders_are_refused():
    with pytest.raises(SegmentExportError, match="fieldz"):
        config(fieldz=[])
    with pytest.raises(SegmentExportError, match="output_folder"):
        config(output_folder="../elsewhere")
    assert config(output_folder="vip-daily").output_folder == "vip-daily"


def test_yaml_reads_names_like_no_as_text_and_refuses_repeated_keys():
    # Given YAML where a YAML 1.1 reader would turn the segment name into a boolean
    text = "segment: {name: NO}\nidentifiers:\n  - {braze: external_id, column: id}\n"

    # Then the name stays text
    assert load_export_config(text).segment.name == "NO"
    with pytest.raises(SegmentExportError, match="duplicate key 'segment'"):
        load_export_config(text + "segment: {id: x}\n")
