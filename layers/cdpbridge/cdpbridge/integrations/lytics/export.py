"""Braze segment -> the CSV a Lytics "Import CSV" job reads.

A config names the segment and the columns; ``email`` and ``external_id`` always come first (Lytics
merges profiles on them), then the configured fields, flattened: a path may reach into a nested
object (``custom_attributes.address.city``), arrays are joined with the list separator, and an
object left whole is written as JSON::

    segment: {name: "Engaged subscribers"}
    fields:
      - {braze: first_name, column: first_name}
      - {braze: custom_attributes.lytics_segments, column: lytics_segments}
      - {braze: custom_attributes.address.city, column: city}

The file lands in ``outbound/lytics/<segment>/<date>/<run>.csv``; users without an e-mail address
and without an external id are left out (and counted in the export's report).
"""

from __future__ import annotations

from collections.abc import Iterable
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
)

LYTICS: Final = "lytics"
EMAIL: Final = "email"
EXTERNAL_ID: Final = "external_id"


def braze_path_problem(path: str) -> str | None:
    """Why ``path`` names nothing in a Braze user export, or None."""
    top, _dot, rest = path.partition(".")
    if top == CUSTOM_ATTRIBUTES:
        return None if rest else "name the attribute: custom_attributes.<name>[.<key>...]"
    if top == USER_ALIASES:
        return None if rest and "." not in rest else "name the alias label: user_aliases.<label>"
    if top not in EXPORT_FIELDS:
        return "not a field of Braze's user export (custom attributes are written custom_attributes.<name>)"
    return None


class LyticsColumn(ExportColumn):
    """One CSV column and the exported Braze value it holds; a path may reach into nested keys."""

    @staticmethod
    def path_problem(path: str) -> str | None:
        return braze_path_problem(path)


class LyticsExportConfig(SegmentExportConfig):
    """A Braze segment exported as a Lytics import CSV."""

    email_column: str = Field(default=EMAIL, min_length=1, description="Header of the first column.")
    external_id_column: str = Field(default=EXTERNAL_ID, min_length=1, description="Header of the second.")
    fields: list[LyticsColumn] = Field(default_factory=list, description="The columns after the two ids.")
    list_separator: str = Field(default="|", min_length=1, max_length=5, description="Joins array values.")

    @model_validator(mode="after")
    def _unique_columns(self) -> Self:
        seen: set[str] = set()
        for column in self.headers:
            if column in seen:
                raise ValueError(f"column {column!r} appears twice")
            seen.add(column)
        return self

    @property
    def columns(self) -> list[LyticsColumn]:
        return [
            LyticsColumn(braze=EMAIL, column=self.email_column),
            LyticsColumn(braze=EXTERNAL_ID, column=self.external_id_column),
            *self.fields,
        ]

    @property
    def headers(self) -> list[str]:
        return [column.column for column in self.columns]

    def export_fields(self) -> list[str]:
        return sorted({column.braze.partition(".")[0] for column in self.columns})

    def export_custom_attributes(self) -> list[str] | None:
        names = {
            column.braze.split(".")[1]
            for column in self.columns
            if column.braze.startswith(f"{CUSTOM_ATTRIBUTES}.")
        }
        return sorted(names) or None


def braze_value(user: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in one exported user (None when Braze left it out)."""
    top, _, rest = path.partition(".")
    if not rest:
        return user.get(path)
    if top == USER_ALIASES:
        for alias in user.get(USER_ALIASES) or ():
            if isinstance(alias, dict) and alias.get("alias_label") == rest:
                return alias.get("alias_name")
        return None
    value: Any = user.get(top)
    for key in rest.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def csv_cell(value: Any, list_separator: str) -> str:
    """Text as is, booleans lower-case, arrays of scalars joined, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str | int | float | bool) for item in value):
        return list_separator.join(csv_cell(item, list_separator) for item in value)
    return orjson.dumps(value).decode()


def write_lytics_csv(
    config: LyticsExportConfig, users: Iterable[dict[str, Any]], out: IO[str]
) -> OutputCounters:
    """Writes the header and one row per user with an e-mail address or an external id."""
    writer = csv_writer(out)
    columns = config.columns
    writer.writerow(config.headers)
    counters = OutputCounters()
    for user in users:
        if not user.get(EMAIL) and not user.get(EXTERNAL_ID):
            counters.users_skipped += 1
            continue
        writer.writerow(
            [csv_cell(braze_value(user, column.braze), config.list_separator) for column in columns]
        )
        counters.rows_written += 1
    return counters


def _write_output(config: Any, users: Iterable[dict[str, Any]], out: IO[str]) -> OutputCounters:
    assert isinstance(config, LyticsExportConfig)
    return write_lytics_csv(config, users, out)


LYTICS_EXPORT: Final = ExportIntegration(
    name=LYTICS, config_model=LyticsExportConfig, write_output=_write_output
)
