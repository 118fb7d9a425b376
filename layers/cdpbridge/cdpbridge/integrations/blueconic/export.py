"""Braze segment -> BlueConic import CSV: the export config and the conversion of exported users.

A config names the segment, the identifier columns BlueConic matches profiles on, and the fields::

    segment: {name: "Newsletter subscribers"}      # or {id: "..."}, or a bare id or name
    identifiers:
      - {braze: external_id, column: crm_customer_id}
    fields:
      - {braze: first_name, column: firstname}
      - {braze: custom_attributes.loyalty_tier, column: loyalty_tier}
      - {braze: user_aliases.blueconic, column: blueconic_profile_id}

``braze`` is a field of Braze's user export (``first_name``, ``email``, ``dob``, ``country``, ...),
``custom_attributes.<name>`` for a custom attribute, or ``user_aliases.<label>`` for the alias name
under that label. The CSV has one header line (identifier columns first) and one row per exported
user; users with no identifier value are left out (and counted in the report).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final, Self

import orjson
from pydantic import Field, model_validator

from cdpbridge.exports.columns import ExportColumn
from cdpbridge.exports.segment import (
    CUSTOM_ATTRIBUTES,
    EXPORT_FIELDS,
    USER_ALIASES,
    ExportIntegration,
    OutputCounters,
    SegmentExportConfig,
    csv_writer,
    parse_export_document,
)

BLUECONIC: Final = "blueconic"


def braze_path_problem(path: str) -> str | None:
    """Why ``path`` names nothing in a Braze user export, or None."""
    top, dot, rest = path.partition(".")
    if top in (CUSTOM_ATTRIBUTES, USER_ALIASES) and dot:
        return None if rest else f"name the {'attribute' if top == CUSTOM_ATTRIBUTES else 'alias label'}"
    if dot:
        return f"only custom_attributes.<name> and user_aliases.<label> have a second part, not {top!r}"
    if path not in EXPORT_FIELDS:
        return "not a field of Braze's user export (custom attributes are written custom_attributes.<name>)"
    return None


class BlueConicColumn(ExportColumn):
    """One CSV column and the exported Braze value it holds."""

    @staticmethod
    def path_problem(path: str) -> str | None:
        return braze_path_problem(path)


class BlueConicExportConfig(SegmentExportConfig):
    """A Braze segment exported as a BlueConic import CSV."""

    identifiers: list[BlueConicColumn] = Field(
        min_length=1, description="Columns BlueConic matches profiles on (e.g. external_id)."
    )
    fields: list[BlueConicColumn] = Field(default_factory=list)
    list_separator: str = Field(
        default="|", min_length=1, max_length=5, description="Joins the values of array attributes."
    )

    @model_validator(mode="after")
    def _unique_columns(self) -> Self:
        seen: set[str] = set()
        for entry in (*self.identifiers, *self.fields):
            if entry.column in seen:
                raise ValueError(f"column {entry.column!r} appears twice")
            seen.add(entry.column)
        return self

    @property
    def columns(self) -> list[BlueConicColumn]:
        return [*self.identifiers, *self.fields]

    def export_fields(self) -> list[str]:
        return sorted({entry.braze.partition(".")[0] for entry in self.columns})

    def export_custom_attributes(self) -> list[str] | None:
        names = sorted(
            {
                entry.braze.partition(".")[2]
                for entry in self.columns
                if entry.braze.startswith(f"{CUSTOM_ATTRIBUTES}.")
            }
        )
        # Asking for custom_attributes as a whole exports them all.
        if any(entry.braze == CUSTOM_ATTRIBUTES for entry in self.columns):
            return None
        return names or None


def braze_value(user: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in one exported user (None when Braze left it out)."""
    top, _, rest = path.partition(".")
    if not rest:
        return user.get(path)
    if top == CUSTOM_ATTRIBUTES:
        custom = user.get(CUSTOM_ATTRIBUTES)
        return custom.get(rest) if isinstance(custom, dict) else None
    for alias in user.get(USER_ALIASES) or ():
        if isinstance(alias, dict) and alias.get("alias_label") == rest:
            return alias.get("alias_name")
    return None


def csv_cell(value: Any, list_separator: str) -> str:
    """One value as BlueConic reads it: text as is, booleans lower-case, arrays joined, objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(
        item is None or isinstance(item, str | int | float | bool) for item in value
    ):
        return list_separator.join(csv_cell(item, list_separator) for item in value if item is not None)
    return orjson.dumps(value).decode()


def write_blueconic_csv(
    config: BlueConicExportConfig, users: Iterable[dict[str, Any]], out: IO[str]
) -> OutputCounters:
    """Writes the header and one row per user that has an identifier value."""
    writer = csv_writer(out)
    identifiers = [entry.braze for entry in config.identifiers]
    paths = [entry.braze for entry in config.columns]
    separator = config.list_separator
    writer.writerow([entry.column for entry in config.columns])
    counters = OutputCounters()
    for user in users:
        if all(braze_value(user, path) in (None, "") for path in identifiers):
            counters.users_skipped += 1
            continue
        writer.writerow([csv_cell(braze_value(user, path), separator) for path in paths])
        counters.rows_written += 1
    return counters


def _write_output(config: Any, users: Iterable[dict[str, Any]], out: IO[str]) -> OutputCounters:
    assert isinstance(config, BlueConicExportConfig)
    return write_blueconic_csv(config, users, out)


BLUECONIC_EXPORT: Final = ExportIntegration(
    name=BLUECONIC, config_model=BlueConicExportConfig, write_output=_write_output
)


def load_export_config(source: str | Path) -> BlueConicExportConfig:
    """A BlueConic export config from a file, or from YAML/JSON text."""
    if isinstance(source, Path) or (
        "\n" not in source and source.endswith((".yaml", ".yml", ".json")) and Path(source).is_file()
    ):
        path = Path(source)
        text, name = path.read_text(encoding="utf-8"), str(path)
    else:
        text, name = source, "export config"
    config = BLUECONIC_EXPORT.parse_config(parse_export_document(text, name), name)
    assert isinstance(config, BlueConicExportConfig)
    return config
