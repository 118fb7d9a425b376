"""The mapping config: one YAML or JSON document per inbound integration, validated by pydantic.

``load_mapping`` reads it and turns every problem into a ``MappingConfigError`` that lists each one
as ``<key path>: <what is wrong>``, e.g. ``fields[2].strategy: sum works on integer fields only``.
"""

from __future__ import annotations

import codecs
import difflib
import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import orjson
import yaml
from aws_lambda_powertools import Logger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from cdpbridge.integrations.lytics.settings import LyticsSettings
from cdpbridge.integrations.registry import (
    check_integration_name,
    get_integration,
    known_integrations,
    reads_identifier_column,
)
from cdpbridge.mapping.coerce import DEFAULT_FALSE_VALUES, DEFAULT_TRUE_VALUES, MAX_STRING_LENGTH
from cdpbridge.mapping.currencies import currency_code
from cdpbridge.mapping.enums import (
    AudienceLeave,
    FieldType,
    IdentifierKind,
    OnInvalid,
    SourceFormat,
    StandardFieldsPolicy,
    Strategy,
)
from cdpbridge.mapping.standard import (
    STANDARD_FIELDS,
    normalize_default_country_code,
    shadowed_standard_field,
)
from cdpbridge.sources.spec import SourceSpec

logger = Logger(service="cdpbridge", child=True)

DEFAULT_NULL_VALUES: Final[tuple[str, ...]] = ("", "null", "NULL", "nan", "NaN", "None")
# Braze's event payload limit is 100 KB on current contracts and 50 KB on older ones.
DEFAULT_MAX_EVENT_PROPERTIES_BYTES: Final = 50_000
MAX_EVENT_PROPERTIES_BYTES: Final = 100_000

NonEmptyStr = Annotated[str, Field(min_length=1)]
# A registered integration's name (cdpbridge.integrations.registry): any other is refused at load,
# with the list of known ones, instead of at run time after retry files were replayed.
IntegrationName = Annotated[
    str,
    AfterValidator(check_integration_name),
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(known_integrations()),
            "title": "Integration",
            "description": "Which integration's files these are (one of the registered integrations).",
        }
    ),
]
# Amperity declares text columns as ``varchar(20)``: the type with its length in characters.
_DECLARED_VARCHAR: Final = re.compile(r"varchar\s*\(\s*(\d+)\s*\)")
_TEXT_FIELD_TYPES: Final = frozenset({FieldType.STRING, FieldType.VARCHAR})
_ASCII_TEXT: Final = bytes(range(128)).decode("ascii")


