"""The rules of a users.track object, apart from HTTP and from stored state.

Each ``validate_*`` function takes one decoded JSON object and returns either a normalised value the
store can apply, or a :class:`Refusal` whose ``reason`` becomes the error ``type`` in Braze's
response. An object is refused as a whole: nothing of a refused object is applied. Some values are
not refused but handled as Braze documents: an unknown country name becomes null, an unknown time
zone is ignored, and an invalid ``$time`` or a null inside a nested object drops every nested
update of the request (``AttributeUpdate.drops_nested``) while the rest is applied.

Written for throughput: a full request carries 75 objects of ~20 attributes, so the common cases
(string, number, bool and null values of custom attributes) take one type test and one length test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, NamedTuple, final
from zoneinfo import available_timezones

import orjson

from cdpbridge_local.emulator.codes import COUNTRY_CODES, CURRENCY_CODES, LANGUAGE_CODES, country_code

STRING_MAX_LENGTH = 255
NESTED_MAX_DEPTH = 50
QUANTITY_MIN = 1
QUANTITY_MAX = 100

_ABSENT: Any = object()

EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# E.164 is advised, not required: an optional +, digits and the usual separators, 4 to 15 digits.
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 ().\-]{2,30}$")
PHONE_DIGITS_MIN = 4
PHONE_DIGITS_MAX = 15
DOB_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GENDERS = frozenset({"M", "F", "O", "N", "P"})
SUBSCRIBE_STATES = frozenset({"opted_in", "subscribed", "unsubscribed"})
SUBSCRIPTION_GROUP_STATES = frozenset({"subscribed", "unsubscribed"})

PRIMARY_IDENTIFIERS = ("external_id", "braze_id", "user_alias")
ARRAY_OPERATIONS = frozenset({"add", "remove"})
OBJECT_ARRAY_OPERATIONS = frozenset({"$add", "$remove", "$update"})
# Event and purchase property names Braze reserves (an API error).
RESERVED_PROPERTY_NAMES = frozenset({"time", "event_name"})


@final
@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an object is refused; ``reason`` is what Braze's ``errors[].type`` carries."""

    reason: str


class Identifier(NamedTuple):
    """Who an object is about. ``value`` is (alias_label, alias_name) for a user alias and the
    lower-cased address for an e-mail."""

    kind: str
    value: Any


@dataclass(slots=True)
class ArrayOperation:
    name: str
    add: list[Any]
    remove: list[Any]


@dataclass(slots=True)
class ObjectArrayOperation:
    """``$add``, ``$remove`` and ``$update`` on an array of objects.

    ``remove`` and ``update`` name items by ``$identifier_key`` / ``$identifier_value``; an update
    carries ``$new_object``, merged into the item with ``_merge_objects`` and replacing it without.
    """

    name: str
    add: list[dict[str, Any]]
    remove: list[tuple[str, Any]]
    update: list[tuple[str, Any, dict[str, Any]]]
    merge: bool


@dataclass(slots=True)
class AttributeUpdate:
    """A valid attributes object, normalised."""

    identifier: Identifier
    update_existing_only: bool
    # Custom attributes to set (None unsets); whole arrays and nested objects included.
    custom: dict[str, Any]
    # Billable standard fields (first_name, dob, country, ...), normalised.
    standard: dict[str, Any]
    # Free standard fields: email_subscribe, push_subscribe, subscription_groups.
    subscriptions: dict[str, Any]
    array_operations: list[ArrayOperation]
    increments: dict[str, int]
    # Names in ``custom`` whose object value merges into the held object (``_merge_objects``).
    merged_objects: list[str]
    data_points: int
    object_array_operations: list[ObjectArrayOperation] = field(default_factory=list)
    # An invalid $time or a null inside a nested object: Braze drops every nested update of the
    # request, not the object.
    drops_nested: bool = False

    def without_nested(self) -> None:
        """Drop the nested-object updates (objects and arrays of objects), keep everything else."""
        for name in [name for name, value in self.custom.items() if _is_nested_value(value)]:
            del self.custom[name]
        self.merged_objects = []
        self.object_array_operations = []


