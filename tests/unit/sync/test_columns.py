"""The columns a file declares up front: CSV-family headers (plain, gzip, each zip member), the spec's
columns for a file without a header, Avro record fields, Parquet schema columns; nothing for JSON and
JSON lines."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdpbridge.sources import SourceError, SourceSpec
from cdpbridge.sync.columns import DeclaredColumns, read_declared_columns


def test_a_csv_header_is_read_without_reading_the_rows(tmp_path: Path) -> None:
    # Given a CSV file whose header is followed by a long body
    path = tmp_path / "users.csv"
    path.write_text("id,Tier,email\n" + "u1,gold,a@example.com\n" * 50_000)
    # When its columns are read
    declared = read_declared_columns(str(path), SourceSpec(format="csv"))
    # Then they are the header's names, as written
    assert declared == [DeclaredColumns(str(path), ("id", "Tier", "email"))]


def test_a_gzip_psv_header_and_each_zip_member_header(tmp_path: Path) -> None:
    # Given a gzip PSV file and a zip with two CSV members of different headers
    packed = tmp_path / "users.psv.gz"
    packed.write_bytes(gzip.compress(b"id|tier\nu1|gold\n"))
    archive = tmp_path / "users.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a.csv", "id,tier\nu1,gold\n")
        handle.writestr("b.csv", "id,level\nu2,silver\n")
    # When their columns are read
    # Then each stream of rows gives its own header, named as its rows' source is
    assert read_declared_columns(str(packed), SourceSpec(format="psv")) == [
        DeclaredColumns(str(packed), ("id", "tier"))
    ]
    assert read_declared_columns(str(archive), SourceSpec(format="csv")) == [
        DeclaredColumns(f"{archive}!a.csv", ("id", "tier")),
        DeclaredColumns(f"{archive}!b.csv", ("id", "level")),
    ]


def test_a_file_without_a_header_declares_the_spec_columns(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("u1,gold\n")
    declared = read_declared_columns(
        str(path), SourceSpec(format="csv", header=False, columns=("id", "tier"))
    )
    assert declared == [DeclaredColumns(str(path), ("id", "tier"))]


def test_avro_declares_its_record_fields(tmp_path: Path) -> None:
    # Given an Avro file of records with two fields
    schema = {
        "type": "record",
        "name": "user",
        "fields": [{"name": "id", "type": "string"}, {"name": "tier", "type": ["null", "string"]}],
    }
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [{"id": "u1", "tier": "gold"}])
    path = tmp_path / "users.avro"
    path.write_bytes(buffer.getvalue())
    # When its columns are read, then they are the schema's field names
    assert read_declared_columns(str(path), SourceSpec(format="avro")) == [
        DeclaredColumns(str(path), ("id", "tier"))
    ]


def test_parquet_declares_its_schema_columns_plain_or_gzipped(tmp_path: Path) -> None:
    # Given a Parquet file, and the same file gzipped
    path = tmp_path / "users.parquet"
    table = pa.table({"id": ["u1"], "Tier": ["gold"], "visits": pa.array([3], pa.int32())})
    pq.write_table(table, path)
    packed = tmp_path / "users.parquet.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    # When their columns are read
    # Then they are the schema's top-level columns, in order
    for location in (path, packed):
        assert read_declared_columns(str(location), SourceSpec(format="parquet")) == [
            DeclaredColumns(str(location), ("id", "Tier", "visits"))
        ]


def test_json_lines_and_empty_files_declare_nothing(tmp_path: Path) -> None:
    # Given JSON lines (each record names its own keys) and an empty CSV file
    lines = tmp_path / "users.jsonl"
    lines.write_text('{"id": "u1"}\n')
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    # Then there is no header to check
    assert read_declared_columns(str(lines), SourceSpec(format="jsonl")) == []
    assert read_declared_columns(str(empty), SourceSpec(format="csv")) == []


def test_an_unusable_header_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id,tier,tier\nu1,a,b\n")
    with pytest.raises(SourceError) as raised:
        read_declared_columns(str(path), SourceSpec(format="csv"))
    assert (raised.value.source, raised.value.row) == (str(path), 0)
