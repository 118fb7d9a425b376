"""The generic mapper: one SourceRow in, one UserUpdate out, no I/O.

The config is compiled once into a tuple of per-field closures. Each closure reads its column, applies
the null/trim rules and its converter, and writes an AttributeWrite; nothing looks the config up per
row. Conversions of text cells are memoised per field while that pays off (country names, booleans,
dates and tiers repeat; e-mail addresses do not), which is where most of the speed comes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from cdpbridge import __version__ as layer_version
from cdpbridge.mapping.coerce import (
    MAX_STRING_LENGTH,
    Converter,
    ConverterOptions,
    InvalidValueError,
    build_converter,
    datetime_converter,
    infer_value,
    json_size,
    to_decimal,
    to_increment,
    to_integer,
    to_string,
    within_declared_length,
)
from cdpbridge.mapping.config import (
    ConfigProblem,
    ConfigWarning,
    EventRule,
    FieldSpec,
    MappingConfig,
    PropertySpec,
    PurchaseRule,
    attribute_name_problem,
    implied_type,
)
from cdpbridge.mapping.currencies import currency_code
from cdpbridge.mapping.enums import FieldType, IdentifierKind, OnInvalid, StandardFieldsPolicy, Strategy
from cdpbridge.mapping.pii import detail_function, looks_like_pii
from cdpbridge.mapping.standard import (
    STANDARD_FIELDS,
    normalize_email,
    normalize_phone,
    shadowed_standard_field,
    standard_converter,
)
from cdpbridge.records import RowIssue, SourceRow
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

# (column, reason, detail): a RowIssue before it knows its row.
Problem = tuple[str | None, str, str]
# Takes one cell's raw value, writes into the attributes dict, returns a problem or None.
FieldApply = Callable[[Any, dict[str, AttributeWrite]], Problem | None]
Resolver = Callable[[Any], "AttributeWrite | Problem | _Empty"]
# A memoised column's look-up of a text cell: what the column's step made of it before, or None.
Remembered = Callable[[str], "AttributeWrite | Problem | _Empty | None"]


class _Empty:
    """The cell holds no value (missing, null, one of the null values, or empty after conversion)."""

    __slots__ = ()


EMPTY: Final = _Empty()

# Memo sizing: a column with more distinct values than this is not worth remembering unless at least
# half of its look-ups so far were repeats.
MEMO_LIMIT: Final = 4096
# Braze's bounds for a purchase's quantity.
MIN_QUANTITY: Final = 1
MAX_QUANTITY: Final = 100
_FILLING, _FROZEN, _OFF = 0, 1, 2

_STRATEGY_MODES: Final[dict[Strategy, WriteMode]] = {
    Strategy.SET: WriteMode.SET,
    Strategy.CLEAR: WriteMode.SET,
    Strategy.ADD: WriteMode.ADD,
    Strategy.REMOVE: WriteMode.REMOVE,
    Strategy.SUM: WriteMode.INCREMENT,
    Strategy.SET_IF_EMPTY: WriteMode.SET_IF_EMPTY,
}
# Values that are safe to share between updates: immutable scalars.
_SHAREABLE_TYPES: Final = frozenset(
    {
        FieldType.BOOLEAN,
        FieldType.DATE,
        FieldType.DATETIME,
        FieldType.DECIMAL,
        FieldType.FLOAT,
        FieldType.INTEGER,
        FieldType.STRING,
        FieldType.VARCHAR,
    }
)
# Strategies whose writes are plain values: a record mapped only through these means the same writes
# whatever Braze holds, so an unchanged record can be recognised by its digest alone.
_RECORD_DIGEST_STRATEGIES: Final = frozenset({Strategy.SET, Strategy.CLEAR})
# Bumped whenever what a mapping makes of the same cells changes in a way the config does not show
# (a converter fixed, a normalisation added): every stored record digest then stops matching.
RECORD_DIGEST_VERSION: Final = 1
# 48 bits: a changed record is taken for unchanged with probability 2**-48; the state entry's other
# two bytes hold what the record was worth (see cdpbridge.sync.engine).
RECORD_DIGEST_SIZE: Final = 6
_SHAREABLE_STANDARD: Final = frozenset(
    name for name, standard in STANDARD_FIELDS.items() if standard.natural_type in _SHAREABLE_TYPES
)


def _write_constructor() -> Callable[[Any, WriteMode, str | None], AttributeWrite]:
    """A faster way to build an AttributeWrite, identical in result to calling the class.

    The frozen dataclass's __init__ assigns each field through object.__setattr__, which is about
    half the cost of mapping a cell. Filling the three slots directly halves it; should the class
    ever gain a field, the plain constructor is used instead.
    """
    if tuple(f.name for f in dataclasses.fields(AttributeWrite)) != ("value", "mode", "column"):
        return AttributeWrite
    slots = AttributeWrite.__dict__
    set_value, set_mode, set_column = (slots[name].__set__ for name in ("value", "mode", "column"))
    new = object.__new__

    def new_write(value: Any, mode: WriteMode, column: str | None) -> AttributeWrite:
        write: AttributeWrite = new(AttributeWrite)
        set_value(write, value)
        set_mode(write, mode)
        set_column(write, column)
        return write

    return new_write


new_write: Final = _write_constructor()


def _record_hasher(config: MappingConfig) -> Any:
    """A hasher keyed by the config and the mapping code, or None when the config's records are
    never recognised by digest (see ``Mapper.record_digest``)."""
    if config.events or config.purchases:
        return None
    if any(spec.strategy not in _RECORD_DIGEST_STRATEGIES or spec.merge_objects for spec in config.fields):
        return None
    if config.remaining is not None and config.remaining.strategy not in _RECORD_DIGEST_STRATEGIES:
        return None
    hasher = hashlib.blake2b(digest_size=RECORD_DIGEST_SIZE)
    hasher.update(f"{RECORD_DIGEST_VERSION}\x00{layer_version}\x00".encode())
    hasher.update(config.model_dump_json().encode())
    return hasher


def _unseen_column(raw: Any, attributes: dict[str, AttributeWrite]) -> Problem | None:
    """Marks a remaining column that has no compiled step yet; never called."""
    raise AssertionError("a remaining column was used before it was compiled")


@dataclass(frozen=True, slots=True)
class ColumnCheck:
    """What a file's header means for this mapping, checked once per file before the rows.

    ``missing``: columns the config needs that the file lacks; ``skipped``: columns of ``optional``
    fields that the file lacks (not a problem; ``Mapper.without_columns`` leaves their fields out).
    """

    missing: tuple[str, ...]
    warnings: tuple[ConfigWarning, ...]
    errors: tuple[ConfigProblem, ...]
    skipped: tuple[str, ...] = ()


def _optional_columns(config: MappingConfig) -> frozenset[str]:
    """Columns only ``optional`` fields read: a file may lack them."""
    return config.named_columns - config.columns_named(include_optional=False)


def _options(spec: Any, null_values: frozenset[str]) -> ConverterOptions:
    """Converter options from a FieldSpec, RemainingSpec or PropertySpec."""
    defaults = ConverterOptions()
    return ConverterOptions(
        separator=spec.separator,
        formats=tuple(spec.format or ()),
        true_values=frozenset(spec.true_values) if spec.true_values is not None else defaults.true_values,
        false_values=frozenset(spec.false_values) if spec.false_values is not None else defaults.false_values,
        max_items=getattr(spec, "max_items", None),
        null_values=null_values,
        max_length=spec.max_length,
    )


def _non_empty_list(convert: Converter) -> Converter:
    """add/remove with nothing to add or remove is no change, not an empty write."""

    def convert_list(value: Any) -> Any:
        converted = convert(value)
        return converted or None

    return convert_list


def _non_zero(convert: Converter) -> Converter:
    """An increment by 0 changes nothing but would still cost a data point."""

    def convert_amount(value: Any) -> Any:
        amount = convert(value)
        return amount if amount != 0 else None

    return convert_amount


class Mapper:
    """Maps rows of one config. Build it once per file (or keep it warm across invocations)."""

    def __init__(self, config: MappingConfig) -> None:
        self._config = config
        self._null_values = frozenset(config.null_values)
        self._trim = config.trim
        self._pii_columns = frozenset(config.pii_columns)
        self._reject_on_issue = config.on_invalid is OnInvalid.REJECT_ROW
        self._update_existing_only = config.update_existing_only
        self._columns = config.named_columns
        self._optional_columns = _optional_columns(config)
        self._identify = self._compile_identifier()
        # The user key alone, as _identify makes it: what a record recognised by its digest needs.
        self._user_key_of = self._compile_user_key()
        self._all_columns_read = config.remaining is not None
        # Rows mapped so far: a memoised column judges from it how often its memo was hit.
        self._rows_mapped = 0
        # (column, attribute, step, the step's memo look-up or None): map_row takes a remembered
        # write itself, so that most cells of most files cost no Python call.
        self._field_steps: tuple[tuple[str, str, FieldApply, Remembered | None], ...] = tuple(
            (spec.column, spec.target, *self._compile_field(spec)) for spec in config.fields
        )
        self._configured_attributes = frozenset(spec.target for spec in config.fields)
        # Remaining columns are compiled on first sight; named and excluded columns map to None.
        self._remaining_steps: dict[str, FieldApply | None] = dict.fromkeys(self._columns)
        self._event_steps = tuple(self._compile_event(rule) for rule in config.events)
        self._purchase_steps = tuple(self._compile_purchase(rule) for rule in config.purchases)
        self._record_hasher = _record_hasher(config)
        self._record_columns = tuple(sorted(config.named_columns))
        # One C call for the cells of a row (a tuple, or the one cell when the config names one).
        self._record_cells = operator.itemgetter(*self._record_columns)

    @property
    def config(self) -> MappingConfig:
        return self._config

    @property
    def columns(self) -> frozenset[str]:
        """The columns the config names (identifier, fields, events, purchases), not the remaining ones."""
        return self._columns

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck:
        """Compare a file's header with the config: configured columns it lacks, and remaining columns
        that shadow standard fields. Errors: a missing identifier column, a missing column of a
        ``clear`` field that is not ``optional``, and in strict mode everything."""
        present = list(columns)
        available = set(present)
        absent = self._columns - available
        missing = tuple(sorted(absent - self._optional_columns))
        skipped = tuple(sorted(absent & self._optional_columns))
        warnings = tuple(self._config.warnings(present))
        errors: list[ConfigProblem] = []
        identifier_column = self._config.required_identifier.column
        if identifier_column in missing:
            errors.append(ConfigProblem("identifier.column", f"the file has no column '{identifier_column}'"))
        # Every row of such a file reads the column as empty, and clear turns empty into null: the
        # attribute would be unset for every user because a column was renamed or dropped.
        cleared: set[str] = set()
        for index, spec in enumerate(self._config.fields):
            if spec.strategy is Strategy.CLEAR and spec.column in missing and spec.column not in cleared:
                cleared.add(spec.column)
                errors.append(
                    ConfigProblem(
                        f"fields[{index}].column",
                        f"the file has no column '{spec.column}': strategy clear would unset "
                        f"'{spec.target}' for every user (set optional: true on the field if files may "
                        "lack the column; it then writes nothing for them)",
                    )
                )
        if self._config.standard_fields is StandardFieldsPolicy.REFUSE and not self._config.strict:
            errors += [
                ConfigProblem(warning.path, f"{warning.message} (standard_fields: refuse)")
                for warning in warnings
                if warning.standard_field is not None
            ]
        if self._config.strict:
            errors += [
                ConfigProblem("", f"the file has no column '{column}'")
                for column in missing
                if column != identifier_column and column not in cleared
            ]
            errors += [ConfigProblem(warning.path, warning.message) for warning in warnings]
        return ColumnCheck(missing, warnings, tuple(errors), skipped)

    def without_columns(self, columns: Iterable[str]) -> Mapper:
        """A mapper for a file that lacks ``columns``: the fields reading them are left out, so that an
        optional ``clear`` field writes nothing instead of unsetting the attribute for every user."""
        dropped = set(columns)
        fields = [spec for spec in self._config.fields if spec.column not in dropped]
        if len(fields) == len(self._config.fields):
            return self
        return Mapper(self._config.model_copy(update={"fields": fields}))

    # ------------------------------------------------------------------------------------ per row

    def record_digest(self, row: SourceRow) -> tuple[str, bytes] | None:
        """The row's user key and a digest of everything its mapping depends on (the raw values of
        the columns it reads, under this config and mapping code), read without mapping the row.

        None when the row cannot be recognised by its digest: the config writes events, purchases
        or anything but plain values (add, remove, sum, set_if_empty mean a different write
        depending on what Braze holds, and events are sent again for each file), the identifier is
        unusable, or a cell JSON cannot carry (the row is then simply mapped)."""
        hasher = self._record_hasher
        if hasher is None:
            return None
        values = row.values
        user_key = self._user_key_of(values)
        if user_key is None:
            return None
        if not self._all_columns_read:
            try:
                cells: Any = self._record_cells(values)
            except KeyError:
                # A row without some of the columns (JSON sources): they read as missing.
                get = values.get
                cells = [get(column) for column in self._record_columns]
        else:
            # Every column is read (the remaining ones by name): names and values both count.
            cells = list(values.items())
        try:
            encoded = orjson.dumps(cells)
        except orjson.JSONEncodeError:
            return None
        digest = hasher.copy()
        digest.update(encoded)
        return user_key, digest.digest()

    def map_row(self, row: SourceRow) -> UserUpdate:  # noqa: PLR0912 - the per-row hot path: one frame per row, its branches are the config's parts
        """Map one row. Bad data never raises: it becomes issues (and ``rejected``) on the update."""
        values = row.values
        self._rows_mapped += 1
        user_key, identifier, identity_problem = self._identify(values)
        problems: list[Problem] | None = None if identity_problem is None else [identity_problem]
        attributes: dict[str, AttributeWrite] = {}
        get = values.get
        for column, attribute, apply, remembered in self._field_steps:
            raw = get(column)
            if remembered is not None and raw.__class__ is str:
                write = remembered(raw)
                if write.__class__ is AttributeWrite:
                    attributes[attribute] = write
                    continue
            problem = apply(raw, attributes)
            if problem is not None:
                if problems is None:
                    problems = [problem]
                else:
                    problems.append(problem)
        if self._config.remaining is not None:
            remaining_steps = self._remaining_steps
            for column, raw in values.items():
                remaining_step = remaining_steps.get(column, _unseen_column)
                if remaining_step is None:
                    continue
                if remaining_step is _unseen_column:
                    remaining_step = self._compile_remaining(column)
                    if remaining_step is None:
                        continue
                problem = remaining_step(raw, attributes)
                if problem is not None:
                    if problems is None:
                        problems = [problem]
                    else:
                        problems.append(problem)
        events: list[dict[str, Any]] = []
        for event_step in self._event_steps:
            event, event_problems = event_step(values)
            if event is not None:
                events.append(event)
            elif event_problems:
                problems = event_problems if problems is None else problems + event_problems
        purchases: list[dict[str, Any]] = []
        for purchase_step in self._purchase_steps:
            purchase, purchase_problems = purchase_step(values)
            if purchase is not None:
                purchases.append(purchase)
            elif purchase_problems:
                problems = purchase_problems if problems is None else problems + purchase_problems
        if problems is None:
            return UserUpdate(
                position=row.position,
                user_key=user_key,
                identifier=identifier,
                update_existing_only=self._update_existing_only,
                attributes=attributes,
                events=events,
                purchases=purchases,
            )
        position = row.position
        return UserUpdate(
            position=position,
            user_key=user_key,
            identifier=identifier,
            update_existing_only=self._update_existing_only,
            attributes=attributes,
            events=events,
            purchases=purchases,
            issues=[RowIssue(position, column, reason, detail) for column, reason, detail in problems],
            rejected=self._reject_on_issue or identity_problem is not None,
        )

    # ---------------------------------------------------------------------------------- compiling

    def _is_pii(self, column: str, attribute: str | None = None, flag: bool | None = None) -> bool:
        if attribute is not None and attribute in STANDARD_FIELDS and STANDARD_FIELDS[attribute].pii:
            return True
        if column in self._pii_columns:
            return True
        if flag is not None:
            return flag
        return looks_like_pii(column, attribute)

    def _cell(self, raw: Any) -> Any:
        """The cell after trimming, or EMPTY. (Compile-time helper: steps inline the same logic.)"""
        if raw is None:
            return EMPTY
        if raw.__class__ is str:
            if self._trim:
                raw = raw.strip()
            if raw in self._null_values:
                return EMPTY
        return raw

    def _compile_identifier(self) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any], Problem | None]]:
        spec = self._config.required_identifier
        column = spec.column
        kind = spec.kind
        pii = kind in (IdentifierKind.EMAIL, IdentifierKind.PHONE) or self._is_pii(column)
        detail = detail_function(pii)
        cell = self._cell
        default_country_code = self._config.default_country_code
        missing: Problem = (column, "missing identifier", "")

        def text_of(raw: Any) -> str:
            if raw.__class__ is str:
                text: str = raw
                return text
            if isinstance(raw, int) and not isinstance(raw, bool):
                return str(raw)  # numeric ids from JSON sources
            raise InvalidValueError("identifier must be text")

        if kind is IdentifierKind.USER_ALIAS:
            label = spec.alias_label or ""

            def identify(values: dict[str, Any]) -> tuple[str, dict[str, Any], Problem | None]:
                raw = cell(values.get(column))
                if raw is EMPTY:
                    return "", {}, missing
                try:
                    name = text_of(raw)
                except InvalidValueError as error:
                    return "", {}, (column, f"invalid identifier: {error.reason}", detail(raw))
                return (
                    f"alias:{label}:{name}",
                    {"user_alias": {"alias_name": name, "alias_label": label}},
                    None,
                )

            return identify

        normalize: Callable[[str], str] | None = None
        if kind is IdentifierKind.EMAIL:
            normalize = normalize_email
        elif kind is IdentifierKind.PHONE:

            def normalize(text: str) -> str:
                return normalize_phone(text, default_country_code)

        member = str(kind)

        def identify_plain(values: dict[str, Any]) -> tuple[str, dict[str, Any], Problem | None]:
            raw = cell(values.get(column))
            if raw is EMPTY:
                return "", {}, missing
            try:
                value = text_of(raw)
                if normalize is not None:
                    value = normalize(value)
            except InvalidValueError as error:
                return "", {}, (column, f"invalid {member} identifier: {error.reason}", detail(raw))
            return f"{member}:{value}", {member: value}, None

        return identify_plain

    def _compile_user_key(self) -> Callable[[dict[str, Any]], str | None]:
        """The user key ``_identify`` gives a row, None where it finds a problem; without building
        the identifier object, which only a mapped row needs."""
        identify = self._identify
        spec = self._config.required_identifier
        if spec.kind not in (IdentifierKind.EXTERNAL_ID, IdentifierKind.BRAZE_ID):

            def user_key_of(values: dict[str, Any]) -> str | None:
                user_key, _, problem = identify(values)
                return None if problem is not None else user_key

            return user_key_of
        column = spec.column
        trim = self._trim
        null_values = self._null_values
        prefix = f"{spec.kind}:"

        def external_id_key(values: dict[str, Any]) -> str | None:
            raw = values.get(column)
            if raw.__class__ is str:
                if trim:
                    raw = raw.strip()
                if raw in null_values:
                    return None
                return prefix + raw
            # Numbers from JSON sources, and every problem: as _identify decides them.
            user_key, _, problem = identify(values)
            return None if problem is not None else user_key

        return external_id_key

    def _converter_for(
        self, attribute: str, field_type: FieldType | None, strategy: Strategy, options: ConverterOptions
    ) -> Converter:
        convert = self._type_converter(attribute, field_type, strategy, options)
        if options.max_length is not None:
            return within_declared_length(convert, options.max_length)
        return convert

    def _type_converter(
        self, attribute: str, field_type: FieldType | None, strategy: Strategy, options: ConverterOptions
    ) -> Converter:
        if attribute in STANDARD_FIELDS:
            return standard_converter(
                attribute, options, default_country_code=self._config.default_country_code
            )
        if strategy is Strategy.SUM:
            return _non_zero(to_increment)
        convert = build_converter(field_type, options)
        if strategy in (Strategy.ADD, Strategy.REMOVE):
            return _non_empty_list(convert)
        return convert

    def _compile_field(self, spec: FieldSpec) -> tuple[FieldApply, Remembered | None]:
        attribute = spec.target
        options = _options(spec, self._null_values)
        field_type = spec.effective_type
        convert = self._converter_for(attribute, field_type, spec.strategy, options)
        mode = WriteMode.MERGE if spec.merge_objects else _STRATEGY_MODES[spec.strategy]
        pii = self._is_pii(spec.column, attribute, spec.pii)
        # Only immutable results may be shared between updates; inferred text stays (immutable) text.
        shareable = (
            attribute in _SHAREABLE_STANDARD
            if attribute in STANDARD_FIELDS
            else field_type in _SHAREABLE_TYPES or field_type is None
        )
        return self._make_step(
            spec.column, attribute, convert, mode=mode, strategy=spec.strategy, pii=pii, memoize=shareable
        )

    def _compile_remaining(self, column: str) -> FieldApply | None:
        remaining = self._config.remaining
        assert remaining is not None
        step: FieldApply | None
        attribute = f"{remaining.prefix}{column}"
        if self._config.standard_fields is StandardFieldsPolicy.MAP:
            # The column means a standard field (birthday: dob); the field is written, never a shadow.
            attribute = shadowed_standard_field(column) or attribute
        if remaining.excludes(column) or attribute in self._configured_attributes:
            step = None
        else:
            name_problem = attribute_name_problem(attribute)
            if name_problem is not None:
                step = self._unusable_column_step(
                    column, f"column name is not a valid Braze attribute name: {name_problem}"
                )
            else:
                field_type = implied_type(remaining.type, remaining.strategy, False)
                options = _options(remaining, self._null_values)
                convert = self._converter_for(attribute, field_type, remaining.strategy, options)
                pii = self._is_pii(column, attribute, remaining.pii)
                shareable = (
                    attribute in _SHAREABLE_STANDARD
                    if attribute in STANDARD_FIELDS
                    else field_type in _SHAREABLE_TYPES or field_type is None
                )
                step, _ = self._make_step(
                    column,
                    attribute,
                    convert,
                    mode=_STRATEGY_MODES[remaining.strategy],
                    strategy=remaining.strategy,
                    pii=pii,
                    memoize=shareable,
                )
        self._remaining_steps[column] = step
        return step

    def _unusable_column_step(self, column: str, reason: str) -> FieldApply:
        cell = self._cell

        def unusable(raw: Any, attributes: dict[str, AttributeWrite]) -> Problem | None:
            if cell(raw) is EMPTY:
                return None
            return (column, reason, "")

        return unusable

    def _make_step(  # noqa: PLR0915 - a compiler of one column's closure; the closure's own statements count here
        self,
        column: str,
        attribute: str,
        convert: Converter,
        *,
        mode: WriteMode,
        strategy: Strategy,
        pii: bool,
        memoize: bool,
    ) -> tuple[FieldApply, Remembered | None]:
        """The column's step, and its memo's look-up when it keeps one (see map_row)."""
        trim = self._trim
        null_values = self._null_values
        detail = detail_function(pii)
        make_write = new_write
        unset = AttributeWrite(None, WriteMode.UNSET, column) if strategy is Strategy.CLEAR else None
        # Text kept as text is most cells of most files: it skips the converter call.
        keeps_text = convert is infer_value or convert is to_string

        def resolve(raw: Any) -> AttributeWrite | Problem | _Empty:
            if raw is None:
                return EMPTY
            if raw.__class__ is str:
                if trim:
                    raw = raw.strip()
                if raw in null_values:
                    return EMPTY
                if keeps_text and len(raw) <= MAX_STRING_LENGTH:
                    return make_write(raw, mode, column)
            try:
                value = convert(raw)
            except InvalidValueError as error:
                return (column, error.reason, detail(raw))
            if value is None:
                return EMPTY
            return make_write(value, mode, column)

        if not memoize:

            def apply(raw: Any, attributes: dict[str, AttributeWrite]) -> Problem | None:
                result = resolve(raw)
                if result.__class__ is AttributeWrite:
                    attributes[attribute] = result
                    return None
                if result is EMPTY:
                    if unset is not None:
                        attributes[attribute] = unset
                    return None
                return result  # type: ignore[return-value]

            return apply, None

        memo: dict[str, AttributeWrite | Problem | _Empty] = {}
        memo_get = memo.get
        state = _FILLING
        mapper = self
        rows_before = self._rows_mapped

        def memoized_apply(raw: Any, attributes: dict[str, AttributeWrite]) -> Problem | None:  # noqa: PLR0912 - runs once per cell: a call per branch would cost every row
            nonlocal state
            if raw.__class__ is not str:
                result = resolve(raw)
            elif state == _OFF:
                if keeps_text:
                    text = raw.strip() if trim else raw
                    if text not in null_values and len(text) <= MAX_STRING_LENGTH:
                        attributes[attribute] = make_write(text, mode, column)
                        return None
                result = resolve(raw)
            else:
                remembered = memo_get(raw)
                if remembered is not None:
                    result = remembered
                else:
                    result = resolve(raw)
                    if state == _FILLING:
                        memo[raw] = result
                        if len(memo) >= MEMO_LIMIT:
                            # map_row takes most hits itself, uncounted: the rows mapped since this
                            # step was built, less the values remembered, are the hits (cells that
                            # were empty or not text count too, which only keeps a bounded memo).
                            hits = mapper._rows_mapped - rows_before - len(memo)
                            if hits * 2 >= MEMO_LIMIT:
                                state = _FROZEN
                            else:
                                state = _OFF
                                memo.clear()
            if result.__class__ is AttributeWrite:
                attributes[attribute] = result
                return None
            if result is EMPTY:
                if unset is not None:
                    attributes[attribute] = unset
                return None
            return result  # type: ignore[return-value]

        return memoized_apply, memo_get

    def _compile_value(self, spec: PropertySpec) -> Callable[[Any], Any]:
        """A property converter: raises InvalidValueError; returns EMPTY for no value."""
        options = _options(spec, self._null_values)
        convert = build_converter(spec.type, options)
        if options.max_length is not None:
            convert = within_declared_length(convert, options.max_length)
        cell = self._cell

        def property_value(raw: Any) -> Any:
            raw = cell(raw)
            if raw is EMPTY:
                return EMPTY
            value = convert(raw)
            return EMPTY if value is None else value

        return property_value

    def _compile_properties(
        self, properties: dict[str, PropertySpec]
    ) -> Callable[[dict[str, Any], list[Problem]], dict[str, Any]]:
        compiled = tuple(
            (
                name,
                spec.column,
                self._compile_value(spec),
                detail_function(self._is_pii(spec.column, None, spec.pii) or looks_like_pii(name)),
            )
            for name, spec in properties.items()
        )
        max_bytes = self._config.max_event_properties_bytes

        def build(values: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for name, column, convert, detail in compiled:
                raw = values.get(column)
                try:
                    value = convert(raw)
                except InvalidValueError as error:
                    problems.append((column, f"property '{name}': {error.reason}", detail(raw)))
                    continue
                if value is not EMPTY:
                    result[name] = value
            if result and not problems:
                try:
                    size = json_size(result)
                except InvalidValueError as error:
                    problems.append((None, f"properties: {error.reason}", ""))
                else:
                    if size > max_bytes:
                        problems.append((None, f"properties larger than {max_bytes} bytes", f"{size} bytes"))
            return result

        return build

    def _compile_when(self, when_column: str | None) -> Callable[[dict[str, Any]], bool]:
        if when_column is None:
            return lambda values: True
        cell = self._cell
        falsy = frozenset({"false", "f", "no", "n", "0", "off"})

        def applies(values: dict[str, Any]) -> bool:
            raw = cell(values.get(when_column))
            if raw is EMPTY or raw is False or raw == 0:
                return False
            return not (raw.__class__ is str and raw.casefold() in falsy)

        return applies

    def _compile_time(
        self, time_column: str, what: str
    ) -> Callable[[dict[str, Any]], tuple[str | None, Problem | None]]:
        cell = self._cell
        to_time = datetime_converter(())
        detail = detail_function(self._is_pii(time_column))

        def event_time(values: dict[str, Any]) -> tuple[str | None, Problem | None]:
            raw = cell(values.get(time_column))
            if raw is EMPTY:
                return None, (time_column, f"missing {what} time", "")
            try:
                return to_time(raw), None
            except InvalidValueError as error:
                return None, (time_column, f"invalid {what} time: {error.reason}", detail(raw))

        return event_time

    def _compile_event(
        self, rule: EventRule
    ) -> Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[Problem] | None]]:
        applies = self._compile_when(rule.when_column)
        event_time = self._compile_time(rule.time_column, "event")
        build_properties = self._compile_properties(rule.properties)
        fixed_name = rule.name
        name_column = rule.name_column
        cell = self._cell
        name_detail = detail_function(name_column is not None and self._is_pii(name_column))

        def event(values: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem] | None]:
            if not applies(values):
                return None, None
            problems: list[Problem] = []
            name = fixed_name
            if name is None:
                assert name_column is not None
                raw_name = cell(values.get(name_column))
                if raw_name is EMPTY:
                    return None, None  # no name in this row: the row carries no event
                if raw_name.__class__ is not str or len(raw_name) > MAX_STRING_LENGTH:
                    problems.append(
                        (
                            name_column,
                            f"event name must be text of at most {MAX_STRING_LENGTH} characters",
                            name_detail(raw_name),
                        )
                    )
                else:
                    name = raw_name
            time, time_problem = event_time(values)
            if time_problem is not None:
                problems.append(time_problem)
            properties = build_properties(values, problems)
            if problems:
                return None, problems
            built: dict[str, Any] = {"name": name, "time": time}
            if properties:
                built["properties"] = properties
            return built, None

        return event

    def _compile_purchase(  # noqa: PLR0915 - a compiler of the purchase closure; the closure's own statements count here
        self, rule: PurchaseRule
    ) -> Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[Problem] | None]]:
        applies = self._compile_when(rule.when_column)
        purchase_time = self._compile_time(rule.time_column, "purchase")
        build_properties = self._compile_properties(rule.properties)
        cell = self._cell
        fixed_product = rule.product_id
        product_column = rule.product_id_column
        fixed_currency = currency_code(rule.currency) if rule.currency is not None else None
        currency_column = rule.currency_column
        price_column = rule.price_column
        quantity_column = rule.quantity_column
        detail_of = {
            column: detail_function(self._is_pii(column))
            for column in (product_column, currency_column, price_column, quantity_column)
            if column is not None
        }

        def problem(column: str, reason: str, raw: Any) -> Problem:
            return (column, reason, detail_of[column](raw))

        def purchase(values: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem] | None]:  # noqa: PLR0912 - runs once per row: a call per field would cost every row
            if not applies(values):
                return None, None
            raw_price = cell(values.get(price_column))
            if raw_price is EMPTY:
                return None, None  # no price in this row: the row carries no purchase
            problems: list[Problem] = []
            price: float | None = None
            try:
                price = to_decimal(raw_price)
            except InvalidValueError as error:
                problems.append(problem(price_column, f"invalid purchase price: {error.reason}", raw_price))
            product = fixed_product
            if product_column is not None:
                raw_product = cell(values.get(product_column))
                if raw_product is EMPTY:
                    problems.append((product_column, "missing purchase product_id", ""))
                else:
                    try:
                        product = to_string(raw_product)
                    except InvalidValueError as error:
                        reason = f"invalid purchase product_id: {error.reason}"
                        problems.append(problem(product_column, reason, raw_product))
            currency = fixed_currency
            if currency_column is not None:
                raw_currency = cell(values.get(currency_column))
                if raw_currency is EMPTY:
                    problems.append((currency_column, "missing purchase currency", ""))
                else:
                    currency = currency_code(raw_currency) if raw_currency.__class__ is str else None
                    if currency is None:
                        problems.append(
                            problem(currency_column, "not an ISO 4217 currency code", raw_currency)
                        )
            quantity = 1
            if quantity_column is not None:
                raw_quantity = cell(values.get(quantity_column))
                if raw_quantity is not EMPTY:
                    try:
                        quantity = to_integer(raw_quantity)
                    except InvalidValueError as error:
                        reason = f"invalid purchase quantity: {error.reason}"
                        problems.append(problem(quantity_column, reason, raw_quantity))
                    else:
                        if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
                            reason = f"purchase quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}"
                            problems.append(problem(quantity_column, reason, raw_quantity))
            time, time_problem = purchase_time(values)
            if time_problem is not None:
                problems.append(time_problem)
            properties = build_properties(values, problems)
            if problems:
                return None, problems
            built: dict[str, Any] = {
                "product_id": product,
                "currency": currency,
                "price": price,
                "quantity": quantity,
                "time": time,
            }
            if properties:
                built["properties"] = properties
            return built, None

        return purchase
