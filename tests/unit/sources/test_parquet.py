"""Parquet: typed values from the file's schema, row-group positions, codecs, rejects, resume, parts."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdpbridge.sources import ResumePoint, SourceError, SourceSpec, infer_format, open_rows, plan_byte_ranges
from cdpbridge.sources.spec import SourceFormat
from tests.unit.sources.conftest import bad, good, read_all, read_ranges, read_with_resume_points

PARQUET = SourceSpec(format="parquet")
ROWS = 45
GROUP_ROWS = 10
PARIS = ZoneInfo("Europe/Paris")
# The codec pyarrow writes, and the name the file's metadata gives it.
CODECS = {
    "none": "uncompressed",
    "snappy": "snappy",
    "gzip": "gzip",
    "zstd": "zstd",
    "brotli": "brotli",
    "lz4": "lz4",
}

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("visits", pa.int64()),
        ("small", pa.int8()),
        ("score", pa.float64()),
        ("lifetime_value", pa.decimal128(38, 10)),
        ("last_order_at", pa.timestamp("us", tz="Europe/Paris")),
        ("signed_up_at", pa.timestamp("ms", tz="UTC")),
        ("seen_at_ns", pa.timestamp("ns", tz="UTC")),
        ("local_time", pa.timestamp("us")),
        ("birthday", pa.date32()),
        ("vip", pa.bool_()),
        ("notes", pa.large_string()),
        ("tags", pa.list_(pa.string())),
        ("address", pa.struct([("city", pa.string()), ("zip", pa.string())])),
        ("counters", pa.map_(pa.string(), pa.int32())),
    ]
)


def customer(index: int) -> dict[str, Any]:
    """Row ``index`` of the generated file; every third row has nulls in every nullable column."""
    if index % 3 == 2:
        return {
            "customer_id": f"c-{index:04d}",
            **{field.name: None for field in SCHEMA if field.name != "customer_id"},
        }
    return {
        "customer_id": f"c-{index:04d}",
        "visits": 9_000_000_000_000 + index,
        "small": -index,
        "score": index / 4,
        # 28 digits before the point and 10 after: more than a float (or Decimal arithmetic) holds.
        "lifetime_value": Decimal(f"{1234567890123456789012345678 + index}.{index:010d}"),
        "last_order_at": datetime(2024, 3, 31, 0, 30, tzinfo=UTC) + timedelta(hours=index),
        "signed_up_at": datetime(2020, 1, 1, tzinfo=UTC) + timedelta(milliseconds=123 * index),
        "seen_at_ns": 1_700_000_000_123_456_789 + index,
        "local_time": datetime(2023, 6, 1, 12, 0) + timedelta(minutes=index),
        "birthday": date(1980, 1, 1) + timedelta(days=index * 100),
        "vip": index % 2 == 0,
        "notes": ("é" + "x" * 99) * (1000 if index == 4 else 1),
        "tags": [f"t{index}", "shared"],
        "address": {"city": f"City {index}", "zip": f"{index:05d}"},
        "counters": [("orders", index), ("returns", 0)],
    }


def write_parquet(
    path: Path, rows: int = ROWS, *, codec: str = "snappy", group_rows: int = GROUP_ROWS, **options: Any
) -> Path:
    table = pa.Table.from_pylist([customer(index) for index in range(rows)], schema=SCHEMA)
    pq.write_table(table, path, row_group_size=group_rows, compression=codec, **options)
    return path


def group_offsets(path: Path) -> list[tuple[int, int]]:
    """(start offset, rows) of every row group, from the footer as pyarrow reports it."""
    metadata = pq.ParquetFile(path).metadata
    groups = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        starts = []
        for column in range(group.num_columns):
            chunk = group.column(column)
            starts.append(
                chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            )
        groups.append((min(starts), group.num_rows))
    return groups


@pytest.mark.parametrize("codec", CODECS)
def test_rows_keep_the_types_of_the_schema_whatever_the_codec(tmp_path, codec):
    # Given a file of several row groups written with the codec
    path = write_parquet(tmp_path / f"customers-{codec}.parquet", codec=codec)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression.lower() == CODECS[codec]

    # When it is read
    rows = [good(item) for item in read_all(path, PARQUET)]

    # Then every row has its values with the schema's types
    assert len(rows) == ROWS
    first = rows[0].values
    assert first["customer_id"] == "c-0000"
    assert first["visits"] == 9_000_000_000_000 and type(first["visits"]) is int
    assert first["small"] == 0 and type(first["small"]) is int
    assert first["score"] == 0.0 and type(first["score"]) is float
    assert first["vip"] is True and rows[1].values["vip"] is False
    assert first["birthday"] == date(1980, 1, 1) and type(first["birthday"]) is date
    assert first["tags"] == ["t0", "shared"]
    assert first["address"] == {"city": "City 0", "zip": "00000"}
    assert first["counters"] == {"orders": 0, "returns": 0}


def test_decimals_keep_every_digit_of_their_scale(tmp_path):
    path = write_parquet(tmp_path / "decimals.parquet")

    values = [good(item).values["lifetime_value"] for item in read_all(path, PARQUET)]

    assert values[1] == Decimal("1234567890123456789012345679.0000000001")
    assert values[1].as_tuple().exponent == -10
    assert values == [customer(index)["lifetime_value"] for index in range(ROWS)]


def test_timestamps_keep_their_zone_and_instant(tmp_path):
    path = write_parquet(tmp_path / "times.parquet")

    rows = [good(item).values for item in read_all(path, PARQUET)]

    # A zoned column gives moments in that zone: the same instant, the zone's offset (DST included)
    last_order = rows[0]["last_order_at"]
    assert last_order == datetime(2024, 3, 31, 0, 30, tzinfo=UTC)
    assert last_order.tzinfo is not None and last_order.utcoffset() == timedelta(hours=1)
    assert rows[1]["last_order_at"].utcoffset() == timedelta(hours=2)  # after the change to summer time
    assert rows[1]["last_order_at"].astimezone(PARIS) == rows[1]["last_order_at"]
    assert rows[3]["signed_up_at"] == datetime(2020, 1, 1, 0, 0, 0, 369_000, tzinfo=UTC)
    # Nanoseconds are read to the microsecond, zone kept
    assert rows[0]["seen_at_ns"] == datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=UTC)
    # A column without a zone gives naive datetimes (the mapper reads them as UTC)
    assert rows[0]["local_time"] == datetime(2023, 6, 1, 12, 0) and rows[0]["local_time"].tzinfo is None


def test_nulls_are_none_and_large_strings_are_whole(tmp_path):
    path = write_parquet(tmp_path / "nulls.parquet")

    rows = [good(item).values for item in read_all(path, PARQUET)]

    assert rows[2] == {
        "customer_id": "c-0002",
        **{field.name: None for field in SCHEMA if field.name != "customer_id"},
    }
    assert len(rows[4]["notes"]) == 100_000 and rows[4]["notes"].startswith("éxx")


def test_rows_are_positioned_by_row_group_offset_and_index(tmp_path):
    path = write_parquet(tmp_path / "positions.parquet")
    groups = group_offsets(path)
    assert [rows for _, rows in groups] == [10, 10, 10, 10, 5]

    items = read_all(path, PARQUET)

    expected = [(offset, index) for offset, rows in groups for index in range(rows)]
    assert [(item.position.offset, item.position.block_index) for item in items] == expected
    assert [item.position.row for item in items] == list(range(1, ROWS + 1))
    assert {item.position.source for item in items} == {str(path)}


def test_a_file_larger_than_one_batch_is_read_in_batches_with_the_same_positions(tmp_path, monkeypatch):
    # Given batches smaller than a row group, so a group is decoded in several pieces
    monkeypatch.setattr("cdpbridge.sources.parquet.BATCH_ROWS", 3)
    path = write_parquet(tmp_path / "batches.parquet")

    items = read_all(path, PARQUET)

    assert [good(item).values["customer_id"] for item in items] == [f"c-{index:04d}" for index in range(ROWS)]
    assert [item.position.block_index for item in items[:12]] == [*range(10), 0, 1]


def test_a_file_of_no_rows_has_no_rows(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=SCHEMA), path)

    assert read_all(path, PARQUET) == []


def test_resuming_after_any_row_yields_exactly_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr("cdpbridge.sources.parquet.BATCH_ROWS", 4)
    path = write_parquet(tmp_path / "resume.parquet")
    items, points = read_with_resume_points(path, PARQUET)
    assert len(items) == ROWS

    for done, point in enumerate(points):
        # The point survives a checkpoint (JSON round trip) as every resume point does
        restored = ResumePoint.from_dict(point.to_dict())
        assert read_all(path, PARQUET, resume=restored) == items[done:], f"after {done} rows"


def test_a_resume_point_mid_group_names_the_group_and_the_rows_done_in_it(tmp_path):
    path = write_parquet(tmp_path / "mid.parquet")
    groups = group_offsets(path)
    with open_rows(str(path), PARQUET) as rows:
        for _ in range(13):
            next(rows)
        point = rows.resume_point()

    assert point == ResumePoint(row=14, offset=groups[1][0], block_index=3)


def test_the_last_resume_point_reads_nothing(tmp_path):
    path = write_parquet(tmp_path / "done.parquet")
    _, points = read_with_resume_points(path, PARQUET)

    assert read_all(path, PARQUET, resume=points[-1]) == []


@pytest.mark.parametrize("target", [1, 3000, 12_000, 10**9])
def test_parts_are_whole_row_groups_and_together_read_the_file(tmp_path, target):
    # Given a file of five row groups
    path = write_parquet(tmp_path / "parts.parquet", codec="zstd")
    groups = group_offsets(path)
    sequential = read_all(path, PARQUET)

    # When it is planned into parts of about ``target`` bytes
    ranges = plan_byte_ranges(str(path), PARQUET, target_bytes=target)

    # Then each part starts where a row group starts, numbers its rows as a sequential read does,
    # and the parts together read every row once
    group_starts = {offset for offset, _ in groups}
    assert all(byte_range.start in group_starts for byte_range in ranges[1:])
    assert [r.end for r in ranges[:-1]] == [r.start for r in ranges[1:]]
    assert ranges[-1].end == path.stat().st_size
    assert read_ranges(path, PARQUET, ranges) == sequential
    if target == 1:
        assert len(ranges) == len(groups)
        assert [byte_range.first_row for byte_range in ranges] == [1, 11, 21, 31, 41]
    if target == 10**9:
        assert len(ranges) == 1


@pytest.mark.parametrize(
    ("parts", "first_rows"), [(2, [1, 31]), (3, [1, 21, 41]), (6, [1, 11, 21, 31, 41, 51])]
)
def test_a_file_is_cut_into_the_parts_its_size_asks_for_at_the_nearest_row_groups(
    tmp_path, parts, first_rows
):
    # Given six row groups of the same size, and a footer that is a good share of the file
    path = tmp_path / "six.parquet"
    table = pa.table({"id": [f"c-{index:04d}" for index in range(60)], "visits": list(range(60))})
    pq.write_table(table, path, row_group_size=10, compression="none", use_dictionary=False)
    size = path.stat().st_size

    # When it is planned for ``parts`` parts, as a fan-out of that many workers asks
    ranges = plan_byte_ranges(str(path), PARQUET, target_bytes=-(-size // parts))

    # Then it gets that many parts of equal row groups
    assert [byte_range.first_row for byte_range in ranges] == first_rows


def test_a_file_of_one_row_group_is_one_part(tmp_path):
    path = write_parquet(tmp_path / "single.parquet", group_rows=ROWS)

    ranges = plan_byte_ranges(str(path), PARQUET, target_bytes=100)

    assert len(ranges) == 1 and ranges[0].start == 0


def test_resuming_inside_a_part_stays_inside_that_part(tmp_path):
    path = write_parquet(tmp_path / "part-resume.parquet")
    ranges = plan_byte_ranges(str(path), PARQUET, target_bytes=1)
    second = ranges[1]
    with open_rows(str(path), PARQUET, byte_range=second) as rows:
        first_rows = [next(rows) for _ in range(4)]
        point = rows.resume_point()

    rest = read_all(path, PARQUET, byte_range=second, resume=point)

    assert [item.position.row for item in first_rows + rest] == list(range(11, 21))


def test_a_corrupt_row_group_is_rejected_row_by_row_and_the_others_go_through(tmp_path):
    # Given a file whose second row group has a page that fails its checksum
    path = write_parquet(
        tmp_path / "corrupt.parquet", codec="none", use_dictionary=False, write_page_checksum=True
    )
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(1).column(1)
    # The chunk's last bytes are the page's values (no dictionary page, no compression)
    last = chunk.data_page_offset + chunk.total_compressed_size - 4
    data[last : last + 4] = bytes(byte ^ 0xFF for byte in data[last : last + 4])
    path.write_bytes(bytes(data))

    # When it is read
    items = read_all(path, PARQUET)

    # Then the rows of that group are rejects naming the file and the group, the others are rows
    assert len(items) == ROWS
    assert [item.position.row for item in items] == list(range(1, ROWS + 1))
    rejected = [bad(item) for item in items[10:20]]
    assert [good(item).values["customer_id"] for item in items[:10] + items[20:]] == [
        f"c-{index:04d}" for index in [*range(10), *range(20, ROWS)]
    ]
    issue = rejected[0].issues[0]
    assert issue.reason == "unreadable Parquet row group 2"
    assert issue.position.source == str(path) and issue.column is None
    assert "checksum" in issue.detail.lower() and "\n" not in issue.detail
    assert [item.position.block_index for item in rejected] == list(range(10))


def test_resuming_inside_a_corrupt_row_group_rejects_only_the_rest_of_it(tmp_path):
    path = write_parquet(tmp_path / "corrupt-resume.parquet", codec="zstd")
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(2).column(0)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data[start : start + 16] = b"\xff" * 16  # the page header: thrift cannot decode it
    path.write_bytes(bytes(data))
    offset = group_offsets(path)[2][0]

    items = read_all(path, PARQUET, resume=ResumePoint(row=25, offset=offset, block_index=4))

    assert [item.position.row for item in items] == list(range(25, ROWS + 1))
    assert all(bad(item).issues[0].reason == "unreadable Parquet row group 3" for item in items[:6])
    assert [good(item).values["customer_id"] for item in items[6:]] == [f"c-{i:04d}" for i in range(30, ROWS)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"not parquet at all" + data[18:], "not a Parquet file"),
        (lambda data: data[: len(data) // 2], "not a readable Parquet file"),
        (
            lambda data: data[:-8] + (len(data) * 2).to_bytes(4, "little") + b"PAR1",
            "not a readable Parquet file",
        ),
    ],
    ids=["not-parquet", "truncated", "broken-footer"],
)
def test_an_unreadable_file_is_an_error_naming_it(tmp_path, damage, message):
    path = write_parquet(tmp_path / "broken.parquet")
    path.write_bytes(damage(path.read_bytes()))

    with pytest.raises(SourceError) as raised:
        read_all(path, PARQUET)

    assert raised.value.source == str(path) and message in raised.value.reason
    with pytest.raises(SourceError):
        plan_byte_ranges(str(path), PARQUET, target_bytes=1)


def test_repeated_column_names_are_refused(tmp_path):
    path = tmp_path / "repeated.parquet"
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array([1])], names=["id", "id"])
    pq.write_table(table, path)

    with pytest.raises(SourceError, match=r"columns 1 and 2 are both named 'id'"):
        read_all(path, PARQUET)


def test_a_gzipped_or_zipped_parquet_file_is_read_whole(tmp_path):
    data = write_parquet(tmp_path / "plain.parquet").read_bytes()
    expected = [good(item).values for item in read_all(tmp_path / "plain.parquet", PARQUET)]
    (tmp_path / "wrapped.parquet.gz").write_bytes(gzip.compress(data))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("customers.parquet", data)
    (tmp_path / "wrapped.zip").write_bytes(archive.getvalue())

    for name in ("wrapped.parquet.gz", "wrapped.zip"):
        assert [good(item).values for item in read_all(tmp_path / name, PARQUET)] == expected
        assert plan_byte_ranges(str(tmp_path / name), PARQUET, target_bytes=1)[0].end is None


def test_a_parquet_name_means_the_parquet_format():
    assert infer_format("s3://drop/inbound/amperity/part-0001.snappy.parquet") is SourceFormat.PARQUET
    assert infer_format("results.parquet.gz") is SourceFormat.PARQUET


def test_text_options_do_not_apply_to_parquet():
    with pytest.raises(ValueError, match="delimiter only applies"):
        SourceSpec(format="parquet", delimiter=",")


def test_pyarrow_is_imported_only_when_a_parquet_file_is_read(tmp_path):
    # A fresh interpreter: the readers, the planner and the column check load without pyarrow,
    # which the handlers' cold start would otherwise pay for; reading a Parquet file loads it.
    path = write_parquet(tmp_path / "lazy.parquet", rows=3)
    script = (
        "import sys\n"
        "import cdpbridge.sources, cdpbridge.sync.columns, cdpbridge.mapping\n"
        "before = sorted(m for m in sys.modules if m.startswith('pyarrow') or m.endswith('.parquet'))\n"
        "from cdpbridge.sources import SourceSpec, open_rows\n"
        f"rows = list(open_rows({str(path)!r}, SourceSpec(format='parquet')))\n"
        "print(before, len(rows), 'pyarrow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["[]", "3", "True"]
