"""Column-to-event and column-to-purchase rules."""

from __future__ import annotations

from cdpbridge.mapping import Mapper
from tests.unit.mapping.helpers import map_values, mapper_for

EVENT = """
events:
  - name: Plan Changed
    time_column: changed_at
    properties: {plan: plan, seats: {column: seats, type: integer}}
"""

NAMED_BY_COLUMN = """
events:
  - name_column: event
    time_column: ts
    when_column: active
"""

PURCHASE = """
purchases:
  - product_id_column: sku
    currency_column: cur
    price_column: price
    quantity_column: qty
    time_column: bought_at
    properties: {colour: colour}
"""


def test_an_event_is_built_with_utc_time_and_typed_properties() -> None:
    # Given an event rule with a fixed name
    mapper = mapper_for(EVENT)
    # When a row carries the time and properties
    update = map_values(mapper, changed_at="2024-03-01 12:00:00+01:00", plan="pro", seats="5")
    # Then the event has its name, the time in UTC, and the typed properties
    assert update.events == [
        {"name": "Plan Changed", "time": "2024-03-01T11:00:00Z", "properties": {"plan": "pro", "seats": 5}}
    ]
    assert update.issues == []


def test_empty_properties_are_left_out() -> None:
    update = map_values(mapper_for(EVENT), changed_at="2024-03-01T00:00:00Z", plan="", seats="null")
    assert update.events == [{"name": "Plan Changed", "time": "2024-03-01T00:00:00Z"}]


def test_an_event_without_a_time_is_an_issue_not_a_guess() -> None:
    update = map_values(mapper_for(EVENT), plan="pro")
    assert update.events == []
    assert [(issue.column, issue.reason) for issue in update.issues] == [("changed_at", "missing event time")]


def test_invalid_event_time_and_property_are_reported_and_the_event_dropped() -> None:
    update = map_values(mapper_for(EVENT), changed_at="later", plan="pro", seats="many")
    assert update.events == []
    assert [(issue.column, issue.reason) for issue in update.issues] == [
        ("changed_at", "invalid event time: not a recognised date/time (expected ISO 8601)"),
        ("seats", "property 'seats': not an integer"),
    ]


def test_the_event_name_may_come_from_a_column_and_the_rule_may_depend_on_a_flag() -> None:
    mapper = mapper_for(NAMED_BY_COLUMN)
    assert map_values(mapper, event="Signed Up", ts="2024-01-01T00:00:00Z", active="yes").events == [
        {"name": "Signed Up", "time": "2024-01-01T00:00:00Z"}
    ]
    for flag in ("", "false", "0", "no", None):
        assert map_values(mapper, event="Signed Up", ts="2024-01-01T00:00:00Z", active=flag).events == []
    # A row without an event name simply carries no event.
    assert map_values(mapper, event="", ts="2024-01-01T00:00:00Z", active="1").events == []


def test_an_over_long_event_name_is_refused() -> None:
    update = map_values(mapper_for(NAMED_BY_COLUMN), event="e" * 256, ts="2024-01-01T00:00:00Z", active="1")
    assert update.events == []
    assert [issue.reason for issue in update.issues] == ["event name must be text of at most 255 characters"]


def test_event_properties_over_the_size_limit_are_refused() -> None:
    mapper = mapper_for(
        "max_event_properties_bytes: 100\nevents: [{name: E, time_column: ts, properties: {blob: blob}}]\n"
    )
    update = map_values(mapper, ts="2024-01-01T00:00:00Z", blob="x" * 200)
    assert update.events == []
    [issue] = update.issues
    assert issue.column is None and issue.reason == "properties larger than 100 bytes"


def test_a_purchase_is_built_with_iso_currency_price_quantity_and_time() -> None:
    update = map_values(
        mapper_for(PURCHASE),
        sku="SKU-1",
        cur="eur",
        price="19.90",
        qty="2",
        bought_at="2024-05-01",
        colour="red",
    )
    assert update.purchases == [
        {
            "product_id": "SKU-1",
            "currency": "EUR",
            "price": 19.9,
            "quantity": 2,
            "time": "2024-05-01T00:00:00Z",
            "properties": {"colour": "red"},
        }
    ]


