"""The streaming Avro reader: every sample decodes, the schema is the file's, unknown types and fields
pass through, the key's event type is checked, chunks resume at a record index."""

import io
import itertools

import fastavro
import pytest

from cdpbridge.currents import CurrentsFile, CurrentsFileError
from cdpbridge_local.currents_data import avro_bytes, renamed, synthetic_events, with_optional_field

from .conftest import CURRENTS_FIXTURES


def read_all(data: bytes, event_type: str, start: int = 0, size: int = 2000):
    opened = CurrentsFile(io.BytesIO(data), "test.avro", event_type)
    return opened, list(opened.chunks(start, size))


def test_every_sample_decodes_whole_with_its_own_schema(samples):
    for sample in samples:
        data = (CURRENTS_FIXTURES / f"{sample.event_type}.avro").read_bytes()
        opened, chunks = read_all(data, sample.event_type)
        assert opened.schema_name == f"dataexport.S3.inner.{sample.event_type}"
        records = [record for chunk in chunks for record in chunk.records]
        assert records == [sample.record], sample.event_type
        assert all(not chunk.unreadable for chunk in chunks)


def test_a_new_optional_field_passes_through_with_its_value(sample_by_type):
    sample = sample_by_type["users.messages.email.Click"]
    schema = with_optional_field(sample.schema, "click_region")
    events = [{**event, "click_region": "eu"} for event in synthetic_events(sample.record, 3)]
    _, chunks = read_all(avro_bytes(schema, events), sample.event_type)
    assert [record["click_region"] for record in chunks[0].records] == ["eu", "eu", "eu"]
    assert chunks[0].records == events


def test_an_event_type_never_seen_before_decodes(sample_by_type):
    sample = sample_by_type["users.behaviors.CustomEvent"]
    events = list(synthetic_events(sample.record, 5))
    data = avro_bytes(renamed(sample.schema, "users.behaviors.quantum.Teleport"), events)
    opened, chunks = read_all(data, "users.behaviors.quantum.Teleport")
    assert opened.schema_name == "dataexport.S3.inner.users.behaviors.quantum.Teleport"
    assert chunks[0].records == events


def test_a_schema_with_a_namespace_matches_on_its_full_name(sample_by_type):
    sample = sample_by_type["users.behaviors.Purchase"]
    schema = {**sample.schema, "name": "Purchase", "namespace": "dataexport.S3.inner.users.behaviors"}
    opened, _ = read_all(avro_bytes(schema, [sample.record]), "users.behaviors.Purchase")
    assert opened.schema_name == "dataexport.S3.inner.users.behaviors.Purchase"


def test_a_key_naming_another_event_type_than_the_schema_is_refused():
    data = (CURRENTS_FIXTURES / "users.messages.email.Open.avro").read_bytes()
    with pytest.raises(
        CurrentsFileError, match=r"test.avro: the key says event_type=users.messages.email.Click"
    ):
        CurrentsFile(io.BytesIO(data), "test.avro", "users.messages.email.Click")


def test_a_file_that_is_not_avro_or_not_a_record_is_refused():
    with pytest.raises(CurrentsFileError, match="not a readable Avro file"):
        CurrentsFile(io.BytesIO(b"id,time\n1,2\n"), "test.avro", "users.x")
    buffer = io.BytesIO()
    fastavro.writer(buffer, {"type": "array", "items": "int"}, [[1]])
    with pytest.raises(CurrentsFileError, match="not a record"):
        CurrentsFile(io.BytesIO(buffer.getvalue()), "test.avro", "users.x")


def test_chunks_resume_at_a_record_index_and_hold_at_most_size_records(sample_by_type):
    sample = sample_by_type["users.messages.pushnotification.Open"]
    events = list(synthetic_events(sample.record, 1000))
    buffer = io.BytesIO()
    # Small blocks, so that resuming skips whole blocks and starts inside one.
    fastavro.writer(buffer, fastavro.parse_schema(sample.schema), events, sync_interval=2000)
    _, chunks = read_all(buffer.getvalue(), sample.event_type, start=337, size=100)
    assert all(len(chunk.records) <= 100 for chunk in chunks)
    assert [record for chunk in chunks for record in chunk.records] == events[337:]
    assert chunks[0].first_index == 337
    for before, after in itertools.pairwise(chunks):
        assert after.first_index == before.end_index == before.first_index + len(before.records)
    assert chunks[-1].end_index == 1000


def test_an_undecodable_record_is_reported_with_its_index_and_the_rest_of_its_block(sample_by_type):
    sample = sample_by_type["users.behaviors.CustomEvent"]
    events = list(synthetic_events(sample.record, 6))
    events[3]["name"] = "MARKER"
    data = bytearray(avro_bytes(sample.schema, events, codec="null"))
    # An invalid UTF-8 byte in the fourth record's name: fastavro cannot decode that record.
    at = data.index(b"MARKER")
    data[at] = 0xFF
    _, chunks = read_all(bytes(data), sample.event_type)
    records = [record for chunk in chunks for record in chunk.records]
    unreadable = [item for chunk in chunks for item in chunk.unreadable]
    assert records == events[:3]
    assert [item.index for item in unreadable] == [3, 4, 5]
    assert "undecodable Avro record" in unreadable[0].reason
    assert unreadable[1].reason == "follows an undecodable record in its Avro block"
    assert chunks[-1].end_index == 6


def test_a_damaged_block_ends_the_file_with_what_came_before_it_kept(sample_by_type):
    sample = sample_by_type["users.behaviors.Purchase"]
    events = list(synthetic_events(sample.record, 300))
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(sample.schema), events, codec="null", sync_interval=4000)
    data = bytearray(buffer.getvalue())
    # Every block ends with the file's 16-byte sync marker: damage the third block's.
    blocks = list(fastavro.block_reader(io.BytesIO(bytes(data))))
    assert len(blocks) > 3
    third_end = blocks[2].offset + blocks[2].size
    data[third_end - 1] ^= 0xFF
    kept = sum(block.num_records for block in blocks[:2])

    _, chunks = read_all(bytes(data), sample.event_type)

    records = [record for chunk in chunks for record in chunk.records]
    unreadable = [item for chunk in chunks for item in chunk.unreadable]
    assert records == events[:kept]
    (damaged,) = unreadable
    assert damaged.index == kept and "corrupt Avro block" in damaged.reason


class FailingStream(io.BytesIO):
    """A file whose reads fail past ``limit`` bytes, as an S3 range read does when S3 is unreachable."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() + (size if size and size > 0 else 1) > self.limit:
            raise ConnectionError("could not read bytes: connection reset")
        return super().read(size)


def test_a_read_that_fails_is_raised_not_reported_as_a_corrupt_file(sample_by_type):
    sample = sample_by_type["users.behaviors.Purchase"]
    buffer = io.BytesIO()
    events = list(synthetic_events(sample.record, 300))
    fastavro.writer(buffer, fastavro.parse_schema(sample.schema), events, codec="null", sync_interval=4000)
    data = buffer.getvalue()
    opened = CurrentsFile(FailingStream(data, len(data) // 2), "s3://b/k.avro", sample.event_type)
    with pytest.raises(ConnectionError):
        list(opened.chunks())
    with pytest.raises(ConnectionError):
        CurrentsFile(FailingStream(data, 10), "s3://b/k.avro", sample.event_type)
