"""The closed vocabularies of a mapping config."""

from __future__ import annotations

from enum import StrEnum

# The readers' format enum is the config's too: one vocabulary of formats.
from cdpbridge.sources.spec import SourceFormat


class FieldType(StrEnum):
    """How a source value is coerced before it is written to Braze."""

    BOOLEAN = "boolean"
    DATE = "date"  # sent as YYYY-MM-DD
    DATETIME = "datetime"  # sent as ISO 8601 in UTC
    DECIMAL = "decimal"  # validated as decimal text, sent as a JSON number
    FLOAT = "float"
    INTEGER = "integer"
    STRING = "string"
    VARCHAR = "varchar"  # Amperity's name for string; same rules
    ARRAY = "array"  # list of strings
    OBJECT = "object"  # nested custom attribute (JSON object)


class Strategy(StrEnum):
    """How a mapped value is merged into the Braze profile (BlueConic's merge strategies)."""

    SET = "set"
    ADD = "add"  # add the values to an array attribute
    REMOVE = "remove"  # remove the values from an array attribute
    SUM = "sum"  # increment an integer attribute
    SET_IF_EMPTY = "set_if_empty"  # write only when Braze holds no value yet
    CLEAR = "clear"  # like set, but an empty source value unsets the attribute


class IdentifierKind(StrEnum):
    """Which users.track identifier the identifier column fills."""

    EXTERNAL_ID = "external_id"
    BRAZE_ID = "braze_id"
    EMAIL = "email"
    PHONE = "phone"
    USER_ALIAS = "user_alias"


class OnInvalid(StrEnum):
    """What an invalid value does to its row."""

    REJECT_ROW = "reject_row"  # the whole row goes to the rejects file
    SKIP_FIELD = "skip_field"  # only the invalid value is dropped; the issue is still reported


class StandardFieldsPolicy(StrEnum):
    """What a custom attribute whose name shadows a Braze standard field (birthday for dob) does."""

    WARN = "warn"  # written as the custom attribute, with a warning (an error when strict)
    MAP = "map"  # written to the standard field instead
    REFUSE = "refuse"  # the config is refused when it is loaded (a file's column: the run stops)


class AudienceLeave(StrEnum):
    """What an audience attribute becomes when its user leaves the audience."""

    UNSET = "unset"  # the attribute is removed (sent as null)
    FALSE = "false"  # the attribute is set to false (member-flag audiences only)


__all__ = [
    "AudienceLeave",
    "FieldType",
    "IdentifierKind",
    "OnInvalid",
    "SourceFormat",
    "StandardFieldsPolicy",
    "Strategy",
]