# ------------------------------------------------------------------------------ problems, warnings


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config: where (a key path such as ``fields[2].strategy``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Something allowed but probably unintended; an error when the config is ``strict``."""

    path: str
    message: str
    # The Braze standard field a shadowing name stands in for, when that is the warning.
    standard_field: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MappingConfigError(ValueError):
    """A config that cannot be used; ``str()`` lists every problem on its own line."""

    def __init__(self, problems: Iterable[ConfigProblem], source: str | None = None) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{problem}" for problem in self.problems)


class _SemanticProblems(ValueError):
    """Raised from model validators so that problems keep their own key paths through pydantic."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


def _raise_if(problems: list[ConfigProblem]) -> None:
    if problems:
        raise _SemanticProblems(problems)


def attribute_name_problem(name: str) -> str | None:
    """Why Braze would refuse ``name`` as an attribute or property name, or None."""
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_STRING_LENGTH:
        return f"longer than {MAX_STRING_LENGTH} characters ({len(name)})"
    if name.startswith("$"):
        return "must not start with '$' (Braze reserves those names)"
    return None


# ----------------------------------------------------------------------------------------- models


class _ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _type_schema(schema: dict[str, Any]) -> None:
    """A ``type`` is one of the field types or, as Amperity writes it, ``varchar(<length>)``."""
    schema["anyOf"] = [
        *schema["anyOf"][:-1],
        {"type": "string", "pattern": r"^varchar\s*\(\s*\d+\s*\)$"},
        schema["anyOf"][-1],
    ]


class _ConverterKnobs(_ConfigModel):
    """Options shared by fields, remaining columns and event properties."""

    separator: NonEmptyStr | None = Field(
        default=None,
        description="Array fields: split plain cells on this text. A cell starting with '[' is always "
        "read as a JSON array; without a separator a plain cell is a one-element array.",
    )
    format: list[NonEmptyStr] | None = Field(
        default=None,
        description="Date/datetime fields: strptime pattern(s) tried in order, or 'epoch' / 'epoch_ms'.",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}},
                {"type": "null"},
            ]
        },
    )
    true_values: list[str] | None = Field(default=None, description="Boolean fields: text meaning true.")
    false_values: list[str] | None = Field(default=None, description="Boolean fields: text meaning false.")
    pii: bool | None = Field(
        default=None,
        description="Treat the column as personal data: its values never appear in issue details. "
        "Default: decided from the column and attribute names (e-mail, phone, name, address, ...).",
    )
    max_length: int | None = Field(
        default=None,
        ge=1,
        description="Text fields: the declared length in characters; a longer value is invalid. "
        "type: varchar(20) says the same as type: varchar with max_length: 20.",
    )

    _as_format_list = field_validator("format", mode="before")(_as_list)

    @model_validator(mode="before")
    @classmethod
    def _declared_length(cls, data: Any) -> Any:
        """``type: varchar(20)`` as Amperity writes it: type varchar, max_length 20."""
        if not isinstance(data, dict):
            return data
        declared = data.get("type")
        match = _DECLARED_VARCHAR.fullmatch(declared.strip()) if isinstance(declared, str) else None
        if match is None:
            return data
        length = int(match.group(1))
        given = data.get("max_length")
        if given is not None and given != length:
            _raise_if(
                [ConfigProblem("max_length", f"is {given} but the type {declared!r} declares {length}")]
            )
        return {**data, "type": FieldType.VARCHAR.value, "max_length": length}

    def _knob_problems(self, effective_type: FieldType | None) -> list[ConfigProblem]:
        problems: list[ConfigProblem] = []
        booleans = effective_type is FieldType.BOOLEAN
        dates = effective_type in (FieldType.DATE, FieldType.DATETIME)
        if self.separator is not None and effective_type is not FieldType.ARRAY:
            problems.append(ConfigProblem("separator", "only applies to fields of type array"))
        if self.format is not None and not dates:
            problems.append(ConfigProblem("format", "only applies to fields of type date or datetime"))
        if self.format is not None and effective_type is FieldType.DATE:
            epoch = {"epoch", "epoch_ms"} & set(self.format)
            if epoch:
                problems.append(
                    ConfigProblem("format", f"{sorted(epoch)[0]} only applies to datetime fields")
                )
        if self.max_length is not None and effective_type not in _TEXT_FIELD_TYPES:
            problems.append(ConfigProblem("max_length", "only applies to fields of type string or varchar"))
        for key in ("true_values", "false_values"):
            if getattr(self, key) is not None and not booleans:
                problems.append(ConfigProblem(key, "only applies to fields of type boolean"))
        if booleans:
            truthy = {text.casefold() for text in self.true_values or DEFAULT_TRUE_VALUES}
            falsy = {text.casefold() for text in self.false_values or DEFAULT_FALSE_VALUES}
            overlap = truthy & falsy
            if overlap:
                problems.append(
                    ConfigProblem("false_values", f"{sorted(overlap)} also listed as true values")
                )
        return problems


