"""Avro: records as dicts, block offsets and indexes as positions, the real Braze Currents files."""

from __future__ import annotations

import bz2
import io
import lzma
import random
import zlib
from pathlib import Path
from typing import Any

import fastavro
import pytest

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import SourceError, SourceSpec
from tests.unit.sources.conftest import CURRENTS_FIXTURES, bad, good, read_all, read_with_resume_points

AVRO = SourceSpec(format="avro")

EVENT_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "time", "type": "int"},
            {"name": "external_user_id", "type": ["null", "string"], "default": None},
            {"name": "properties", "type": {"type": "map", "values": "string"}},
        ],
    }
)


def events(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"event-{index}",
            "time": 1_700_000_000 + index,
            "external_user_id": None if index % 3 == 0 else f"user-{index}",
            "properties": {"n": str(index)},
        }
        for index in range(count)
    ]


def write_avro(
    path: Path, records: list[dict[str, Any]], *, codec: str = "null", sync_interval: int = 200
) -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, EVENT_SCHEMA, records, codec=codec, sync_interval=sync_interval)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def block_layout(data: bytes) -> list[tuple[int, int]]:
    """(offset, records) of every block, as fastavro sees them."""
    return [(block.offset, block.num_records) for block in fastavro.block_reader(io.BytesIO(data))]


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_records_become_dicts_positioned_by_block_offset_and_index(tmp_path, codec):
    # Given an Avro file of several blocks
    records = events(40)
    data = write_avro(tmp_path / "events.avro", records, codec=codec)
    layout = block_layout(data)
    assert len(layout) > 3

    # When it is read
    items = read_all(tmp_path / "events.avro", AVRO)

    # Then every record is a dict with its row number, its block's offset and its index there
    assert [good(item).values for item in items] == records
    expected = [(offset, index) for offset, count in layout for index in range(count)]
    assert [(item.position.offset, item.position.block_index) for item in items] == expected
    assert [item.position.row for item in items] == list(range(1, 41))


def test_an_avro_file_with_no_records_has_no_rows(tmp_path):
    write_avro(tmp_path / "empty.avro", [])

    assert read_all(tmp_path / "empty.avro", AVRO) == []


def test_records_that_are_not_records_of_fields_are_rejected(tmp_path):
    # Given an Avro file whose top-level schema is a plain string
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema("string"), ["a", "b"])
    (tmp_path / "strings.avro").write_bytes(buffer.getvalue())

    # When it is read, Then each value is a RejectedRow with a reason
    items = read_all(tmp_path / "strings.avro", AVRO)
    assert [type(item) for item in items] == [RejectedRow, RejectedRow]
    assert bad(items[0]).issues[0].reason == "record is a str, not a record of fields"


def test_a_string_that_is_not_utf8_rejects_the_rest_of_its_block_and_reading_goes_on(tmp_path):
    # Given a file whose second block holds a record with invalid UTF-8 in a string
    records = events(12)
    records[5]["id"] = "BAD-" + "x" * 20
    data = bytearray(write_avro(tmp_path / "ok.avro", records, sync_interval=100))
    marker = data.index(b"BAD-")
    data[marker] = 0xFF
    (tmp_path / "broken.avro").write_bytes(bytes(data))
    layout = block_layout(bytes(write_avro(tmp_path / "ok.avro", records, sync_interval=100)))
    broken_block = next(index for index, (offset, _) in enumerate(layout) if offset > marker) - 1
    block_offset, block_count = layout[broken_block]
    first_in_block = sum(count for _, count in layout[:broken_block])

    # When it is read
    items = read_all(tmp_path / "broken.avro", AVRO)

    # Then the bad record and the rest of its block are one reject at the bad record's position,
    # the following blocks are read, and every record after keeps its row number
    lost = block_count - (6 - first_in_block - 1)
    rejected = [item for item in items if isinstance(item, RejectedRow)]
    assert len(rejected) == 1
    assert (rejected[0].position.row, rejected[0].position.offset) == (6, block_offset)
    assert rejected[0].position.block_index == 5 - first_in_block
    assert f"({lost} of the {block_count} its header claims)" in rejected[0].issues[0].detail
    assert [item.position.row for item in items] == [1, 2, 3, 4, 5, 6, *range(6 + lost, 13)]
    assert all(isinstance(item, SourceRow) for item in items[first_in_block + block_count - lost + 1 :])


