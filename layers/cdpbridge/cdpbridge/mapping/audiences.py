"""Audience files: one row per user and audience, each audience a custom attribute of its users.

A CDP sends audience membership as rows of (user, audience, member flag or score). Each audience
becomes one custom attribute named by the config's ``attribute_pattern`` (``amperity_{audience}``):
``true`` or the score while the user is in it, unset (or ``false``) once a row says the user left.
Field-level dedupe then sends only what changed since the last file, like any other attribute.

``AudienceMapper`` is a ``RecordTransformer``: no I/O, never raises on bad data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from cdpbridge.mapping.coerce import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    Converter,
    InvalidValueError,
    boolean_converter,
    to_float,
    to_integer,
)
from cdpbridge.mapping.config import (
    AudienceSpec,
    ConfigProblem,
    MappingConfig,
    attribute_name_problem,
)
from cdpbridge.mapping.enums import AudienceLeave
from cdpbridge.mapping.mapper import ColumnCheck, Mapper
from cdpbridge.mapping.pii import detail_function
from cdpbridge.mapping.standard import STANDARD_FIELDS, shadowed_standard_field
from cdpbridge.records import RowIssue, SourceRow
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

_plain_detail = detail_function(False)


def audience_score(value: Any) -> int | float:
    """A score as Braze's number: whole numbers stay integers (so 3 is not written as 3.0)."""
    try:
        return to_integer(value)
    except InvalidValueError:
        pass
    try:
        return to_float(value)
    except InvalidValueError:
        raise InvalidValueError("not a number (an audience score)") from None


class AudienceMapper:
    """Maps the rows of an audience file (a config with an ``audiences`` section)."""

    def __init__(self, config: MappingConfig) -> None:
        if config.audiences is None:
            raise ValueError("AudienceMapper needs a config with an audiences section")
        self._config = config
        self._spec: AudienceSpec = config.audiences
        # The identifier rules are the mapper's own: the audience config maps no field, so the
        # mapper's update carries the identifier (or its problem) and nothing else.
        self._identity = Mapper(config)
        self._null_values = frozenset(config.null_values)
        self._trim = config.trim
        spec = self._spec
        self._member: Converter | None = None
        if spec.member_column is not None:
            self._member = boolean_converter(
                frozenset(spec.true_values) if spec.true_values is not None else DEFAULT_TRUE_VALUES,
                frozenset(spec.false_values) if spec.false_values is not None else DEFAULT_FALSE_VALUES,
            )
        leave_value = False if spec.on_leave is AudienceLeave.FALSE else None
        self._leave = AttributeWrite(
            leave_value, WriteMode.SET if leave_value is False else WriteMode.UNSET, spec.audience_column
        )
        # Attribute names per audience name, with the reason an attribute cannot be used.
        self._attributes: dict[str, tuple[str, str | None]] = {}

    @property
    def config(self) -> MappingConfig:
        return self._config

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck:
        available = set(columns)
        needed = [("identifier.column", self._config.required_identifier.column)]
        spec = self._spec
        needed.append(("audiences.audience_column", spec.audience_column))
        if spec.member_column is not None:
            needed.append(("audiences.member_column", spec.member_column))
        if spec.score_column is not None:
            needed.append(("audiences.score_column", spec.score_column))
        missing = tuple(column for _path, column in needed if column not in available)
        # Every column is needed: without the flag or score no row says whether the user is in.
        errors = tuple(
            ConfigProblem(path, f"the file has no column '{column}'")
            for path, column in needed
            if column not in available
        )
        return ColumnCheck(missing, (), errors)

    def without_columns(self, columns: Iterable[str]) -> Self:
        return self  # no optional columns: check_columns refuses a file lacking any

    def map_row(self, row: SourceRow) -> UserUpdate:
        update = self._identity.map_row(row)
        if update.rejected:
            return update
        values = row.values
        spec = self._spec
        position = row.position
        audience = self._cell(values.get(spec.audience_column))
        if audience is None:
            return self._reject(update, RowIssue(position, spec.audience_column, "missing audience name"))
        if not isinstance(audience, str):
            audience = str(audience)
        attribute, problem = self._attribute(audience)
        if problem is not None:
            return self._reject(
                update, RowIssue(position, spec.audience_column, problem, _plain_detail(audience))
            )
        write, issue = self._membership(values, row)
        if issue is not None:
            return self._reject(update, issue)
        if write is not None:
            update.attributes[attribute] = write
        return update

    # ------------------------------------------------------------------------------------ helpers

    def _cell(self, raw: Any) -> Any:
        if raw is None:
            return None
        if raw.__class__ is str:
            text: str = raw.strip() if self._trim else raw
            return None if text in self._null_values else text
        return raw

    def _attribute(self, audience: str) -> tuple[str, str | None]:
        known = self._attributes.get(audience)
        if known is None:
            attribute = self._spec.attribute_for(audience)
            problem: str | None = None
            name_problem = attribute_name_problem(attribute) if attribute else "must not be empty"
            if name_problem is not None or attribute == self._spec.attribute_pattern.replace(
                "{audience}", ""
            ):
                problem = (
                    f"audience name gives no valid attribute name: {name_problem or 'no letters or digits'}"
                )
            elif attribute in STANDARD_FIELDS or shadowed_standard_field(attribute) is not None:
                standard = attribute if attribute in STANDARD_FIELDS else shadowed_standard_field(attribute)
                problem = f"audience attribute '{attribute}' would write Braze's standard field '{standard}'"
            known = (attribute, problem)
            self._attributes[audience] = known
        return known

    def _membership(
        self, values: dict[str, Any], row: SourceRow
    ) -> tuple[AttributeWrite | None, RowIssue | None]:
        spec = self._spec
        if spec.score_column is not None:
            raw = self._cell(values.get(spec.score_column))
            if raw is None:
                return self._leave, None
            try:
                return AttributeWrite(audience_score(raw), WriteMode.SET, spec.score_column), None
            except InvalidValueError as error:
                return None, RowIssue(row.position, spec.score_column, error.reason, _plain_detail(raw))
        if self._member is not None and spec.member_column is not None:
            raw = self._cell(values.get(spec.member_column))
            if raw is None:
                return None, RowIssue(row.position, spec.member_column, "missing member flag (true or false)")
            try:
                member = self._member(raw)
            except InvalidValueError as error:
                return None, RowIssue(row.position, spec.member_column, error.reason, _plain_detail(raw))
            return (AttributeWrite(True, WriteMode.SET, spec.member_column) if member else self._leave), None
        return AttributeWrite(True, WriteMode.SET, spec.audience_column), None

    def _reject(self, update: UserUpdate, issue: RowIssue) -> UserUpdate:
        # One row is one audience of one user: without its audience or membership nothing is left to
        # write, so the row is a reject under skip_field too.
        update.issues.append(issue)
        update.rejected = True
        return update


def transformer_for(config: MappingConfig) -> Mapper | AudienceMapper:
    """The transformer a config asks for: audience files by ``AudienceMapper``, the rest by ``Mapper``."""
    return AudienceMapper(config) if config.audiences is not None else Mapper(config)


__all__ = ["AudienceMapper", "audience_score", "transformer_for"]
