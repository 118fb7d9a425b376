"""SegmentTransformer: one Segment call into one user's writes, events, rejects or skips."""

from __future__ import annotations

from typing import Any

import pytest

from cdpbridge.integrations.segment.transform import (
    ANONYMOUS_REASON,
    DUPLICATE_REASON,
    SegmentTransformer,
    unmapped_reason,
)
from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

MINIMAL = "version: 1\nintegration: segment\nsource: {format: jsonl}\n"
T_0900 = 1_796_115_600_000  # 2026-12-01T09:00:00Z in milliseconds


def transformer(options: str = "") -> SegmentTransformer:
    return SegmentTransformer(load_mapping(MINIMAL + options))


def call(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"messageId": "m1", "userId": "u1", "timestamp": "2026-12-01T09:00:00.000Z"}
    return {**base, **fields}


def personas(kind: str, key: str) -> dict[str, Any]:
    return {"personas": {"computation_class": kind, "computation_key": key, "space_id": "spa_1"}}


def mapped(record: dict[str, Any], mapper: SegmentTransformer | None = None, row: int = 1) -> UserUpdate:
    return (mapper or transformer()).map_row(SourceRow(RowPosition("calls.jsonl", row), record))


def test_a_computed_trait_becomes_the_attribute_of_its_name_with_the_calls_time() -> None:
    update = mapped(
        call(type="identify", traits={"last_item": "Sweater"}, context=personas("trait", "last_item"))
    )
    assert update.user_key == "external_id:u1"
    assert update.identifier == {"external_id": "u1"}
    assert update.attributes == {
        "last_item": AttributeWrite("Sweater", WriteMode.SET, "traits.last_item", T_0900)
    }
    assert not update.rejected and update.skipped is None


def test_an_audience_key_becomes_a_boolean_attribute() -> None:
    update = mapped(call(type="identify", traits={"dormant": False}, context=personas("audience", "dormant")))
    assert update.attributes["dormant"].value is False


def test_an_audience_value_that_is_not_boolean_is_an_issue_on_the_trait() -> None:
    update = mapped(call(type="identify", traits={"dormant": "yes"}, context=personas("audience", "dormant")))
    assert update.attributes == {}
    assert [(issue.column, issue.reason) for issue in update.issues] == [
        ("traits.dormant", "audience value is not true or false")
    ]


def test_audience_attributes_can_be_switched_off_while_traits_still_go() -> None:
    mapper = transformer("options: {audience_attributes: false}\n")
    update = mapped(
        call(
            type="identify", traits={"dormant": True, "plan": "pro"}, context=personas("audience", "dormant")
        ),
        mapper,
    )
    assert list(update.attributes) == ["plan"]


def test_traits_are_renamed_skipped_and_nulls_unset_as_configured() -> None:
    mapper = transformer("options: {traits: {firstName: first_name}, skip_traits: [email]}\n")
    update = mapped(
        call(type="identify", traits={"firstName": "Ada", "email": "a@example.com", "city": None}), mapper
    )
    assert update.attributes["first_name"].value == "Ada"
    assert "email" not in update.attributes
    assert update.attributes["city"].mode is WriteMode.UNSET


def test_a_track_call_is_a_custom_event_with_its_properties_and_time() -> None:
    update = mapped(call(type="track", event="Audience Entered", properties={"audience_key": "dormant"}))
    assert update.events == [
        {
            "name": "Audience Entered",
            "time": "2026-12-01T09:00:00.000Z",
            "properties": {"audience_key": "dormant"},
        }
    ]
    assert update.attributes == {}


def test_a_call_without_user_id_is_a_reject_with_its_reason() -> None:
    record = call(type="identify", traits={"a": 1}, anonymousId="anon-1")
    del record["userId"]
    update = mapped(record)
    assert update.rejected
    assert [(issue.column, issue.reason) for issue in update.issues] == [("userId", ANONYMOUS_REASON)]


def test_a_call_without_user_id_updates_the_anonymous_alias_when_configured() -> None:
    record = call(type="identify", traits={"a": 1}, anonymousId="anon-1")
    del record["userId"]
    update = mapped(record, transformer("options: {anonymous: alias, alias_label: anon}\n"))
    assert update.user_key == "alias:anon:anon-1"
    assert update.identifier == {"user_alias": {"alias_name": "anon-1", "alias_label": "anon"}}
    assert not update.update_existing_only


def test_a_repeated_message_id_is_skipped_the_second_time() -> None:
    mapper = transformer()
    first = mapped(call(type="track", event="Order Completed"), mapper)
    second = mapped(call(type="track", event="Order Completed"), mapper, row=2)
    assert first.skipped is None and len(first.events) == 1
    assert second.skipped == DUPLICATE_REASON


@pytest.mark.parametrize("kind", ["page", "screen", "group", "alias"])
def test_other_calls_are_skipped_unless_mapped(kind: str) -> None:
    assert mapped(call(type=kind)).skipped == unmapped_reason(kind)


def test_a_mapped_page_call_is_an_event_with_its_name() -> None:
    mapper = transformer("options: {call_events: {page: Page Viewed, group: Joined Group}}\n")
    page = mapped(call(type="page", name="Pricing", properties={"path": "/p"}), mapper)
    group = mapped(call(type="group", messageId="m2", groupId="acme", traits={"plan": "x"}), mapper)
    assert page.events[0]["name"] == "Page Viewed"
    assert page.events[0]["properties"] == {"path": "/p", "name": "Pricing"}
    assert group.events[0]["properties"] == {"plan": "x", "group_id": "acme"}


@pytest.mark.parametrize(
    ("record", "column", "reason"),
    [
        ({"type": "bogus"}, "type", "not a Segment call type (str)"),
        (call(type="identify", timestamp="yesterday"), "timestamp", "not an ISO 8601 time (str)"),
        (
            {"type": "identify", "userId": "u1"},
            "timestamp",
            "missing: the call's time decides which value is the latest",
        ),
        (call(type="track"), "event", "a track call needs an event name"),
        (call(type="identify", traits=["a"]), "traits", "not an object (list)"),
        (call(type="identify", userId={"id": 1}), "userId", "not a string (dict)"),
    ],
)
def test_a_record_that_is_not_a_usable_call_is_rejected_naming_the_field(
    record: dict[str, Any], column: str, reason: str
) -> None:
    update = mapped(record)
    assert update.rejected
    assert [(issue.column, issue.reason) for issue in update.issues] == [(column, reason)]


def test_event_properties_over_the_limit_reject_the_call() -> None:
    mapper = transformer("max_event_properties_bytes: 20\n")
    update = mapped(call(type="track", event="Big", properties={"text": "x" * 40}), mapper)
    assert update.rejected
    assert update.issues[0].column == "properties"


def test_received_at_stands_in_for_a_missing_timestamp() -> None:
    record = call(type="identify", traits={"a": 1}, receivedAt="2026-12-01T09:00:00Z")
    del record["timestamp"]
    assert mapped(record).attributes["a"].as_of == T_0900


def test_unknown_options_are_refused_naming_the_key() -> None:
    with pytest.raises(MappingConfigError, match=r"options\.anonymus"):
        transformer("options: {anonymus: alias}\n")
    with pytest.raises(MappingConfigError, match=r"options.traits.a: attribute must not start with '\$'"):
        transformer("options: {traits: {a: $b}}\n")


def test_the_transformer_reads_no_columns() -> None:
    mapper = transformer()
    assert mapper.check_columns(["anything"]).errors == ()
    assert mapper.without_columns(["x"]) is mapper
    assert mapper.config.integration == "segment"
