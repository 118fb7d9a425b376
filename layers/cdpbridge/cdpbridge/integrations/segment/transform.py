"""Segment calls into Braze writes: identify -> attributes, track -> custom events.

One record is one call and one user. Engage marks the calls it makes with ``context.personas``: an
identify call of an audience carries the audience key as a trait (true or false) and becomes a
boolean attribute; one of a computed trait carries the trait's value. Every attribute write carries
the call's timestamp (``as_of``) so that an older call never overwrites a newer value, whatever the
order the calls arrive in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final, Self

import orjson

from cdpbridge.integrations.segment.calls import CallError, SegmentCall, parse_call
from cdpbridge.integrations.segment.options import AnonymousCalls, MappableCall, segment_options
from cdpbridge.mapping import ColumnCheck, MappingConfig
from cdpbridge.mapping.config import attribute_name_problem
from cdpbridge.records import RowIssue, RowPosition, SourceRow
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

ANONYMOUS_REASON: Final = "no userId (anonymous call)"
DUPLICATE_REASON: Final = "duplicate messageId"
# Message ids remembered per run to apply a repeated call once; oldest forgotten first. Segment
# repeats a call within minutes, so a file's repeats are close together.
_REMEMBERED_MESSAGE_IDS: Final = 100_000
_NO_COLUMNS: Final = ColumnCheck((), (), ())


def unmapped_reason(kind: str) -> str:
    return f"{kind} call not mapped"


class SegmentTransformer:
    """The ``RecordTransformer`` of Segment calls (JSON lines, one call per line)."""

    def __init__(self, config: MappingConfig) -> None:
        self._config = config
        self._options = segment_options(config)
        self._max_properties_bytes = config.max_event_properties_bytes
        self._seen: OrderedDict[str, None] = OrderedDict()

    @property
    def config(self) -> MappingConfig:
        return self._config

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck:
        # Calls are objects with optional keys, judged one by one: no header to check.
        return _NO_COLUMNS

    def without_columns(self, columns: Iterable[str]) -> Self:
        return self

    def map_row(self, row: SourceRow) -> UserUpdate:
        position = row.position
        try:
            call = parse_call(row.values)
        except CallError as error:
            return _rejected(position, error.field, error.reason)
        update = self._user_update(call, position)
        if update.rejected:
            return update
        if call.message_id is not None and self._repeated(call.message_id):
            update.skipped = DUPLICATE_REASON
            return update
        if call.type == "identify":
            self._identify(call, update)
        elif call.type == "track":
            self._event(update, call.event or "", call.properties, call)
        else:
            self._other(call, update)
        return update

    def _user_update(self, call: SegmentCall, position: RowPosition) -> UserUpdate:
        if call.user_id is not None:
            return UserUpdate(position, f"external_id:{call.user_id}", {"external_id": call.user_id})
        if self._options.anonymous is AnonymousCalls.ALIAS and call.anonymous_id is not None:
            label = self._options.alias_label
            name = call.anonymous_id
            # Braze creates an alias-only profile for an unknown alias only when asked to create.
            return UserUpdate(
                position,
                f"alias:{label}:{name}",
                {"user_alias": {"alias_name": name, "alias_label": label}},
            )
        return _rejected(position, "userId", ANONYMOUS_REASON)

    def _repeated(self, message_id: str) -> bool:
        seen = self._seen
        if message_id in seen:
            return True
        seen[message_id] = None
        if len(seen) > _REMEMBERED_MESSAGE_IDS:
            seen.popitem(last=False)
        return False

    def _identify(self, call: SegmentCall, update: UserUpdate) -> None:
        options = self._options
        audience_key = call.personas.computation_key if call.personas and call.personas.is_audience else None
        for trait, value in call.traits.items():
            if trait in options.skip_traits:
                continue
            if trait == audience_key:
                if not options.audience_attributes:
                    continue
                if not isinstance(value, bool):
                    update.issues.append(
                        RowIssue(update.position, f"traits.{trait}", "audience value is not true or false")
                    )
                    continue
            attribute = options.traits.get(trait, trait)
            problem = attribute_name_problem(attribute)
            if problem is not None:
                update.issues.append(
                    RowIssue(update.position, f"traits.{trait}", f"attribute name {problem}")
                )
                continue
            mode = WriteMode.UNSET if value is None else WriteMode.SET
            update.attributes[attribute] = AttributeWrite(value, mode, f"traits.{trait}", call.timestamp_ms)

    def _other(self, call: SegmentCall, update: UserUpdate) -> None:
        kind = MappableCall(call.type)
        name = self._options.call_events.get(kind)
        if name is None:
            update.skipped = unmapped_reason(call.type)
            return
        properties: dict[str, Any]
        if kind is MappableCall.GROUP:
            properties = {**call.traits, "group_id": call.group_id}
        elif kind is MappableCall.ALIAS:
            properties = {"previous_id": call.previous_id}
        else:
            properties = {**call.properties, "name": call.name} if call.name else dict(call.properties)
        self._event(update, name, properties, call)

    def _event(self, update: UserUpdate, name: str, properties: dict[str, Any], call: SegmentCall) -> None:
        event: dict[str, Any] = {"name": name, "time": call.timestamp}
        if properties:
            try:
                size = len(orjson.dumps(properties))
            except orjson.JSONEncodeError:
                update.issues.append(RowIssue(update.position, "properties", "not JSON-encodable"))
                update.rejected = True
                return
            if size > self._max_properties_bytes:
                update.issues.append(
                    RowIssue(
                        update.position,
                        "properties",
                        f"larger than {self._max_properties_bytes} bytes ({size})",
                    )
                )
                update.rejected = True
                return
            event["properties"] = properties
        update.events.append(event)


def _rejected(position: RowPosition, field: str, reason: str) -> UserUpdate:
    return UserUpdate(position, "", {}, issues=[RowIssue(position, field, reason)], rejected=True)


__all__ = ["ANONYMOUS_REASON", "DUPLICATE_REASON", "SegmentTransformer", "unmapped_reason"]