def test_quantity_defaults_to_one_and_fixed_product_and_currency_work() -> None:
    mapper = mapper_for("purchases: [{product_id: plan, currency: USD, price_column: p, time_column: t}]\n")
    update = map_values(mapper, p="5", t="2024-05-01T10:00:00Z")
    assert update.purchases == [
        {"product_id": "plan", "currency": "USD", "price": 5.0, "quantity": 1, "time": "2024-05-01T10:00:00Z"}
    ]


def test_a_row_without_a_price_carries_no_purchase() -> None:
    update = map_values(mapper_for(PURCHASE), sku="SKU-1", cur="EUR", bought_at="2024-05-01")
    assert update.purchases == [] and update.issues == []


def test_purchase_values_are_validated_like_braze_does() -> None:
    update = map_values(mapper_for(PURCHASE), sku="", cur="EURO", price="1,50", qty="101", bought_at="x")
    assert update.purchases == []
    assert [(issue.column, issue.reason) for issue in update.issues] == [
        ("price", "invalid purchase price: not a decimal number (digits with an optional '.')"),
        ("sku", "missing purchase product_id"),
        ("cur", "not an ISO 4217 currency code"),
        ("qty", "purchase quantity must be between 1 and 100"),
        ("bought_at", "invalid purchase time: not a recognised date/time (expected ISO 8601)"),
    ]


def test_extreme_event_and_purchase_values_drop_the_event_or_purchase_with_an_issue() -> None:
    # Given an event and a purchase rule, and a row whose times and amounts are out of range
    mapper = mapper_for(EVENT + PURCHASE)
    update = map_values(
        mapper,
        changed_at="0001-01-01T00:30:00+05:00",
        plan="pro",
        seats="9" * 5000,
        sku="S",
        cur="EUR",
        price="9" * 400,
        qty="9" * 5000,
        bought_at="9999-12-31T23:30:00-05:00",
    )
    # Then neither is built, and each bad value is an issue on its column (mapping did not raise)
    assert update.events == [] and update.purchases == []
    outside = "date/time is outside the years 1-9999 once converted to UTC"
    assert [(issue.column, issue.reason) for issue in update.issues] == [
        ("changed_at", f"invalid event time: {outside}"),
        ("seats", "property 'seats': integer outside the 64-bit range Braze stores"),
        ("price", "invalid purchase price: number beyond the range of a 64-bit float (about 1.8e308)"),
        ("qty", "invalid purchase quantity: integer outside the 64-bit range Braze stores"),
        ("bought_at", f"invalid purchase time: {outside}"),
    ]
    assert update.rejected is True


def test_event_and_purchase_times_keep_the_time_of_day_first_dates() -> None:
    update = map_values(
        mapper_for(EVENT + PURCHASE),
        changed_at="13/05/2024 14:30",
        plan="pro",
        sku="S",
        cur="EUR",
        price="1",
        bought_at="05/13/2024 2:30 PM",
    )
    assert update.issues == []
    assert [event["time"] for event in update.events] == ["2024-05-13T14:30:00Z"]
    assert [purchase["time"] for purchase in update.purchases] == ["2024-05-13T14:30:00Z"]


def test_a_zero_quantity_is_refused() -> None:
    update = map_values(mapper_for(PURCHASE), sku="S", cur="EUR", price="1", qty="0", bought_at="2024-05-01")
    assert [issue.reason for issue in update.issues] == ["purchase quantity must be between 1 and 100"]


def test_events_and_purchases_sit_beside_attributes_of_the_same_row() -> None:
    mapper: Mapper = mapper_for("fields: [{column: tier}]\n" + EVENT + PURCHASE)
    update = map_values(
        mapper,
        tier="gold",
        changed_at="2024-03-01T00:00:00Z",
        plan="pro",
        sku="S",
        cur="EUR",
        price="1",
        bought_at="2024-03-01T00:00:00Z",
    )
    assert set(update.attributes) == {"tier"}
    assert len(update.events) == 1 and len(update.purchases) == 1