def _strategy_problems(
    strategy: Strategy, field_type: FieldType | None, merge_objects: bool, standard: str | None
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if standard is not None and strategy not in (Strategy.SET, Strategy.SET_IF_EMPTY, Strategy.CLEAR):
        problems.append(
            ConfigProblem(
                "strategy", f"'{standard}' is a Braze standard field: use set, set_if_empty or clear"
            )
        )
        return problems
    if strategy in (Strategy.ADD, Strategy.REMOVE) and field_type not in (None, FieldType.ARRAY):
        problems.append(ConfigProblem("strategy", f"{strategy} works on array fields only (type: array)"))
    if strategy is Strategy.SUM and field_type not in (None, FieldType.INTEGER):
        problems.append(
            ConfigProblem("strategy", "sum works on integer fields only (Braze increments whole numbers)")
        )
    if merge_objects:
        if field_type not in (None, FieldType.OBJECT):
            problems.append(ConfigProblem("merge_objects", "only applies to fields of type object"))
        if strategy not in (Strategy.SET, Strategy.CLEAR):
            problems.append(ConfigProblem("merge_objects", "works with the strategies set and clear only"))
    return problems


def implied_type(field_type: FieldType | None, strategy: Strategy, merge_objects: bool) -> FieldType | None:
    """The type a strategy implies when the config gives none (add/remove: array, sum: integer)."""
    if field_type is not None:
        return field_type
    if strategy in (Strategy.ADD, Strategy.REMOVE):
        return FieldType.ARRAY
    if strategy is Strategy.SUM:
        return FieldType.INTEGER
    if merge_objects:
        return FieldType.OBJECT
    return None


class SourceSettings(_ConfigModel):
    """How the file is read; the same keys as the source readers' spec."""

    format: SourceFormat = SourceFormat.CSV
    delimiter: str | None = Field(default=None, description="Default: ',' for csv, tab for tsv, '|' for psv.")
    quotechar: str | None = Field(default='"', description="null reads quote characters literally.")
    encoding: str = "utf-8"
    compression: Literal["auto", "none", "gzip", "zip"] = Field(
        default="auto", description="'auto' decides from the file name (.gz, .zip)."
    )
    header: bool = Field(default=True, description="Delimited files: the first line names the columns.")
    columns: list[NonEmptyStr] | None = Field(
        default=None, description="Delimited files without a header line: the column names, in order."
    )
    max_decompressed_bytes: int = Field(
        default=16 * 1024**3, ge=1, description="gzip and zip: a file that decompresses past this fails."
    )
    max_compression_ratio: float = Field(
        default=200.0,
        ge=1.0,
        description="gzip and zip: a file that decompresses to more than this many times its compressed "
        "bytes fails (a decompression bomb); judged once 16 MiB are decompressed.",
    )
    max_field_chars: int = Field(
        default=1024**2, ge=1, description="Delimited files: a longer field makes its row a reject."
    )

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _single_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("must be exactly one character")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            name = codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding '{value}'") from None
        # The readers split lines on raw bytes, which needs ASCII to encode as itself.
        try:
            compatible = _ASCII_TEXT.encode(name) == _ASCII_TEXT.encode("ascii")
        except UnicodeError:
            compatible = False
        if not compatible:
            raise ValueError(
                f"'{value}' is not ASCII-compatible (UTF-16/32 are not read); re-encode as UTF-8"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if not self.format.is_delimited:
            for key in ("delimiter", "columns"):
                if getattr(self, key) is not None:
                    problems.append(ConfigProblem(key, "only applies to csv, tsv and psv files"))
            if not self.header:
                problems.append(ConfigProblem("header", "only applies to csv, tsv and psv files"))
        elif self.header and self.columns is not None:
            problems.append(ConfigProblem("columns", "only for files without a header line (header: false)"))
        elif not self.header and not self.columns:
            problems.append(ConfigProblem("columns", "is required when the file has no header line"))
        if self.quotechar is not None and self.quotechar == self.effective_delimiter:
            problems.append(ConfigProblem("quotechar", "must differ from the delimiter"))
        _raise_if(problems)
        return self

    @property
    def effective_delimiter(self) -> str | None:
        """The delimiter in force: the configured one or the format's default (None for JSON/Avro)."""
        return self.delimiter or self.format.default_delimiter

    def reader_spec(self) -> SourceSpec:
        """The readers' spec of these settings (cdpbridge.sources): the one place the config's
        source section becomes what open_rows, the header check and the byte-range planner take."""
        return SourceSpec.model_validate(self.model_dump())


class IdentifierSpec(_ConfigModel):
    """Which column identifies the Braze user, and as what."""

    column: NonEmptyStr
    kind: IdentifierKind = Field(default=IdentifierKind.EXTERNAL_ID, alias="as")
    alias_label: NonEmptyStr | None = Field(
        default=None, description="Required for user_alias: the alias label; the column gives alias_name."
    )

    @model_validator(mode="after")
    def _alias_label_fits_kind(self) -> Self:
        if self.kind is IdentifierKind.USER_ALIAS and self.alias_label is None:
            _raise_if([ConfigProblem("alias_label", "is required when the identifier is a user_alias")])
        if self.kind is not IdentifierKind.USER_ALIAS and self.alias_label is not None:
            _raise_if([ConfigProblem("alias_label", "only applies when the identifier is a user_alias")])
        return self


class FieldSpec(_ConverterKnobs):
    """One source column written to one Braze attribute."""

    column: NonEmptyStr
    attribute: str | None = Field(default=None, description="Braze attribute name; default: the column name.")
    type: FieldType | None = Field(
        default=None,
        description="Default: the standard field's own rules, else text stays text and native JSON "
        "types are kept.",
        json_schema_extra=_type_schema,
    )
    strategy: Strategy = Strategy.SET
    merge_objects: bool = Field(default=False, description="Object fields: merge into the stored object.")
    max_items: int | None = Field(default=None, ge=1, description="Array fields: refuse longer arrays.")
    optional: bool = Field(
        default=False,
        description="Files may lack the column: such a file writes nothing for this field (a 'clear' field "
        "clears nothing) and the missing column is neither a warning nor, with strict, an error. "
        "Default: a file without the column is a warning, and a run failure for 'clear' fields "
        "(which would unset the attribute for every user).",
    )

    @property
    def target(self) -> str:
        """The Braze attribute this field writes."""
        return self.attribute if self.attribute is not None else self.column

    @property
    def standard_field(self) -> str | None:
        return self.target if self.target in STANDARD_FIELDS else None

    @property
    def effective_type(self) -> FieldType | None:
        standard = self.standard_field
        if standard is not None:
            return self.type or STANDARD_FIELDS[standard].natural_type
        return implied_type(self.type, self.strategy, self.merge_objects)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        name_problem = attribute_name_problem(self.target)
        if name_problem is not None:
            where = "attribute" if self.attribute is not None else "column"
            problems.append(ConfigProblem(where, f"not a valid Braze attribute name: {name_problem}"))
        standard = self.standard_field
        if standard is not None and self.type is not None:
            accepted = STANDARD_FIELDS[standard].accepted_types
            if self.type not in accepted:
                allowed = ", ".join(sorted(accepted))
                problems.append(
                    ConfigProblem("type", f"'{standard}' is a Braze standard field; its type is {allowed}")
                )
        problems += _strategy_problems(self.strategy, self.type, self.merge_objects, standard)
        if self.max_items is not None and self.effective_type is not FieldType.ARRAY:
            problems.append(ConfigProblem("max_items", "only applies to fields of type array"))
        problems += self._knob_problems(self.effective_type)
        _raise_if(problems)
        return self


class RemainingSpec(_ConverterKnobs):
    """Every column the config does not name, written as a custom attribute ``<prefix><column>``."""

    prefix: str = ""
    type: FieldType | None = Field(
        default=None,
        description="Default: text stays text; JSON/Avro sources keep their native types.",
        json_schema_extra=_type_schema,
    )
    strategy: Strategy = Strategy.SET
    exclude: list[NonEmptyStr] = Field(
        default_factory=list, description="Columns to leave out; '*', '?' and '[...]' work as in globs."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if self.prefix.startswith("$"):
            problems.append(ConfigProblem("prefix", "must not start with '$' (Braze reserves those names)"))
        if len(self.prefix) >= MAX_STRING_LENGTH:
            problems.append(
                ConfigProblem("prefix", f"leaves no room in a {MAX_STRING_LENGTH}-character name")
            )
        problems += _strategy_problems(self.strategy, self.type, False, None)
        problems += self._knob_problems(implied_type(self.type, self.strategy, False))
        _raise_if(problems)
        return self

    def excludes(self, column: str) -> bool:
        return any(
            fnmatch.fnmatchcase(column, pattern) if any(ch in pattern for ch in "*?[") else column == pattern
            for pattern in self.exclude
        )


class PropertySpec(_ConverterKnobs):
    """One event or purchase property taken from a column (written as just the column name, or this)."""

    column: NonEmptyStr
    type: FieldType | None = Field(
        default=None,
        description="Default: text stays text, native types kept.",
        json_schema_extra=_type_schema,
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _raise_if(self._knob_problems(self.type))
        return self


def _properties_schema(schema: dict[str, Any]) -> None:
    """Properties are written as ``name: column`` or ``name: {column: ..., type: ...}``."""
    schema["description"] = "Property name to source column (or to a property spec with a type)."
    schema["additionalProperties"] = {
        "anyOf": [{"type": "string", "minLength": 1}, schema["additionalProperties"]]
    }


def _properties_before(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: {"column": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
    return value


def _property_name_problems(properties: dict[str, PropertySpec]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name in properties:
        problem = attribute_name_problem(name)
        if problem is not None:
            problems.append(ConfigProblem(f"properties[{name!r}]", f"not a valid property name: {problem}"))
    return problems


class EventRule(_ConfigModel):
    """A custom event made from columns of the row."""

    name: NonEmptyStr | None = Field(default=None, description="The event name (or use name_column).")
    name_column: NonEmptyStr | None = Field(default=None, description="Column holding the event name.")
    time_column: NonEmptyStr
    when_column: NonEmptyStr | None = Field(
        default=None, description="Emit only when this column is non-empty and not false/0/no."
    )
    properties: dict[str, PropertySpec] = Field(default_factory=dict, json_schema_extra=_properties_schema)

    _properties = field_validator("properties", mode="before")(_properties_before)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if (self.name is None) == (self.name_column is None):
            problems.append(ConfigProblem("name", "give exactly one of name and name_column"))
        if self.name is not None and len(self.name) > MAX_STRING_LENGTH:
            problems.append(ConfigProblem("name", f"longer than {MAX_STRING_LENGTH} characters"))
        problems += _property_name_problems(self.properties)
        _raise_if(problems)
        return self

    def columns(self) -> Iterator[str]:
        for column in (self.name_column, self.time_column, self.when_column):
            if column is not None:
                yield column
        for spec in self.properties.values():
            yield spec.column


class PurchaseRule(_ConfigModel):
    """A purchase made from columns of the row."""

    product_id: NonEmptyStr | None = None
    product_id_column: NonEmptyStr | None = None
    currency: NonEmptyStr | None = Field(default=None, description="ISO 4217 code (or use currency_column).")
    currency_column: NonEmptyStr | None = None
    price_column: NonEmptyStr
    quantity_column: NonEmptyStr | None = Field(default=None, description="Default quantity: 1.")
    time_column: NonEmptyStr
    when_column: NonEmptyStr | None = None
    properties: dict[str, PropertySpec] = Field(default_factory=dict, json_schema_extra=_properties_schema)

    _properties = field_validator("properties", mode="before")(_properties_before)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if (self.product_id is None) == (self.product_id_column is None):
            problems.append(
                ConfigProblem("product_id", "give exactly one of product_id and product_id_column")
            )
        if self.product_id is not None and len(self.product_id) > MAX_STRING_LENGTH:
            problems.append(ConfigProblem("product_id", f"longer than {MAX_STRING_LENGTH} characters"))
        if (self.currency is None) == (self.currency_column is None):
            problems.append(ConfigProblem("currency", "give exactly one of currency and currency_column"))
        if self.currency is not None and currency_code(self.currency) is None:
            problems.append(ConfigProblem("currency", f"'{self.currency}' is not an ISO 4217 currency code"))
        problems += _property_name_problems(self.properties)
        _raise_if(problems)
        return self

    def columns(self) -> Iterator[str]:
        for column in (
            self.product_id_column,
            self.currency_column,
            self.price_column,
            self.quantity_column,
            self.time_column,
            self.when_column,
        ):
            if column is not None:
                yield column
        for spec in self.properties.values():
            yield spec.column


AUDIENCE_PLACEHOLDER: Final = "{audience}"


class AudienceSpec(_ConfigModel):
    """An audience file: one row per user and audience, each audience a custom attribute of its users."""

    audience_column: NonEmptyStr = Field(default="audience", description="Column naming the audience.")
    member_column: NonEmptyStr | None = Field(
        default=None,
        description="Column saying whether the user is in the audience (true/false): the attribute is "
        "true while they are, and unset (or false, see on_leave) once a row says they left.",
    )
    score_column: NonEmptyStr | None = Field(
        default=None,
        description="Column holding the user's score in the audience: the attribute is that number; "
        "an empty score means the user left. Give member_column or score_column, not both; with "
        "neither, every row means the user is in the audience.",
    )
    attribute_pattern: NonEmptyStr = Field(
        default="{audience}",
        description="The custom attribute of an audience: '{audience}' stands for the audience name, "
        "e.g. 'amperity_{audience}'.",
    )
    fold_names: bool = Field(
        default=True,
        description="Audience names in lower case with every run of other characters than letters and "
        "digits as '_' ('High Value' -> 'high_value'); false uses them as written.",
    )
    on_leave: AudienceLeave = Field(
        default=AudienceLeave.UNSET,
        description="unset: the attribute is removed when the user leaves; false: it is set to false "
        "(member-flag audiences only).",
    )
    true_values: list[str] | None = Field(default=None, description="member_column: text meaning true.")
    false_values: list[str] | None = Field(default=None, description="member_column: text meaning false.")

    @field_validator("on_leave", mode="before")
    @classmethod
    def _unquoted_false(cls, value: Any) -> Any:
        # YAML reads an unquoted `on_leave: false` as the boolean; it means the same.
        return AudienceLeave.FALSE if value is False else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if self.member_column is not None and self.score_column is not None:
            problems.append(ConfigProblem("score_column", "give member_column or score_column, not both"))
        if self.attribute_pattern.count(AUDIENCE_PLACEHOLDER) != 1:
            problems.append(
                ConfigProblem("attribute_pattern", f"must contain '{AUDIENCE_PLACEHOLDER}' exactly once")
            )
        elif self.attribute_pattern.startswith("$"):
            problems.append(
                ConfigProblem("attribute_pattern", "must not start with '$' (Braze reserves those names)")
            )
        if self.on_leave is AudienceLeave.FALSE and self.score_column is not None:
            problems.append(
                ConfigProblem("on_leave", "false only fits member-flag audiences; a score attribute is unset")
            )
        if self.score_column is not None or self.member_column is None:
            for key in ("true_values", "false_values"):
                if getattr(self, key) is not None:
                    problems.append(ConfigProblem(key, "only applies with member_column"))
        _raise_if(problems)
        return self

    def attribute_for(self, audience: str) -> str:
        """The custom attribute of ``audience``."""
        name = _folded_audience(audience) if self.fold_names else audience
        return self.attribute_pattern.replace(AUDIENCE_PLACEHOLDER, name)

    def columns(self) -> Iterator[str]:
        yield self.audience_column
        for column in (self.member_column, self.score_column):
            if column is not None:
                yield column


def _folded_audience(name: str) -> str:
    folded: list[str] = []
    gap = False
    for char in name.strip().lower():
        if char.isalnum():
            if gap and folded:
                folded.append("_")
            folded.append(char)
            gap = False
        else:
            gap = True
    return "".join(folded)


def _integration_defaults(data: Any) -> Any:
    """The integration's own defaults for the keys a config leaves out (IntegrationEntry.config_defaults)."""
    if not isinstance(data, dict):
        return data
    name = data.get("integration", "generic")
    if not isinstance(name, str) or name not in known_integrations():
        return data  # the field's own validation names the problem
    defaults = get_integration(name).config_defaults
    return {**defaults, **data} if defaults else data


def _shadowing_fields_mapped(data: dict[str, Any]) -> dict[str, Any]:
    """``standard_fields: map``: a field whose attribute shadows a standard field writes that field."""
    fields = data.get("fields")
    if not isinstance(fields, list):
        return data
    mapped: list[Any] = []
    for spec in fields:
        target = spec.get("attribute", spec.get("column")) if isinstance(spec, dict) else None
        standard = shadowed_standard_field(target) if isinstance(target, str) else None
        mapped.append({**spec, "attribute": standard} if standard is not None else spec)
    return {**data, "fields": mapped}


class MappingConfig(_ConfigModel):
    """How one integration's files become Braze users.track writes."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        title="braze-cdp-bridge mapping config",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = 1
    integration: IntegrationName = "generic"
    source: SourceSettings = Field(default_factory=SourceSettings)
    identifier: IdentifierSpec | None = Field(
        default=None,
        description="Which column identifies the user. Required for column-mapped integrations; "
        "integrations whose records carry their own identity (segment) may leave it out.",
    )
    create_missing: bool | None = Field(
        default=None,
        description="false sends _update_existing_only. Default: true, except for user_alias identifiers "
        "(Braze's own default there is update-only).",
    )
    fields: list[FieldSpec] = Field(default_factory=list)
    remaining: RemainingSpec | None = Field(
        default=None, description="Map every other column as a custom attribute; omit to ignore them."
    )
    events: list[EventRule] = Field(default_factory=list)
    purchases: list[PurchaseRule] = Field(default_factory=list)
    strict: bool = Field(
        default=False, description="Turn every warning (e.g. shadowed standard fields) into an error."
    )
    standard_fields: StandardFieldsPolicy = Field(
        default=StandardFieldsPolicy.WARN,
        description="A custom attribute whose name shadows a Braze standard field (birthday, firstname, "
        "zip is not one): warn writes it with a warning; map writes the standard field instead (dob, "
        "first_name); refuse refuses the config. Default: warn (refuse for integrations that say so).",
    )
    audiences: AudienceSpec | None = Field(
        default=None,
        description="The file is an audience file (one row per user and audience) for integrations that "
        "read them: each audience becomes a custom attribute. Leaves fields, remaining, events and "
        "purchases out.",
    )
    on_invalid: OnInvalid = Field(
        default=OnInvalid.REJECT_ROW,
        description="reject_row: a row with any invalid value is rejected; "
        "skip_field: only the invalid value is dropped.",
    )
    null_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NULL_VALUES),
        description="Cell text that means 'no value' (compared after trimming).",
    )
    trim: bool = Field(default=True, description="Strip surrounding whitespace from text cells.")
    default_country_code: str | None = Field(
        default=None, description="Calling code (e.g. +49) for phone numbers written without one."
    )
    pii_columns: list[NonEmptyStr] = Field(
        default_factory=list, description="More columns whose values never appear in issue details."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of the integration itself (its docs page lists them); the integration "
        "validates them when a run starts and `cdpbridge mapping check` reports their problems.",
    )
    lytics: LyticsSettings | None = Field(
        default=None, description="integration: lytics only: how audience files become array members."
    )
    max_event_properties_bytes: int = Field(
        default=DEFAULT_MAX_EVENT_PROPERTIES_BYTES,
        ge=1,
        le=MAX_EVENT_PROPERTIES_BYTES,
        description="Event/purchase properties size limit (50 KB on older Braze contracts, 100 KB on newer).",
    )

    @field_validator("default_country_code")
    @classmethod
    def _calling_code(cls, value: str | None) -> str | None:
        return None if value is None else normalize_default_country_code(value)

    @model_validator(mode="before")
    @classmethod
    def _defaults_and_mapped_names(cls, data: Any) -> Any:
        data = _integration_defaults(data)
        if isinstance(data, dict) and data.get("standard_fields") == StandardFieldsPolicy.MAP:
            data = _shadowing_fields_mapped(data)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if self.identifier is None and reads_identifier_column(self.integration):
            problems.append(ConfigProblem("identifier", "is required"))
        if self.standard_fields is StandardFieldsPolicy.REFUSE:
            problems += [
                ConfigProblem(warning.path, f"{warning.message} (standard_fields: refuse; map maps it)")
                for warning in self.warnings()
                if warning.standard_field is not None
            ]
        problems += self._audience_problems()
        entry = get_integration(self.integration)
        if self.audiences is not None and not entry.reads_audiences:
            problems.append(
                ConfigProblem("audiences", f"integration '{self.integration}' does not read audience files")
            )
        for check in entry.config_checks:
            problems += check(self)
        written_by: dict[str, int] = {}
        for index, spec in enumerate(self.fields):
            earlier = written_by.setdefault(spec.target, index)
            if earlier != index:
                where = "attribute" if spec.attribute is not None else "column"
                problems.append(
                    ConfigProblem(
                        f"fields[{index}].{where}", f"'{spec.target}' is already written by fields[{earlier}]"
                    )
                )
        if self.lytics is not None and self.integration != "lytics":
            problems.append(ConfigProblem("lytics", "only applies to integration: lytics"))
        if self.strict:
            problems += [ConfigProblem(warning.path, warning.message) for warning in self.warnings()]
        _raise_if(problems)
        return self

    def _audience_problems(self) -> list[ConfigProblem]:
        if self.audiences is None:
            return []
        return [
            ConfigProblem(key, "an audience file is not column-mapped: leave it out (audiences is set)")
            for key in ("fields", "remaining", "events", "purchases")
            if getattr(self, key)
        ]

    @property
    def required_identifier(self) -> IdentifierSpec:
        """The identifier, for transformers that read it from a column; an error naming the key when
        the config has none."""
        if self.identifier is None:
            raise MappingConfigError(
                [ConfigProblem("identifier", f"is required for integration '{self.integration}'")]
            )
        return self.identifier

    @property
    def update_existing_only(self) -> bool:
        """Whether users.track objects carry ``_update_existing_only: true``."""
        if self.create_missing is None:
            return self.identifier is not None and self.identifier.kind is IdentifierKind.USER_ALIAS
        return not self.create_missing

    @property
    def named_columns(self) -> frozenset[str]:
        """Every column the config names; ``remaining`` maps the others."""
        return self.columns_named(include_optional=True)

    def columns_named(self, *, include_optional: bool) -> frozenset[str]:
        """The columns the config names, without those only ``optional`` fields read unless asked."""
        columns = {self.identifier.column} if self.identifier is not None else set()
        if self.audiences is not None:
            columns.update(self.audiences.columns())
        columns.update(spec.column for spec in self.fields if include_optional or not spec.optional)
        for rule in self.events:
            columns.update(rule.columns())
        for purchase in self.purchases:
            columns.update(purchase.columns())
        return frozenset(columns)

    def warnings(self, columns: Iterable[str] | None = None) -> list[ConfigWarning]:
        """Probably-unintended choices. With ``columns`` (a file's header), remaining columns too."""
        found: list[ConfigWarning] = []
        for index, spec in enumerate(self.fields):
            standard = shadowed_standard_field(spec.target)
            if standard is not None:
                where = "attribute" if spec.attribute is not None else "column"
                found.append(
                    ConfigWarning(
                        f"fields[{index}].{where}",
                        f"'{spec.target}' would be a custom attribute shadowing Braze's standard field "
                        f"'{standard}'; write it to '{standard}' instead",
                        standard,
                    )
                )
        if columns is not None and self.remaining is not None:
            named = self.named_columns
            for column in columns:
                if column in named or self.remaining.excludes(column):
                    continue
                standard = shadowed_standard_field(column)
                if (
                    standard is not None
                    and f"{self.remaining.prefix}{column}" != standard
                    and self.standard_fields is not StandardFieldsPolicy.MAP
                ):
                    found.append(
                        ConfigWarning(
                            "remaining",
                            f"column '{column}' would become custom attribute "
                            f"'{self.remaining.prefix}{column}', shadowing Braze's standard field "
                            f"'{standard}'; map it in fields or add it to remaining.exclude",
                            standard,
                        )
                    )
        return found


# ------------------------------------------------------------------------------------------ loading


class ConfigYamlLoader(yaml.SafeLoader):
    """YAML 1.2-style booleans (only true/false) and no silently repeated keys.

    YAML 1.1 reads yes/no/on/off as booleans, which turns ``true_values: [yes]`` into [True] and the
    country code NO into False.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ConfigYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _all_keys() -> frozenset[str]:
    keys: set[str] = set()
    models: tuple[type[BaseModel], ...] = (
        MappingConfig,
        AudienceSpec,
        SourceSettings,
        IdentifierSpec,
        FieldSpec,
        RemainingSpec,
        PropertySpec,
        EventRule,
        PurchaseRule,
    )
    for model in models:
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return frozenset(keys)


_KNOWN_KEYS: Final = _all_keys()


def _format_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path


def _join_path(base: str, relative: str) -> str:
    if not relative:
        return base
    if not base or relative.startswith("["):
        return base + relative
    return f"{base}.{relative}"


def _plain_message(error: Any) -> str:
    kind: str = error["type"]
    loc = error["loc"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        if key in _KNOWN_KEYS:
            return "not a key of this section (it belongs elsewhere in the config)"
        close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1, cutoff=0.7)
        return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"'{error.get('input')}' is not one of {expected}"
    if kind in ("string_type", "bool_type", "bool_parsing", "int_type", "int_parsing"):
        wanted = {"string": "text", "bool": "true or false", "int": "a whole number"}[kind.partition("_")[0]]
        hint = " (quote it in YAML)" if kind == "string_type" else ""
        return f"must be {wanted}{hint}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of keys to values"
    if kind == "list_type":
        return "must be a list"
    message: str = error["msg"]
    message = message.removeprefix("Value error, ")
    return message.replace("Input should be", "must be").replace("String should have", "must have")


def problems_from_validation_error(error: ValidationError) -> list[ConfigProblem]:
    """pydantic's errors as key-path problems in plain words."""
    problems: list[ConfigProblem] = []
    for item in error.errors(include_url=False):
        path = _format_path(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _SemanticProblems):
            problems.extend(ConfigProblem(_join_path(path, p.path), p.message) for p in cause.problems)
        else:
            problems.append(ConfigProblem(path, _plain_message(item)))
    return problems


def _looks_like_path(text: str) -> bool:
    if "\n" in text or text.lstrip().startswith(("{", "[")):
        return False
    return text.endswith((".yaml", ".yml", ".json")) or Path(text).is_file()


def _parse_document(text: str, name: str | None) -> Any:
    as_json = (name or "").endswith(".json") or text.lstrip().startswith("{")
    if as_json:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise MappingConfigError(
                [
                    ConfigProblem(
                        "", f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
                    )
                ],
                name,
            ) from None
    try:
        return yaml.load(text, Loader=ConfigYamlLoader)  # nosec B506 # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise MappingConfigError(
            [ConfigProblem("", f"not valid YAML{where}: {error.problem}")], name
        ) from None
    except yaml.YAMLError as error:
        raise MappingConfigError([ConfigProblem("", f"not valid YAML: {error}")], name) from None


def parse_mapping(data: Any, source: str | None = None) -> MappingConfig:
    """Validate an already-parsed document (a dict)."""
    if not isinstance(data, dict):
        raise MappingConfigError(
            [ConfigProblem("", "the config must be a mapping of keys to values")], source
        )
    try:
        config = MappingConfig.model_validate(data)
    except ValidationError as error:
        raise MappingConfigError(problems_from_validation_error(error), source) from None
    for warning in config.warnings():
        logger.warning(
            "mapping config warning",
            extra={"config": source, "path": warning.path, "warning": warning.message},
        )
    return config


def load_mapping(source: str | Path) -> MappingConfig:
    """Load a mapping config from a file path or from YAML/JSON text.

    Raises ``MappingConfigError`` listing every problem as ``<key path>: <reason>``, prefixed with
    the file name when there is one.
    """
    name: str | None = None
    if isinstance(source, Path) or _looks_like_path(source):
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MappingConfigError([ConfigProblem("", "file not found")], name) from None
        except (OSError, UnicodeDecodeError) as error:
            raise MappingConfigError([ConfigProblem("", f"cannot be read: {error}")], name) from None
    else:
        text = source
    return parse_mapping(_parse_document(text, name), name)