def _is_nested_value(value: Any) -> bool:
    if type(value) is dict:
        return not _is_time_wrapper(value)
    return type(value) is list and bool(value) and type(value[0]) is dict


@dataclass(slots=True)
class EventRecord:
    identifier: Identifier
    update_existing_only: bool
    name: str
    time: str
    properties: dict[str, Any]
    app_id: str | None
    data_points: int


@dataclass(slots=True)
class PurchaseRecord:
    identifier: Identifier
    update_existing_only: bool
    product_id: str
    currency: str
    price: float
    quantity: int
    time: str
    properties: dict[str, Any]
    app_id: str | None
    data_points: int


@dataclass(frozen=True, slots=True)
class TrackRules:
    """The configurable limits that validation needs."""

    array_max_length: int = 25
    event_properties_max_bytes: int = 100 * 1024
    purchase_properties_max_bytes: int = 50 * 1024
    nested_object_max_bytes: int = 100 * 1024
    object_array_max_bytes: int = 100 * 1024


# ---------------------------------------------------------------------------------------------
# Shared value rules
# ---------------------------------------------------------------------------------------------


@cache
def iana_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_email(value: Any) -> bool:
    return type(value) is str and len(value) <= STRING_MAX_LENGTH and EMAIL_PATTERN.match(value) is not None


