"""Mapping configs, type coercion, Braze standard fields and merge strategies.

Every inbound integration is a mapping config (YAML or JSON) run through one generic ``Mapper`` that
turns one ``SourceRow`` into one ``UserUpdate`` without any I/O::

    config = load_mapping("config/blueconic.yaml")   # or YAML/JSON text; MappingConfigError if invalid
    mapper = Mapper(config)
    update = mapper.map_row(row)                     # never raises for bad data: see update.issues

Empty values, in brief (the full rules are in docs/mapping.md):

* A value is *empty* when the column is missing, the value is null, or the trimmed text is one of
  ``null_values`` (default ``"", "null", "NULL", "nan", "NaN", "None"``).
* Strategy ``clear``: an empty value unsets the attribute (``WriteMode.UNSET``, sent as null).
  Every other strategy: an empty value means "no change" and nothing is written.
* ``nan`` is never turned into a float; a float, decimal or integer field given ``nan`` or ``inf``
  (when they are not null values) is an invalid value.
* Untyped values keep their source type: text stays text (``"0123"`` keeps its zero; CSV values are
  never guessed to be numbers), JSON/Avro values keep their native types.
"""

from cdpbridge.mapping.coerce import InvalidValueError
from cdpbridge.mapping.config import (
    ConfigProblem,
    ConfigWarning,
    EventRule,
    FieldSpec,
    IdentifierSpec,
    MappingConfig,
    MappingConfigError,
    PropertySpec,
    PurchaseRule,
    RemainingSpec,
    SourceSettings,
    load_mapping,
    parse_mapping,
)
from cdpbridge.mapping.enums import FieldType, IdentifierKind, OnInvalid, SourceFormat, Strategy
from cdpbridge.mapping.mapper import ColumnCheck, Mapper
from cdpbridge.mapping.standard import STANDARD_FIELDS, normalize_standard_field, shadowed_standard_field

__all__ = [
    "STANDARD_FIELDS",
    "ColumnCheck",
    "ConfigProblem",
    "ConfigWarning",
    "EventRule",
    "FieldSpec",
    "FieldType",
    "IdentifierKind",
    "IdentifierSpec",
    "InvalidValueError",
    "Mapper",
    "MappingConfig",
    "MappingConfigError",
    "OnInvalid",
    "PropertySpec",
    "PurchaseRule",
    "RemainingSpec",
    "SourceFormat",
    "SourceSettings",
    "Strategy",
    "load_mapping",
    "normalize_standard_field",
    "parse_mapping",
    "shadowed_standard_field",
]