def _zigzag_long(value: int) -> bytes:
    """An Avro long: zig-zag, then 7 bits a byte, low bits first."""
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = encoded & 0x7F
        encoded >>= 7
        if not encoded:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _record_bytes(records: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    for record in records:
        fastavro.schemaless_writer(buffer, EVENT_SCHEMA, record)
    return buffer.getvalue()


def test_a_block_claiming_far_more_records_than_it_holds_is_one_reject_and_reading_goes_on(tmp_path):
    # Given a file whose first block holds 2 records but claims 2^40, followed by a sound block
    header_only = write_avro(tmp_path / "header.avro", [])
    sync = header_only[-16:]
    claimed = 1 << 40
    first, second = _record_bytes(events(2)), _record_bytes(events(3)[2:])
    data = (
        header_only
        + _zigzag_long(claimed)
        + _zigzag_long(len(first))
        + first
        + sync
        + _zigzag_long(1)
        + _zigzag_long(len(second))
        + second
        + sync
    )
    (tmp_path / "claims.avro").write_bytes(data)

    # When it is read
    items = read_all(tmp_path / "claims.avro", AVRO)

    # Then the two records are read, the rest of the block is ONE reject saying what it stands for,
    # and the next block's record follows with the row number the claimed count gives it
    assert [type(item) for item in items] == [SourceRow, SourceRow, RejectedRow, SourceRow]
    issue = bad(items[2]).issues[0]
    assert issue.reason == "undecodable Avro record"
    assert f"({claimed - 2} of the {claimed} its header claims)" in issue.detail
    assert (items[2].position.row, items[2].position.block_index) == (3, 2)
    assert good(items[3]).values == events(3)[2]
    assert items[3].position.row == claimed + 1

    # And a read resumed after any of them yields exactly the rest
    sequential, points = read_with_resume_points(tmp_path / "claims.avro", AVRO)
    assert sequential == items
    for done, point in enumerate(points):
        assert read_all(tmp_path / "claims.avro", AVRO, resume=point) == items[done:]


def test_a_block_claiming_a_huge_byte_size_is_a_clear_error_without_allocating_it(tmp_path):
    # Given a file whose block header claims 2^40 bytes of data that are not there
    header_only = write_avro(tmp_path / "header.avro", [])
    body = _record_bytes(events(1))
    data = header_only + _zigzag_long(1) + _zigzag_long(1 << 40) + body + header_only[-16:]
    (tmp_path / "huge.avro").write_bytes(data)

    # When it is read, Then the error names the file and the block (no MemoryError)
    with pytest.raises(
        SourceError, match=r"huge\.avro.*corrupt Avro block: it claims 1099511627776 bytes and the file ends"
    ):
        read_all(tmp_path / "huge.avro", AVRO)


def test_a_file_that_is_not_avro_is_a_clear_error(write_file):
    path = write_file("fake.avro", b"id,name\n1,Ann\n")

    with pytest.raises(SourceError, match=r"fake\.avro.*not a readable Avro file"):
        read_all(path, AVRO)


def test_a_corrupted_block_is_an_error_naming_the_offset(tmp_path):
    # Given a file whose sync marker after the first block is damaged
    data = bytearray(write_avro(tmp_path / "events.avro", events(20), sync_interval=100))
    layout = block_layout(bytes(data))
    data[layout[1][0] - 1] ^= 0xFF
    (tmp_path / "corrupt.avro").write_bytes(bytes(data))

    # When it is read, Then the error names the file and where reading stopped
    with pytest.raises(SourceError, match=r"corrupt\.avro.*corrupt Avro block"):
        read_all(tmp_path / "corrupt.avro", AVRO)


CURRENTS_SAMPLES = [
    "users.behaviors.CustomEvent.avro",
    "users.behaviors.Purchase.avro",
    "users.messages.email.Open.avro",
    "users.canvas.Entry.avro",
]


@pytest.mark.parametrize("name", CURRENTS_SAMPLES)
def test_real_braze_currents_files_are_read_with_their_own_schema(name):
    # Given a real Currents sample file
    path = CURRENTS_FIXTURES / name
    if not path.exists():
        pytest.skip(f"Braze Currents sample {name} not found under {CURRENTS_FIXTURES}")

    # When it is read
    items = read_all(path, AVRO)

    # Then it gives the same records fastavro reads, with ids and epoch-second times
    with path.open("rb") as handle:
        expected = list(fastavro.reader(handle))
    assert [good(item).values for item in items] == expected
    assert items, "a Currents file is never empty"
    for item in items:
        assert isinstance(item, SourceRow)
        assert isinstance(good(item).values["id"], str)
        assert isinstance(good(item).values["time"], int)


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("codec", "content"),
    [
        ("deflate", b"\0" * (4 * 1024 * 1024)),
        ("bzip2", b"\0" * (4 * 1024 * 1024)),
        ("xz", b"\0" * (4 * 1024 * 1024)),
        # Larger than the limit even compressed: stepped over unread.
        ("deflate", random.Random(7).randbytes(2 * 1024 * 1024)),
        ("null", b"\0" * (2 * 1024 * 1024)),
    ],
)
def test_a_block_that_decompresses_past_the_record_limit_is_one_reject_and_reading_goes_on(
    tmp_path, codec, content
):
    # Given a file whose first block claims 5 records and holds 2 or 4 MiB once decompressed (in
    # a compressed file, a decompression bomb inside the Avro file), then a sound block of one record
    buffer = io.BytesIO()
    fastavro.writer(buffer, EVENT_SCHEMA, [], codec=codec)
    header = buffer.getvalue()
    sync = header[-16:]
    compress = {"deflate": _deflated, "bzip2": bz2.compress, "xz": lzma.compress, "null": bytes}[codec]
    bomb = compress(content)
    sound = compress(_record_bytes(events(1)))
    data = (
        header
        + _zigzag_long(5)
        + _zigzag_long(len(bomb))
        + bomb
        + sync
        + _zigzag_long(1)
        + _zigzag_long(len(sound))
        + sound
        + sync
    )
    (tmp_path / "bomb.avro").write_bytes(data)
    spec = SourceSpec(format="avro", max_record_bytes=1024 * 1024)

    # When it is read with a record limit of 1 MiB
    items = read_all(tmp_path / "bomb.avro", spec)

    # Then the bomb block is one reject saying why, never decompressed whole, and the next block's
    # record follows with the row number the claimed count gives it
    assert [type(item) for item in items] == [RejectedRow, SourceRow]
    issue = bad(items[0]).issues[0]
    assert issue.reason == "Avro block too large"
    assert "holds more than 1048576 bytes once decompressed (max_record_bytes): its 5 records" in issue.detail
    assert (items[0].position.row, items[0].position.offset) == (1, len(header))
    assert (items[1].position.row, good(items[1]).values) == (6, events(1)[0])
    # And a read resumed after either yields exactly the rest
    sequential, points = read_with_resume_points(tmp_path / "bomb.avro", spec)
    assert sequential == items
    for done, point in enumerate(points):
        assert read_all(tmp_path / "bomb.avro", spec, resume=point) == items[done:]