def is_phone(value: Any) -> bool:
    if type(value) is not str or PHONE_PATTERN.match(value) is None:
        return False
    digits = sum(1 for char in value if char.isdigit())
    return PHONE_DIGITS_MIN <= digits <= PHONE_DIGITS_MAX


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (any precision, with or without a zone) or RFC 2822; no zone means UTC."""
    if type(value) is not str or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_identifier(obj: dict[str, Any]) -> Identifier | Refusal:
    """Exactly one of external_id, braze_id or user_alias; failing those, email, then phone.

    With a primary identifier present, ``email`` and ``phone`` are ordinary profile fields.
    """
    external_id = obj.get("external_id", _ABSENT)
    if external_id is not _ABSENT:
        if "braze_id" in obj or "user_alias" in obj:
            return MULTIPLE_IDENTIFIERS
        if type(external_id) is str and external_id:
            return Identifier("external_id", external_id)
        return Refusal("'external_id' must be a non-empty string")
    braze_id = obj.get("braze_id", _ABSENT)
    if braze_id is not _ABSENT:
        if "user_alias" in obj:
            return MULTIPLE_IDENTIFIERS
        if type(braze_id) is str and braze_id:
            return Identifier("braze_id", braze_id)
        return Refusal("'braze_id' must be a non-empty string")
    alias = obj.get("user_alias", _ABSENT)
    if alias is not _ABSENT:
        parsed_alias = parse_alias(alias)
        if parsed_alias is None:
            return Refusal("'user_alias' must be an object with non-empty 'alias_name' and 'alias_label'")
        return Identifier("user_alias", parsed_alias)
    email = obj.get("email", _ABSENT)
    if email is not _ABSENT:
        if is_email(email):
            return Identifier("email", email.lower())
        return Refusal("'email' is not a valid email address")
    phone = obj.get("phone", _ABSENT)
    if phone is not _ABSENT:
        if is_phone(phone):
            return Identifier("phone", phone)
        return Refusal("'phone' is not a valid phone number")
    return MISSING_IDENTIFIER


def parse_alias(alias: Any) -> tuple[str, str] | None:
    """(alias_label, alias_name) of a user alias object, or None when malformed."""
    if type(alias) is not dict:
        return None
    name = alias.get("alias_name")
    label = alias.get("alias_label")
    if type(name) is not str or type(label) is not str or not name or not label:
        return None
    return (label, name)


MULTIPLE_IDENTIFIERS = Refusal("only one of 'external_id', 'braze_id' or 'user_alias' may be given")
MISSING_IDENTIFIER = Refusal("'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required")
NOT_AN_OBJECT = Refusal("each entry must be a JSON object")


def _update_existing_only(obj: dict[str, Any], identifier: Identifier) -> bool | Refusal:
    flag = obj.get("_update_existing_only", _ABSENT)
    if flag is _ABSENT:
        # Braze creates profiles for unknown external ids but not for unknown aliases.
        return identifier.kind == "user_alias"
    if type(flag) is not bool:
        return Refusal("'_update_existing_only' must be a boolean")
    return flag


# ---------------------------------------------------------------------------------------------
# Custom attribute values
# ---------------------------------------------------------------------------------------------


def _scalar_array_refusal(name: str, values: list[Any]) -> Refusal | None:
    """Element types and lengths; an array longer than the maximum is truncated, not refused."""
    for element in values:
        element_type = type(element)
        if element_type is str:
            if len(element) > STRING_MAX_LENGTH:
                return Refusal(f"array element of '{name}' exceeds {STRING_MAX_LENGTH} characters")
        elif element_type is not int and element_type is not float and element_type is not bool:
            return Refusal(f"array elements of '{name}' must be strings, numbers or booleans")
    return None


def count_nested_keys(value: dict[str, Any]) -> int:
    """Data points of a nested object: every key, at every level, counts."""
    total = 0
    for child in value.values():
        total += 1
        if type(child) is dict and not _is_time_wrapper(child):
            total += count_nested_keys(child)
        elif type(child) is list:
            for element in child:
                if type(element) is dict:
                    total += count_nested_keys(element)
    return total


def _is_time_wrapper(value: dict[str, Any]) -> bool:
    return len(value) == 1 and "$time" in value


# Not a refusal: the nested updates of the whole request are dropped, the object is applied.
DROP_NESTED = Refusal("an invalid '$time' or a null in a nested object drops the request's nested updates")
_NESTED_KEY_FORBIDDEN = frozenset(" .$")


def _nested_refusal(name: str, value: dict[str, Any], depth: int) -> Refusal | None:
    """Why a nested object is refused, DROP_NESTED when it drops the request's nested updates."""
    if depth > NESTED_MAX_DEPTH:
        return Refusal(f"nested object '{name}' is deeper than {NESTED_MAX_DEPTH} levels")
    dropped = False
    for key, child in value.items():
        if not key or len(key) > STRING_MAX_LENGTH:
            return Refusal(
                f"nested object '{name}' has an empty key or a key over {STRING_MAX_LENGTH} characters"
            )
        if not _NESTED_KEY_FORBIDDEN.isdisjoint(key):
            return Refusal(f"nested object '{name}' has key '{key[:40]}' with a space, '.' or '$'")
        child_type = type(child)
        if child is None:
            dropped = True
        elif child_type is str:
            if len(child) > STRING_MAX_LENGTH:
                return Refusal(
                    f"nested object '{name}' has a string over {STRING_MAX_LENGTH} at '{key[:40]}'"
                )
        elif child_type is dict:
            if _is_time_wrapper(child):
                if parse_time(child["$time"]) is None:
                    dropped = True
            else:
                refusal = _nested_refusal(name, child, depth + 1)
                if refusal is DROP_NESTED:
                    dropped = True
                elif refusal is not None:
                    return refusal
        elif child_type is list:
            for element in child:
                if type(element) is dict:
                    refusal = _nested_refusal(name, element, depth + 1)
                    if refusal is DROP_NESTED:
                        dropped = True
                    elif refusal is not None:
                        return refusal
                elif type(element) is list:
                    return Refusal(f"nested object '{name}' has an array inside an array at '{key[:40]}'")
    return DROP_NESTED if dropped else None


