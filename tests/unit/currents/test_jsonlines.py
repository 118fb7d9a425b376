"""The files route's output: its key, and every Avro field plus event_type per line, gzip."""

import gzip
from datetime import UTC, datetime

import orjson

from cdpbridge.currents import currents_key, parse_currents_key
from cdpbridge.currents.jsonlines import JsonLinesGzip, output_key

SOURCE = parse_currents_key(
    currents_key(
        prefix="currents",
        event_type="users.behaviors.Purchase",
        hour=datetime(2026, 1, 2, 23, tzinfo=UTC),
        name="f.avro",
    )
)


def test_the_output_key_is_destination_currents_event_type_day_and_file():
    assert (
        output_key("amperity", SOURCE, 0)
        == "amperity/currents/users.behaviors.Purchase/2026-01-02/f.jsonl.gz"
    )
    assert (
        output_key("blueconic", SOURCE, 4000)
        == "blueconic/currents/users.behaviors.Purchase/2026-01-02/f.4000.jsonl.gz"
    )


def test_each_line_is_the_record_plus_its_event_type():
    writer = JsonLinesGzip("users.behaviors.Purchase", 1, field_names=["id", "price", "tags"])
    records = [{"id": "1", "price": 3.5, "tags": ["a"]}, {"id": "2", "price": None, "tags": []}]
    writer.add(records)
    writer.add([])
    lines = [orjson.loads(line) for line in gzip.decompress(writer.finish()).splitlines()]
    assert lines == [{**record, "event_type": "users.behaviors.Purchase"} for record in records]
    assert writer.records == 2


def test_a_schema_with_its_own_event_type_field_keeps_its_value_and_no_key_is_doubled():
    writer = JsonLinesGzip("users.behaviors.CustomEvent", 6, field_names=["id", "event_type"])
    writer.add([{"id": "1", "event_type": "theirs"}, {"id": "2", "event_type": None}])
    raw = gzip.decompress(writer.finish()).splitlines()
    assert [line.count(b'"event_type"') for line in raw] == [1, 1]
    assert [orjson.loads(line)["event_type"] for line in raw] == ["theirs", None]