@pytest.mark.parametrize("codec", ["deflate", "bzip2", "xz"])
def test_compressed_blocks_within_the_record_limit_are_looked_at_and_read_as_they_are(tmp_path, codec):
    # Given compressed blocks large enough to be decompressed once to check them, under the limit
    records = events(300)
    write_avro(tmp_path / "events.avro", records, codec=codec, sync_interval=8 * 1024)
    spec = SourceSpec(format="avro", max_record_bytes=64 * 1024)

    # When it is read, Then every record is read at its position
    items = read_all(tmp_path / "events.avro", spec)
    assert [good(item).values for item in items] == records
    assert [item.position.row for item in items] == list(range(1, 301))


@pytest.mark.parametrize("codec", ["deflate", "bzip2", "xz"])
def test_a_corrupt_compressed_block_is_an_error_naming_the_file(tmp_path, codec):
    # Given a compressed file whose first block's data is garbage, large enough to be looked at
    buffer = io.BytesIO()
    fastavro.writer(buffer, EVENT_SCHEMA, [], codec=codec)
    header = buffer.getvalue()
    garbage = bytes(range(256)) * 8
    data = header + _zigzag_long(3) + _zigzag_long(len(garbage)) + garbage + header[-16:]
    (tmp_path / "garbage.avro").write_bytes(data)

    # When it is read, Then the error names the file and says the block is corrupt
    with pytest.raises(SourceError, match=r"garbage\.avro.*corrupt Avro block"):
        read_all(tmp_path / "garbage.avro", SourceSpec(format="avro", max_record_bytes=1024))