def _array_operation(name: str, value: dict[str, Any]) -> ArrayOperation | Refusal:
    if not value.keys() <= ARRAY_OPERATIONS:
        return Refusal(f"array operation on '{name}' may only hold 'add' and 'remove'")
    add = value.get("add", [])
    remove = value.get("remove", [])
    if type(add) is not list or type(remove) is not list:
        return Refusal(f"'add' and 'remove' of '{name}' must be arrays")
    refusal = _scalar_array_refusal(name, add) or _scalar_array_refusal(name, remove)
    if refusal is not None:
        return refusal
    return ArrayOperation(name, add, remove)


def _identified(name: str, item: Any, operation: str) -> tuple[str, Any] | Refusal:
    if type(item) is not dict:
        return Refusal(f"each '{operation}' of '{name}' must be an object")
    key = item.get("$identifier_key")
    if type(key) is not str or not key or "$identifier_value" not in item:
        return Refusal(f"each '{operation}' of '{name}' needs '$identifier_key' and '$identifier_value'")
    return key, item["$identifier_value"]


def _object_array_operation(
    name: str, value: dict[str, Any], merge_objects: bool
) -> ObjectArrayOperation | Refusal:
    if not value.keys() <= OBJECT_ARRAY_OPERATIONS:
        return Refusal(f"array of objects operation on '{name}' may only hold '$add', '$remove', '$update'")
    operation = ObjectArrayOperation(name, [], [], [], merge_objects)
    if not all(type(items) is list for items in value.values()):
        return Refusal(f"'$add', '$remove' and '$update' of '{name}' must be arrays")
    for item in value.get("$add", []):
        if type(item) is not dict:
            return Refusal(f"'$add' of '{name}' must hold objects")
        refusal = _nested_refusal(name, item, 1)
        if refusal is not None and refusal is not DROP_NESTED:
            return refusal
        operation.add.append(item)
    for item in value.get("$remove", []):
        identified = _identified(name, item, "$remove")
        if isinstance(identified, Refusal):
            return identified
        operation.remove.append(identified)
    for item in value.get("$update", []):
        identified = _identified(name, item, "$update")
        if isinstance(identified, Refusal):
            return identified
        new_object = item.get("$new_object")
        if type(new_object) is not dict:
            return Refusal(f"each '$update' of '{name}' needs a '$new_object' object")
        refusal = _nested_refusal(name, new_object, 1)
        if refusal is not None and refusal is not DROP_NESTED:
            return refusal
        operation.update.append((*identified, new_object))
    return operation


# ---------------------------------------------------------------------------------------------
# Standard profile fields
# ---------------------------------------------------------------------------------------------


def _short_string(name: str, value: Any) -> Any:
    if value is None or (type(value) is str and len(value) <= STRING_MAX_LENGTH):
        return value
    return Refusal(f"'{name}' must be a string of at most {STRING_MAX_LENGTH} characters or null")


def _email_field(name: str, value: Any) -> Any:
    if value is None or is_email(value):
        return value
    return Refusal(f"'{name}' is not a valid email address")


def _phone_field(name: str, value: Any) -> Any:
    if value is None or is_phone(value):
        return value
    return Refusal(f"'{name}' is not a valid phone number")


