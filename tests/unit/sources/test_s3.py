"""S3RangeReader and s3:// sources against a moto server on 127.0.0.1: ranged GETs only."""

from __future__ import annotations

import gzip
import io
import itertools
import random
import string
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from cdpbridge.sources import S3RangeReader, SourceError, SourceSpec, open_rows, plan_byte_ranges
from tests.moto_server import moto_client, moto_server
from tests.unit.sources.conftest import CURRENTS_FIXTURES, Row, good, read_all
from tests.unit.sources.test_planning import random_csv

_bucket_numbers = itertools.count()


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield moto_client(endpoint, "s3")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"drop-{next(_bucket_numbers)}"
    s3_client.create_bucket(Bucket=name)
    return name


class GetObjectLog:
    """Records the Range header of every GetObject request the client sends over the wire."""

    def __init__(self, client: Any) -> None:
        self.ranges: list[str | None] = []
        self._client = client
        client.meta.events.register("before-send.s3.GetObject", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        self.ranges.append(value.decode() if isinstance(value, bytes) else value)

    def detach(self) -> None:
        self._client.meta.events.unregister("before-send.s3.GetObject", self._record)


@pytest.fixture
def get_log(s3_client: Any) -> Iterator[GetObjectLog]:
    log = GetObjectLog(s3_client)
    yield log
    log.detach()


def test_the_reader_reads_and_seeks_like_a_local_file(s3_client, bucket, get_log):
    # Given a 10 kB object
    data = bytes(range(256)) * 40
    s3_client.put_object(Bucket=bucket, Key="blob.bin", Body=data)
    reader = S3RangeReader(s3_client, bucket, "blob.bin", range_bytes=1000)
    local = io.BytesIO(data)

    # When the same reads and seeks are made on it and on an in-memory copy
    steps: list[tuple[str, int, int]] = [
        ("read", 10, 0),
        ("read", 2500, 0),
        ("seek", -100, io.SEEK_END),
        ("read", 500, 0),
        ("seek", 50, io.SEEK_SET),
        ("seek", 30, io.SEEK_CUR),
        ("read", 7, 0),
        ("seek", 20000, io.SEEK_SET),
        ("read", 5, 0),
    ]
    for action, amount, whence in steps:
        if action == "read":
            assert reader.read(amount) == local.read(amount)
        else:
            assert reader.seek(amount, whence) == local.seek(amount, whence)
        assert reader.tell() == local.tell()

    # Then it behaved the same, knows the size, and only made ranged GETs
    assert reader.size == len(data)
    assert reader.seekable() and reader.readable()
    assert get_log.ranges and all(value and value.startswith("bytes=") for value in get_log.ranges)
    reader.close()
    assert reader.closed


def test_a_sequential_read_fetches_each_range_once(s3_client, bucket, get_log):
    # Given a 10,000-byte object read in 1,000-byte ranges
    data = b"0123456789" * 1000
    s3_client.put_object(Bucket=bucket, Key="seq.bin", Body=data)
    reader = S3RangeReader(s3_client, bucket, "seq.bin", range_bytes=1000)

    # When it is read to the end in odd-sized pieces
    pieces = []
    while chunk := reader.read(333):
        pieces.append(chunk)

    # Then it got all bytes with exactly one GET per range, each for that range only
    assert b"".join(pieces) == data
    assert reader.get_requests == 10
    assert get_log.ranges == [f"bytes={start}-{start + 999}" for start in range(0, 10000, 1000)]


def test_readinto_and_readall_work(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="b.bin", Body=b"abcdefghij")
    reader = S3RangeReader(s3_client, bucket, "b.bin", range_bytes=3)

    buffer = bytearray(4)
    assert reader.readinto(buffer) == 4
    assert bytes(buffer) == b"abcd"
    assert reader.readall() == b"efghij"
    assert reader.read() == b""


def test_rows_stream_from_s3_without_a_whole_object_download(s3_client, bucket, get_log, tmp_path):
    # Given a CSV object larger than the configured range size
    data = random_csv(11, 400)
    s3_client.put_object(Bucket=bucket, Key="inbound/lytics/users.csv", Body=data)
    (tmp_path / "users.csv").write_bytes(data)
    spec = SourceSpec(format="csv", s3_range_bytes=4096, read_chunk_bytes=1024)

    # When it is read from s3://
    items = read_all(f"s3://{bucket}/inbound/lytics/users.csv", spec, s3_client=s3_client)

    # Then the rows equal a local read, and every GET asked for a range
    local = read_all(tmp_path / "users.csv", spec)
    assert [(i.position.row, i.position.offset, getattr(i, "values", None)) for i in items] == [
        (i.position.row, i.position.offset, getattr(i, "values", None)) for i in local
    ]
    assert all(item.position.source == f"s3://{bucket}/inbound/lytics/users.csv" for item in items)
    assert len(get_log.ranges) >= len(data) // 4096
    assert None not in get_log.ranges


def test_zip_and_gzip_objects_are_read_through_ranges(s3_client, bucket, get_log):
    # Given a zip (whose directory sits at the end) and a gzip on S3
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("b.jsonl", b'{"n": 2}\n')
        zipped.writestr("a.jsonl", b'{"n": 1}\n')
    s3_client.put_object(Bucket=bucket, Key="export.zip", Body=archive.getvalue())
    s3_client.put_object(Bucket=bucket, Key="export.jsonl.gz", Body=gzip.compress(b'{"n": 3}\n'))
    spec = SourceSpec(format="jsonl", s3_range_bytes=64)

    # When both are read
    zipped_rows = read_all(f"s3://{bucket}/export.zip", spec, s3_client=s3_client)
    gzipped_rows = read_all(f"s3://{bucket}/export.jsonl.gz", spec, s3_client=s3_client)

    # Then the members come in name order and no GET lacked a range
    assert [good(item).values["n"] for item in zipped_rows] == [1, 2]
    assert [good(item).values["n"] for item in gzipped_rows] == [3]
    assert get_log.ranges and None not in get_log.ranges


def test_byte_ranges_planned_on_s3_read_like_the_whole_object(s3_client, bucket, get_log):
    # Given a CSV object
    data = random_csv(12, 200)
    s3_client.put_object(Bucket=bucket, Key="big.csv", Body=data)
    location = f"s3://{bucket}/big.csv"
    spec = SourceSpec(format="csv", s3_range_bytes=2048)

    # When it is planned into ranges and each range is read on its own
    ranges = plan_byte_ranges(location, spec, target_bytes=900, s3_client=s3_client)
    parts = [read_all(location, spec, s3_client=s3_client, byte_range=byte_range) for byte_range in ranges]

    # Then together they are the sequential read
    assert len(ranges) > 3
    assert [item for part in parts for item in part] == read_all(location, spec, s3_client=s3_client)
    assert None not in get_log.ranges


def test_an_avro_object_is_read_from_s3(s3_client, bucket):
    path = CURRENTS_FIXTURES / "users.behaviors.CustomEvent.avro"
    if not path.exists():
        pytest.skip(f"Braze Currents sample not found under {CURRENTS_FIXTURES}")
    s3_client.put_object(Bucket=bucket, Key="currents/event.avro", Body=path.read_bytes())

    items = read_all(f"s3://{bucket}/currents/event.avro", SourceSpec(format="avro"), s3_client=s3_client)

    def positions_and_values(rows: list[Row]) -> list[tuple[int, int | None, int, dict[str, Any]]]:
        return [(i.position.row, i.position.offset, i.position.block_index, good(i).values) for i in rows]

    assert positions_and_values(items) == positions_and_values(read_all(path, SourceSpec(format="avro")))
    assert items


def test_an_object_replaced_while_being_read_is_an_error(s3_client, bucket):
    # Given a reader that has read the first range of an object
    s3_client.put_object(Bucket=bucket, Key="moving.csv", Body=b"a" * 100)
    reader = S3RangeReader(s3_client, bucket, "moving.csv", range_bytes=10)
    assert reader.read(10) == b"a" * 10

    # When the object is overwritten and the reader goes on
    s3_client.put_object(Bucket=bucket, Key="moving.csv", Body=b"b" * 100)

    # Then it refuses to mix versions
    with pytest.raises(SourceError, match="replaced while it was being read"):
        reader.read(10)


def test_a_missing_object_is_a_clear_error(s3_client, bucket):
    with pytest.raises(SourceError, match=rf"s3://{bucket}/nope\.csv: no such object"):
        open_rows(f"s3://{bucket}/nope.csv", SourceSpec(format="csv"), s3_client=s3_client)


def test_a_parquet_part_on_s3_fetches_the_footer_and_its_own_row_groups_only(
    s3_client, bucket, get_log, tmp_path
):
    # Given a Parquet file of four row groups of incompressible text on S3
    import pyarrow as pa  # noqa: PLC0415  (only this test needs it in this module)
    import pyarrow.parquet as pq  # noqa: PLC0415

    rng = random.Random(7)
    notes = ["".join(rng.choices(string.ascii_letters, k=200)) for _ in range(2000)]
    table = pa.table({"id": [f"u{index}" for index in range(2000)], "note": notes})
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=500, compression="none", use_dictionary=False)
    size = path.stat().st_size
    s3_client.put_object(Bucket=bucket, Key="inbound/big.parquet", Body=path.read_bytes())
    location = f"s3://{bucket}/inbound/big.parquet"
    spec = SourceSpec(format="parquet", s3_range_bytes=4096)
    ranges = plan_byte_ranges(location, spec, target_bytes=size // 5, s3_client=s3_client)
    assert len(ranges) == 4
    get_log.ranges.clear()

    # When the last part is read
    rows = read_all(location, spec, s3_client=s3_client, byte_range=ranges[-1])

    # Then it holds the last row group's rows, read through ranged GETs covering little of the file
    assert [good(row).values["id"] for row in rows] == [f"u{index}" for index in range(1500, 2000)]
    fetched = sum(
        int(end) - int(start) + 1
        for start, end in (r.removeprefix("bytes=").split("-") for r in get_log.ranges)
    )
    assert fetched < size // 2
