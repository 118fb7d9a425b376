"""SourceSpec defaults and validation, format inference, ResumePoint/ByteRange serialisation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdpbridge.mapping import load_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.sources import (
    ByteRange,
    Compression,
    ResumePoint,
    SourceFormat,
    SourceSpec,
    SourceSpecError,
    infer_format,
)
from cdpbridge.sources._rows import _plain_make_row, make_row


@pytest.mark.parametrize(("fmt", "delimiter"), [("csv", ","), ("tsv", "\t"), ("psv", "|")])
def test_the_delimiter_defaults_by_format(fmt, delimiter):
    spec = SourceSpec(format=fmt)

    assert spec.effective_delimiter == delimiter
    assert spec.encoding == "utf-8"
    assert spec.compression is Compression.AUTO
    assert spec.header is True


def test_a_mapping_source_section_with_extra_keys_validates():
    # Given the source section of a mapping, which also carries options for the mapper
    section = {"format": "csv", "delimiter": ";", "null_markers": ["", "NULL"]}

    # When it is validated, Then the reading options are taken and the others ignored
    spec = SourceSpec.model_validate(section)
    assert spec.effective_delimiter == ";"
    assert spec.format is SourceFormat.CSV


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "csv", "delimiter": ",,"}, "one character"),
        ({"format": "csv", "delimiter": "\n"}, "one character other than a line break"),
        ({"format": "csv", "quotechar": ","}, "quotechar and delimiter must differ"),
        ({"format": "csv", "encoding": "utf-16"}, "not ASCII-compatible"),
        ({"format": "csv", "encoding": "klingon"}, "unknown encoding"),
        ({"format": "jsonl", "delimiter": ","}, "delimiter only applies to csv, tsv and psv"),
        ({"format": "csv", "header": False}, "needs columns"),
        ({"format": "csv", "columns": ["a"]}, "set header to false"),
        ({"format": "csv", "header": False, "columns": ["id", "email", "email"]}, "columns 2 and 3 are both"),
        ({"format": "csv", "header": False, "columns": ["id", " "]}, "column 2 has an empty name"),
        ({"format": "xml"}, "format"),
        ({"format": "csv", "read_chunk_bytes": 0}, "read_chunk_bytes"),
    ],
)
def test_specs_that_cannot_describe_a_readable_file_are_refused(options, message):
    with pytest.raises(ValidationError, match=message):
        SourceSpec.model_validate(options)


def test_utf8_sig_and_single_byte_encodings_are_accepted():
    assert SourceSpec(format="csv", encoding="utf-8-sig").codec == "utf-8"
    assert SourceSpec(format="csv", encoding="cp1252").codec == "cp1252"
    assert SourceSpec(format="csv", encoding="latin-1").skips_utf8_bom is False


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://drop/inbound/lytics/users.csv.gz", SourceFormat.CSV),
        ("export.TSV", SourceFormat.TSV),
        ("segment-export/abc/part-0001.jsonl.zip", SourceFormat.JSONL),
        ("a.ndjson", SourceFormat.JSONL),
        ("people.json", SourceFormat.JSON),
        ("event_type=users.messages.email.Open/1+2+3.avro", SourceFormat.AVRO),
        ("README", None),
        ("archive.zip", None),
    ],
)
def test_the_format_is_inferred_from_the_name(location, expected):
    assert infer_format(location) is expected


def test_byte_ranges_round_trip_through_dicts():
    byte_range = ByteRange(start=1024, end=4096, first_row=17)

    assert ByteRange.from_dict(byte_range.to_dict()) == byte_range
    assert ByteRange.from_dict({"start": 0, "end": None}) == ByteRange(0, None, 1)
    assert ByteRange(0, None).is_whole_file


@pytest.mark.parametrize(
    "data",
    [
        {"start": -1, "end": 10},
        {"start": 20, "end": 10},
        {"start": "0", "end": 10},
        {"start": 0, "end": 10, "first_row": 0},
        {"start": 0, "end": True},
        [0, 10],
    ],
)
def test_malformed_byte_ranges_are_refused(data):
    with pytest.raises(SourceSpecError):
        ByteRange.from_dict(data)


@pytest.mark.parametrize(
    "data",
    [{"row": 0, "offset": 0}, {"row": 1}, {"row": 1, "offset": -5}, {"row": 1, "offset": 0, "member": 3}],
)
def test_malformed_resume_points_are_refused(data):
    with pytest.raises(SourceSpecError):
        ResumePoint.from_dict(data)


def test_fast_rows_are_the_same_objects_the_constructors_build():
    # Given a row built by the fast path and one built by the dataclass constructors
    fast = make_row("s3://b/k.csv", 7, 1234, 2, {"a": "1"})
    plain = _plain_make_row("s3://b/k.csv", 7, 1234, 2, {"a": "1"})

    # Then they are equal, hash equally, and are of the very same classes
    assert fast == plain == SourceRow(RowPosition("s3://b/k.csv", 7, 1234, 2), {"a": "1"})
    assert hash(fast.position) == hash(plain.position)
    assert type(fast) is SourceRow
    assert type(fast.position) is RowPosition
    with pytest.raises(AttributeError):
        fast.position.row = 8  # type: ignore[misc]


def test_the_reading_limits_of_a_mapping_source_section_reach_the_readers():
    # Given a mapping whose source section sets the field and decompression limits
    mapping = load_mapping(
        "version: 1\n"
        "source: {format: csv, max_field_chars: 4096, max_decompressed_bytes: 1000000, "
        "max_compression_ratio: 50}\n"
        "identifier: {column: id}\n"
    )

    # When the readers' spec is made from it, as a run makes it
    spec = SourceSpec.model_validate(mapping.source.model_dump())

    # Then the limits are those of the mapping, and the defaults hold where a mapping says nothing
    assert (spec.max_field_chars, spec.max_decompressed_bytes, spec.max_compression_ratio) == (
        4096,
        1_000_000,
        50.0,
    )
    defaults = SourceSpec.model_validate(
        load_mapping("version: 1\nidentifier: {column: id}\n").source.model_dump()
    )
    assert (defaults.max_field_chars, defaults.max_decompressed_bytes, defaults.max_compression_ratio) == (
        SourceSpec(format="csv").max_field_chars,
        SourceSpec(format="csv").max_decompressed_bytes,
        SourceSpec(format="csv").max_compression_ratio,
    )