def _dob_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str and DOB_PATTERN.match(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    return Refusal(f"'{name}' must be a date formatted YYYY-MM-DD")


def _country_field(name: str, value: Any) -> Any:
    # Braze maps a country name to its code where it can and sets null otherwise, without an error.
    if type(value) is str:
        if value.upper() in COUNTRY_CODES:
            return value.upper()
        return country_code(value)
    return None


def _language_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str and value.lower() in LANGUAGE_CODES:
        return value.lower()
    return Refusal(f"'{name}' must be an ISO-639-1 language code")


def _gender_field(name: str, value: Any) -> Any:
    if value is None or (type(value) is str and value in GENDERS):
        return value
    return Refusal(f"'{name}' must be one of M, F, O, N, P or null")


# A field value that is ignored: nothing is written and no error is given.
IGNORED: Any = object()


def _time_zone_field(name: str, value: Any) -> Any:
    # Only valid time zones are set; Braze ignores others without an error.
    if value is None or (type(value) is str and value in iana_time_zones()):
        return value
    return IGNORED


def _subscribe_field(name: str, value: Any) -> Any:
    if type(value) is str and value in SUBSCRIBE_STATES:
        return value
    return Refusal(f"'{name}' must be one of opted_in, subscribed, unsubscribed")


def _boolean_field(name: str, value: Any) -> Any:
    if type(value) is bool:
        return value
    return Refusal(f"'{name}' must be a boolean")


def _date_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        return Refusal(f"'{name}' must be an ISO 8601 date")
    return format_time(parsed)


def _location_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if type(value) is dict and value.keys() == {"latitude", "longitude"}:
        latitude = value["latitude"]
        longitude = value["longitude"]
        if (
            type(latitude) in (int, float)
            and type(longitude) in (int, float)
            and -90 <= latitude <= 90
            and -180 <= longitude <= 180
        ):
            return {"latitude": latitude, "longitude": longitude}
    return Refusal(f"'{name}' must be {{'latitude': -90..90, 'longitude': -180..180}}")


def _push_tokens_field(name: str, value: Any) -> Any:
    if type(value) is list and all(
        type(token) is dict
        and type(token.get("app_id")) is str
        and type(token.get("token")) is str
        and token.keys() <= {"app_id", "token", "device_id"}
        for token in value
    ):
        return value
    return Refusal(f"'{name}' must be an array of {{'app_id', 'token', 'device_id'?}} objects")


def _subscription_groups_field(name: str, value: Any) -> Any:
    if type(value) is not list:
        return Refusal(f"'{name}' must be an array")
    for group in value:
        if (
            type(group) is not dict
            or type(group.get("subscription_group_id")) is not str
            or not group["subscription_group_id"]
            or type(group.get("subscription_state")) is not str
            or group["subscription_state"] not in SUBSCRIPTION_GROUP_STATES
        ):
            return Refusal(
                f"each of '{name}' needs a 'subscription_group_id' and a 'subscription_state' "
                "of subscribed or unsubscribed"
            )
    return value


BILLABLE_STANDARD_FIELDS = {
    "first_name": _short_string,
    "last_name": _short_string,
    "home_city": _short_string,
    "bio": _short_string,
    "image_url": _short_string,
    "email": _email_field,
    "phone": _phone_field,
    "dob": _dob_field,
    "country": _country_field,
    "language": _language_field,
    "gender": _gender_field,
    "time_zone": _time_zone_field,
    "email_open_tracking_disabled": _boolean_field,
    "email_click_tracking_disabled": _boolean_field,
    "date_of_first_session": _date_field,
    "date_of_last_session": _date_field,
    "current_location": _location_field,
    "push_tokens": _push_tokens_field,
}
FREE_STANDARD_FIELDS = {
    "email_subscribe": _subscribe_field,
    "push_subscribe": _subscribe_field,
    "subscription_groups": _subscription_groups_field,
}
# Keys of an attributes object that steer processing and are never written as attributes.
CONTROL_KEYS = frozenset({"_update_existing_only", "_merge_objects", *PRIMARY_IDENTIFIERS})


# ---------------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------------


# What a key of an attributes object is. Cached per name, and per key set, because the same
# column names arrive in every object of every request.
_NAME_CUSTOM = 0
_NAME_CONTROL = 1
_NAME_BILLABLE = 2
_NAME_FREE = 3
_NAME_INVALID = 4
_CACHE_SIZE = 100_000
_name_kinds: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class _KeySet:
    """The reserved keys of one key set, in order, and its first invalid custom name if any."""

    reserved: tuple[str, ...]
    invalid_name: str | None


_key_sets: dict[tuple[str, ...], _KeySet] = {}


def _name_kind(key: str) -> int:
    kind = _name_kinds.get(key)
    if kind is not None:
        return kind
    if key in CONTROL_KEYS:
        kind = _NAME_CONTROL
    elif key in BILLABLE_STANDARD_FIELDS:
        kind = _NAME_BILLABLE
    elif key in FREE_STANDARD_FIELDS:
        kind = _NAME_FREE
    elif not key or len(key) > STRING_MAX_LENGTH or key[0] == "$":
        kind = _NAME_INVALID
    else:
        kind = _NAME_CUSTOM
    if len(_name_kinds) < _CACHE_SIZE:
        _name_kinds[key] = kind
    return kind


def _key_set(keys: tuple[str, ...]) -> _KeySet:
    reserved: list[str] = []
    invalid_name: str | None = None
    for key in keys:
        kind = _name_kind(key)
        if kind == _NAME_INVALID:
            invalid_name = key
            break
        if kind != _NAME_CUSTOM:
            reserved.append(key)
    key_set = _KeySet(tuple(reserved), invalid_name)
    # Rows deduplicated field by field carry ever-changing key sets; stop caching rather than grow.
    if len(_key_sets) < _CACHE_SIZE:
        _key_sets[keys] = key_set
    return key_set


def validate_attributes(obj: Any, rules: TrackRules) -> AttributeUpdate | Refusal:
    if type(obj) is not dict:
        return NOT_AN_OBJECT
    identifier = parse_identifier(obj)
    if type(identifier) is Refusal:
        return identifier
    update_existing_only = _update_existing_only(obj, identifier)
    if type(update_existing_only) is Refusal:
        return update_existing_only
    merge_objects = obj.get("_merge_objects", False)
    if type(merge_objects) is not bool:
        return Refusal("'_merge_objects' must be a boolean")
    keys = tuple(obj)
    key_set = _key_sets.get(keys) or _key_set(keys)
    if key_set.invalid_name is not None:
        return Refusal(
            f"custom attribute name '{key_set.invalid_name[:40]}' must be 1-{STRING_MAX_LENGTH} "
            "characters and must not start with '$'"
        )

    custom = obj.copy()
    # Positional: measurably cheaper than keywords at 75 objects a request.
    update = AttributeUpdate(identifier, update_existing_only, custom, {}, {}, [], {}, [], 0)
    identifier_key = identifier.kind
    for key in key_set.reserved:
        value = custom.pop(key)
        if key in CONTROL_KEYS or key == identifier_key:
            continue
        billable_rule = BILLABLE_STANDARD_FIELDS.get(key)
        normalised = (billable_rule or FREE_STANDARD_FIELDS[key])(key, value)
        if isinstance(normalised, Refusal):
            return normalised
        if normalised is IGNORED:
            continue
        if billable_rule is not None:
            update.standard[key] = normalised
        else:
            update.subscriptions[key] = normalised

    # Custom values: the common case (short strings, numbers, booleans, null) costs a type test and
    # a length test each; anything else takes the slow loop below.
    limit = STRING_MAX_LENGTH
    for value in custom.values():
        value_type = type(value)
        if value_type is str:
            if len(value) > limit:
                break
        elif not (value is None or value_type is int or value_type is float or value_type is bool):
            break
    else:
        update.data_points = len(custom) + _billed_standard(update.standard)
        return update

    for key, value in list(custom.items()):
        value_type = type(value)
        if value_type is str:
            if len(value) > limit:
                return Refusal(f"value of '{key}' exceeds {limit} characters")
        elif value_type is dict or value_type is list:
            refusal = _structured_value(update, key, value, rules, merge_objects)
            if refusal is not None:
                return refusal
        elif not (value is None or value_type is int or value_type is float or value_type is bool):
            return Refusal(f"value of '{key}' has an unsupported type")
    update.data_points += len(custom) + _billed_standard(update.standard) + len(update.increments)
    return update


def _billed_standard(standard: dict[str, Any]) -> int:
    # Push tokens are not counted as data points.
    return len(standard) - ("push_tokens" in standard)


def _structured_value(
    update: AttributeUpdate, key: str, value: Any, rules: TrackRules, merge_objects: bool
) -> Refusal | None:
    """A custom attribute whose value is an object or an array: operations, dates, nested data.

    Adds to ``update.data_points`` what the value costs beyond the one data point of a plain write.
    """
    if type(value) is list:
        if value and type(value[0]) is dict:
            refusal = _object_array_refusal(key, value, rules)
            if refusal is DROP_NESTED:
                update.drops_nested = True
            elif refusal is not None:
                return refusal
            update.data_points += max(sum(count_nested_keys(item) for item in value), 1) - 1
            return None
        refusal = _scalar_array_refusal(key, value)
        if refusal is not None:
            return refusal
        # Arrays hold unique values; a repeated value is stored once.
        if len(set(map(_hashable, value))) != len(value):
            value = update.custom[key] = list({_hashable(item): item for item in value}.values())
        # Over the maximum, Braze truncates the array (the newest elements, at its end, stay).
        if len(value) > rules.array_max_length:
            update.custom[key] = value[len(value) - rules.array_max_length :]
        return None
    if value.keys() & OBJECT_ARRAY_OPERATIONS:
        object_operation = _object_array_operation(key, value, merge_objects)
        if isinstance(object_operation, Refusal):
            return object_operation
        update.object_array_operations.append(object_operation)
        update.data_points += sum(count_nested_keys(item) for item in object_operation.add)
        update.data_points += sum(count_nested_keys(item[2]) for item in object_operation.update)
        update.data_points += len(object_operation.remove)
        del update.custom[key]
        return None
    if len(value) == 1 and "inc" in value:
        amount = value["inc"]
        if type(amount) is not int:
            return Refusal(f"'inc' of '{key}' must be an integer")
        update.increments[key] = amount
        del update.custom[key]
        return None
    if "add" in value or "remove" in value:
        operation = _array_operation(key, value)
        if isinstance(operation, Refusal):
            return operation
        update.array_operations.append(operation)
        # Each added or removed value is a data point of its own, and the write itself none.
        update.data_points += len(operation.add) + len(operation.remove)
        del update.custom[key]
        return None
    if _is_time_wrapper(value):
        if parse_time(value["$time"]) is None:
            return Refusal(f"'$time' of '{key}' is not a valid date")
        return None
    refusal = _nested_refusal(key, value, 1)
    if refusal is DROP_NESTED:
        update.drops_nested = True
    elif refusal is not None:
        return refusal
    if len(orjson.dumps(value)) > rules.nested_object_max_bytes:
        return Refusal(f"nested object '{key}' exceeds {rules.nested_object_max_bytes} bytes")
    update.data_points += max(count_nested_keys(value), 1) - 1
    if merge_objects:
        update.merged_objects.append(key)
    return None


def _hashable(value: Any) -> Any:
    # True == 1 for a set; keep booleans apart from numbers when looking for repeats.
    return (type(value) is bool, value)


def _object_array_refusal(name: str, value: list[Any], rules: TrackRules) -> Refusal | None:
    """Arrays of objects have no item limit, only a size limit."""
    dropped = False
    for item in value:
        if type(item) is not dict:
            return Refusal(f"array of objects '{name}' must hold only objects")
        refusal = _nested_refusal(name, item, 1)
        if refusal is DROP_NESTED:
            dropped = True
        elif refusal is not None:
            return refusal
    if len(orjson.dumps(value)) > rules.object_array_max_bytes:
        return Refusal(f"array of objects '{name}' exceeds {rules.object_array_max_bytes} bytes")
    return DROP_NESTED if dropped else None


def _properties_refusal(properties: Any, max_bytes: int) -> Refusal | None:
    if type(properties) is not dict:
        return Refusal("'properties' must be an object")
    for key, value in properties.items():
        if not key or len(key) > STRING_MAX_LENGTH or key[0] == "$":
            return Refusal(
                f"property name '{key[:40]}' must be 1-{STRING_MAX_LENGTH} characters "
                "and must not start with '$'"
            )
        if key in RESERVED_PROPERTY_NAMES:
            return Refusal(f"property name '{key}' is reserved")
        if type(value) is str and len(value) > STRING_MAX_LENGTH:
            return Refusal(f"value of property '{key[:40]}' exceeds {STRING_MAX_LENGTH} characters")
    if properties and len(orjson.dumps(properties)) > max_bytes:
        return Refusal(f"'properties' exceed {max_bytes} bytes")
    return None


def _time_of(obj: dict[str, Any], now: datetime) -> str | Refusal:
    raw = obj.get("time", _ABSENT)
    if raw is _ABSENT:
        return Refusal("'time' is required")
    moment = parse_time(raw)
    if moment is None:
        return Refusal("'time' must be an ISO 8601 date")
    # Braze records future times as now.
    return format_time(min(moment, now))


def _app_id_of(obj: dict[str, Any]) -> str | Refusal | None:
    app_id = obj.get("app_id")
    if app_id is None or type(app_id) is str:
        return app_id
    return Refusal("'app_id' must be a string")


def validate_event(obj: Any, rules: TrackRules, now: datetime) -> EventRecord | Refusal:
    if type(obj) is not dict:
        return NOT_AN_OBJECT
    identifier = parse_identifier(obj)
    if isinstance(identifier, Refusal):
        return identifier
    update_existing_only = _update_existing_only(obj, identifier)
    if isinstance(update_existing_only, Refusal):
        return update_existing_only
    name = obj.get("name")
    if type(name) is not str or not name or len(name) > STRING_MAX_LENGTH:
        return Refusal(f"'name' must be a string of 1-{STRING_MAX_LENGTH} characters")
    time = _time_of(obj, now)
    if isinstance(time, Refusal):
        return time
    properties = obj.get("properties", {})
    refusal = _properties_refusal(properties, rules.event_properties_max_bytes)
    if refusal is not None:
        return refusal
    app_id = _app_id_of(obj)
    if isinstance(app_id, Refusal):
        return app_id
    return EventRecord(
        identifier=identifier,
        update_existing_only=update_existing_only,
        name=name,
        time=time,
        properties=properties,
        app_id=app_id,
        data_points=1 + len(properties),
    )


def validate_purchase(obj: Any, rules: TrackRules, now: datetime) -> PurchaseRecord | Refusal:
    if type(obj) is not dict:
        return NOT_AN_OBJECT
    identifier = parse_identifier(obj)
    if isinstance(identifier, Refusal):
        return identifier
    update_existing_only = _update_existing_only(obj, identifier)
    if isinstance(update_existing_only, Refusal):
        return update_existing_only
    product_id = obj.get("product_id")
    if type(product_id) is not str or not product_id or len(product_id) > STRING_MAX_LENGTH:
        return Refusal(f"'product_id' must be a string of 1-{STRING_MAX_LENGTH} characters")
    currency = obj.get("currency")
    if type(currency) is not str or currency not in CURRENCY_CODES:
        return Refusal("'currency' must be an ISO 4217 currency code")
    price = obj.get("price", _ABSENT)
    if price is _ABSENT:
        return Refusal("'price' is required")
    if type(price) is not int and type(price) is not float:
        return Refusal("'price' must be a number")
    quantity = obj.get("quantity", 1)
    if type(quantity) is not int or not QUANTITY_MIN <= quantity <= QUANTITY_MAX:
        return Refusal(f"'quantity' must be an integer from {QUANTITY_MIN} to {QUANTITY_MAX}")
    time = _time_of(obj, now)
    if isinstance(time, Refusal):
        return time
    properties = obj.get("properties", {})
    refusal = _properties_refusal(properties, rules.purchase_properties_max_bytes)
    if refusal is not None:
        return refusal
    app_id = _app_id_of(obj)
    if isinstance(app_id, Refusal):
        return app_id
    return PurchaseRecord(
        identifier=identifier,
        update_existing_only=update_existing_only,
        product_id=product_id,
        currency=currency,
        price=float(price),
        quantity=quantity,
        time=time,
        properties=properties,
        app_id=app_id,
        data_points=1 + len(properties),
    )
