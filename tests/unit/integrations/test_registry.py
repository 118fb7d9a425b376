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


def test_generic_and_blueconic_are_the_registered_integrations() -> None:
    assert known_integrations()[:2] == ("generic", "blueconic")
    assert "lytics" in known_integrations()
    assert "amperity" in known_integrations()
    assert "notify" in known_integrations()
    assert [entry.name for entry in all_integrations()] == list(known_integrations())


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
    if config.identifier is not None:
        update = transformer.map_row(SourceRow(RowPosition("example", 1), {config.identifier.column: "u1"}))
        assert update.user_key
    for sample in entry.samples:
        first_line = sample.read_text(encoding="utf-8").splitlines()[0]
        if config.identifier is None:
            # Records carry their own identity: the sample's first record maps to a user.
            update = transformer.map_row(SourceRow(RowPosition(sample.name, 1), json.loads(first_line)))
            assert update.user_key and not update.rejected
            continue
        assert transformer.check_columns(first_line.split(",")).errors == ()


def test_blueconic_declares_its_segment_export_and_generic_none() -> None:
    assert get_integration("blueconic").export("segment").name == "blueconic"
    with pytest.raises(ValueError, match="integration 'generic' has no export 'segment' \\(known: none\\)"):
        get_integration("generic").export("segment")


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    known = ", ".join(known_integrations())
    with pytest.raises(UnknownIntegrationError, match=rf"unknown integration 'acme' \(known: {known}\)"):
        get_integration("acme")


def test_a_config_naming_an_unregistered_integration_is_refused_at_load() -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_mapping("version: 1\nintegration: acme\nidentifier: {column: id}\n")
    known = ", ".join(known_integrations())
    assert f"integration: unknown integration 'acme' (known: {known})" in str(caught.value)


def test_the_schema_lists_only_registered_integrations() -> None:
    schema = json.loads((REPOSITORY / "schemas" / "mapping.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["integration"]["enum"] == list(known_integrations())


def test_the_generic_transformer_is_the_column_mapper() -> None:
    assert get_integration("generic").transformer is Mapper
