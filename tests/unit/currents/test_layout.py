"""Braze's Currents key layout: what a key says, and keys that are not in it."""

from datetime import UTC, datetime

import pytest

from cdpbridge.currents import CurrentsLayoutError, currents_key, parse_currents_key

KEY = (
    "braze/currents/dataexport.prod-03.S3.integration.5e8f0e0ba0b5c3000f1d2c3a/"
    "event_type=users.messages.email.Open/date=2026-12-07-08/353/0/part-0001.avro"
)


def test_every_part_of_a_key_in_the_layout_is_read():
    parsed = parse_currents_key(KEY)
    assert parsed.prefix == "braze/currents"
    assert parsed.cluster == "prod-03"
    assert parsed.integration_id == "5e8f0e0ba0b5c3000f1d2c3a"
    assert parsed.event_type == "users.messages.email.Open"
    assert parsed.hour == datetime(2026, 12, 7, 8, tzinfo=UTC)
    assert parsed.day == "2026-12-07"
    assert (parsed.schema_id, parsed.zone, parsed.name, parsed.stem) == (
        "353",
        "0",
        "part-0001.avro",
        "part-0001",
    )


def test_a_key_without_prefix_and_a_local_path_both_parse():
    assert parse_currents_key(KEY.removeprefix("braze/currents/")).prefix == ""
    assert parse_currents_key("/tmp/drop/" + KEY).event_type == "users.messages.email.Open"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("currents/users.messages.email.Open.avro", "not in Braze's Currents layout"),
        (KEY.replace("date=2026-12-07-08", "date=2026-12-07"), "not in Braze's Currents layout"),
        (KEY.replace("date=2026-12-07-08", "date=2026-13-07-08"), "not a valid UTC hour"),
        (KEY.replace(".avro", ".json"), "not in Braze's Currents layout"),
    ],
)
def test_keys_outside_the_layout_are_refused_with_the_key_in_the_message(key, reason):
    with pytest.raises(CurrentsLayoutError, match=reason) as refused:
        parse_currents_key(key)
    assert key in str(refused.value)


def test_a_built_key_parses_back_to_its_parts():
    hour = datetime(2026, 1, 2, 23, tzinfo=UTC)
    key = currents_key(prefix="currents/", event_type="users.behaviors.Purchase", hour=hour, name="x.avro")
    parsed = parse_currents_key(key)
    assert key.startswith("currents/dataexport.")
    assert (parsed.prefix, parsed.event_type, parsed.hour, parsed.name) == (
        "currents",
        "users.behaviors.Purchase",
        hour,
        "x.avro",
    )
