"""The registry: every integration declared once, found by name, and nothing else accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpbridge.integrations.registry import (
    IntegrationEntry,
    UnknownIntegrationError,
    all_integrations,
    get_integration,
    known_integrations,
)
from cdpbridge.mapping import Mapper, MappingConfigError, load_mapping
from cdpbridge.records import RowPosition, SourceRow

REPOSITORY = Path(__file__).resolve().parents[3]


def test_generic_blueconic_and_notify_are_the_registered_integrations() -> None:
    assert known_integrations() == ("generic", "blueconic", "notify")
    assert [entry.name for entry in all_integrations()] == ["generic", "blueconic", "notify"]


def mapped_imports() -> list[str]:
    """The integrations whose inbound files run through a mapping config (Notify's do not)."""
    return [name for name in known_integrations() if get_integration(name).example_config is not None]


def test_notify_ingests_its_inbound_files_itself() -> None:
    entry = get_integration("notify")
    assert entry.example_config is None and entry.samples == ()
    assert entry.export("segment").name == "notify"


@pytest.mark.parametrize("name", mapped_imports())
def test_an_entry_names_its_inbound_prefix_and_builds_a_transformer_from_its_example(name: str) -> None:
    entry = get_integration(name)
    assert isinstance(entry, IntegrationEntry)
    assert entry.inbound_prefix == f"inbound/{name}/"
    assert entry.example_config is not None
    config = load_mapping(entry.example_config)
    assert config.integration == name
    transformer = entry.transformer(config)
    update = transformer.map_row(SourceRow(RowPosition("example", 1), {config.identifier.column: "u1"}))
    assert update.user_key is not None
    for sample in entry.samples:
        header = sample.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert transformer.check_columns(header).errors == ()


def test_blueconic_declares_its_segment_export_and_generic_none() -> None:
    assert get_integration("blueconic").export("segment").name == "blueconic"
    with pytest.raises(ValueError, match="integration 'generic' has no export 'segment' \\(known: none\\)"):
        get_integration("generic").export("segment")


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        UnknownIntegrationError, match=r"unknown integration 'lytics' \(known: generic, blueconic, notify\)"
    ):
        get_integration("lytics")


def test_a_config_naming_an_unregistered_integration_is_refused_at_load() -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping("version: 1\nintegration: amperity\nidentifier: {column: id}\n")
    known = "(known: generic, blueconic, notify)"
    assert f"integration: unknown integration 'amperity' {known}" in str(caught.value)


def test_the_schema_lists_only_registered_integrations() -> None:
    schema = json.loads((REPOSITORY / "schemas" / "mapping.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["integration"]["enum"] == list(known_integrations())


def test_the_generic_transformer_is_the_column_mapper() -> None:
    assert get_integration("generic").transformer is Mapper
