"""A CSV column of an export: which value of Braze's user export it holds, under which header.

Each export integration reads the paths its partner's CSV needs (BlueConic a field, a custom
attribute or an alias; Lytics also keys inside a nested attribute) and says so in ``path_problem``;
the checks of the header are the same for all.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from cdpbridge.exports.segment import ExportModel


class ExportColumn(ExportModel):
    """One CSV column and the exported Braze value it holds."""

    braze: str = Field(
        min_length=1, description="export field, custom_attributes.<name> or user_aliases.<label>"
    )
    column: str = Field(min_length=1, description="the CSV header of the column")

    @staticmethod
    def path_problem(path: str) -> str | None:
        """Why ``path`` names nothing this export reads, or None (a subclass says which it reads)."""
        return None

    @field_validator("braze")
    @classmethod
    def _known_path(cls, value: str) -> str:
        problem = cls.path_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r}: {problem}")
        return value

    @field_validator("column")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if value != value.strip() or any(ch in value for ch in "\r\n"):
            raise ValueError("must be one line without surrounding spaces")
        return value
