"""CSV, TSV and PSV: header, BOM, quoting, ragged rows, encodings and exact byte offsets."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import ByteRange, SourceError, SourceSpec, open_rows
from tests.unit.sources.conftest import bad, good, read_all, read_ranges, read_with_resume_points

CSV = SourceSpec(format="csv")


def offsets_point_at_rows(data: bytes, items: list[SourceRow | RejectedRow]) -> None:
    """Each row's offset is where its own bytes start in the file."""
    for item in items:
        assert isinstance(item, SourceRow)
        first_value = next(iter(good(item).values.values()))
        assert data[item.position.offset :].decode("utf-8", "replace").lstrip('"').startswith(first_value)


def test_reads_rows_as_dicts_of_strings_numbered_from_one(write_file):
    # Given a CSV with a header and two rows
    data = b"id,name,zip\n1,Ann,02134\n2,Bob,10001\n"
    path = write_file("users.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then every value is a str (leading zeros kept) and rows count from 1 after the header
    assert [good(item).values for item in items] == [
        {"id": "1", "name": "Ann", "zip": "02134"},
        {"id": "2", "name": "Bob", "zip": "10001"},
    ]
    assert [(item.position.row, item.position.offset) for item in items] == [(1, 12), (2, 24)]
    assert all(item.position.source == str(path) for item in items)


@pytest.mark.parametrize(("fmt", "delimiter"), [("tsv", "\t"), ("psv", "|")])
def test_tsv_and_psv_use_their_default_delimiters(write_file, fmt, delimiter):
    # Given a file delimited the way its format says, with commas inside values
    data = f"id{delimiter}note\n1{delimiter}a, b\n".encode()
    path = write_file(f"users.{fmt}", data)

    # When it is read with only the format given
    items = read_all(path, SourceSpec(format=fmt))

    # Then the commas stay inside the value
    assert [good(item).values for item in items] == [{"id": "1", "note": "a, b"}]


def test_quoted_fields_hold_newlines_delimiters_and_doubled_quotes(write_file):
    # Given quoted fields with an embedded newline, a delimiter and doubled quotes
    data = b'id,note\n1,"line one\nline two"\n2,"a, b"\n3,"say ""hi"""\n4,plain\n'
    path = write_file("quoted.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then the values are unquoted and the multi-line row is one row with the right offsets
    assert [good(item).values["note"] for item in items] == [
        "line one\nline two",
        "a, b",
        'say "hi"',
        "plain",
    ]
    assert [item.position.row for item in items] == [1, 2, 3, 4]
    assert [item.position.offset for item in items] == [8, 30, 39, 54]
    offsets_point_at_rows(data, items)


def test_a_byte_order_mark_is_skipped_but_counted_in_offsets(write_file):
    # Given a UTF-8 file that starts with a BOM
    data = b"\xef\xbb\xbfemail,name\na@example.com,Zo\xc3\xab\n"
    path = write_file("bom.csv", data)

    # When it is read as utf-8 and as utf-8-sig
    plain = read_all(path, CSV)
    sig = read_all(path, SourceSpec(format="csv", encoding="utf-8-sig"))

    # Then the first header name has no BOM, and offsets are byte offsets in the file
    assert plain == sig
    assert good(plain[0]).values == {"email": "a@example.com", "name": "Zoë"}
    assert plain[0].position.offset == 3 + len(b"email,name\n")


UNICODE_CSV = 'email,name\r\na@example.com,Zoë\r\nb@example.com,"Łukasz, 山田"\r\nc@example.com,😀\r\n'


@pytest.mark.parametrize(
    ("mark", "encoding"),
    [
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
    ],
)
def test_a_utf16_or_utf32_file_with_its_byte_order_mark_is_decoded(write_file, mark, encoding):
    # Given the same rows saved as UTF-8 and in a wide encoding with its byte order mark (as Excel's
    # "Unicode text" and Windows tools save them)
    utf8 = write_file("users.csv", UNICODE_CSV.encode())
    wide = write_file("wide.csv", mark + UNICODE_CSV.encode(encoding))

    # When both are read with the default spec (which says utf-8)
    items = read_all(wide, CSV)

    # Then the wide file gives the same values, and offsets count the text's bytes in UTF-8
    assert [good(item).values for item in items] == [good(item).values for item in read_all(utf8, CSV)]
    assert good(items[2]).values["name"] == "😀"
    assert [item.position for item in items] == [
        replace(item.position, source=str(wide)) for item in read_all(utf8, CSV)
    ]


def test_undecodable_utf16_makes_a_reject_naming_the_encoding_and_reading_goes_on(write_file):
    # Given a UTF-16 file with a lone surrogate in its second row and an odd last byte
    body = "id,name\n1,ok\n2,".encode("utf-16-le") + b"\x00\xd8" + "x\n3,ok\n4,cut".encode("utf-16-le")
    path = write_file("broken16.csv", b"\xff\xfe" + body + b"\x00")

    # When it is read
    items = read_all(path, CSV)

    # Then the damaged rows are rejects that name the file's encoding, the others are read
    assert [type(item).__name__ for item in items] == ["SourceRow", "RejectedRow", "SourceRow", "RejectedRow"]
    assert bad(items[1]).issues[0].reason == "undecodable bytes"
    assert bad(items[1]).issues[0].detail.startswith("bytes not valid utf-16-le at byte offset")
    assert good(items[2]).values == {"id": "3", "name": "ok"}


def test_a_utf8_byte_order_mark_wins_over_a_single_byte_encoding(write_file):
    # Given a UTF-8 file with its BOM, read with a spec that says latin-1
    path = write_file("bom.csv", "\ufeffemail,name\na@example.com,Zoë\n".encode())

    # When it is read, Then the BOM is not part of the first column's name and the text is UTF-8
    items = read_all(path, SourceSpec(format="csv", encoding="latin-1"))
    assert good(items[0]).values == {"email": "a@example.com", "name": "Zoë"}


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_a_file_whose_lines_end_in_cr_alone_is_read_with_its_offsets(write_file, chunk):
    # Given the same rows with LF line ends and with CR line ends (classic Mac OS, some Excel
    # exports), a quoted field holding a line break among them
    lines = 'id,note\n1,plain\n2,"two\nlines"\n3,"say ""hi"""\n\n4,last'
    lf = write_file("lf.csv", lines)
    cr = write_file("cr.csv", lines.replace("\n", "\r"))
    spec = SourceSpec(format="csv", read_chunk_bytes=chunk)

    # When both are read
    items = read_all(cr, spec)

    # Then the CR file gives the LF file's rows at the same offsets
    assert [item.position.offset for item in items] == [item.position.offset for item in read_all(lf, spec)]
    assert [good(item).values for item in items] == [good(item).values for item in read_all(lf, spec)]
    assert good(items[1]).values["note"] == "two\nlines"


def test_a_bare_cr_inside_a_crlf_file_is_a_reject_in_the_files_terms(write_file):
    # Given a CRLF file with a bare CR inside an unquoted field, and a header that has one too
    rows = write_file("crlf.csv", b"id,note\r\n1,a\rb\r\n2,ok\r\n")
    header = write_file("header.csv", b"id,no\rte\r\n1,a\r\n")

    # When they are read, Then the row is a reject and the header an error, both saying what is
    # wrong without csv's advice about opening files
    items = read_all(rows, CSV)
    assert bad(items[0]).issues[0].detail.startswith("a carriage return inside a field that is not quoted")
    assert good(items[1]).values == {"id": "2", "note": "ok"}
    with pytest.raises(SourceError, match="a carriage return inside a field that is not quoted") as error:
        read_all(header, CSV)
    assert "newline" not in str(error.value)


def test_rows_with_too_many_or_too_few_cells_are_rejected_and_reading_goes_on(write_file):
    # Given rows with one cell too many and one too few between good rows
    data = b"a,b,c\n1,2,3\n1,2,3,4\n1,2\n7,8,9\n"
    path = write_file("ragged.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then the ragged rows are RejectedRows naming the file, row and reason
    assert [type(item).__name__ for item in items] == ["SourceRow", "RejectedRow", "RejectedRow", "SourceRow"]
    too_many, too_few = items[1], items[2]
    assert isinstance(too_many, RejectedRow)
    assert too_many.position.row == 2
    assert too_many.position.source == str(path)
    assert bad(too_many).issues[0].reason == "row has 4 fields but the header has 3"
    assert bad(too_few).issues[0].reason == "row has 2 fields but the header has 3"
    assert good(items[3]).values == {"a": "7", "b": "8", "c": "9"}


def test_a_short_last_line_without_newline_is_read(write_file):
    # Given a file whose last line has no newline, in CRLF style
    path = write_file("short.csv", b"id,name\r\n1,Ann\r\n2,Bob")

    # When it is read
    items = read_all(path, CSV)

    # Then both rows are there and no carriage return leaks into the values
    assert [good(item).values for item in items] == [{"id": "1", "name": "Ann"}, {"id": "2", "name": "Bob"}]
    assert [item.position.offset for item in items] == [9, 16]


def test_empty_lines_are_not_rows(write_file):
    # Given empty lines before the header, between rows and at the end
    path = write_file("blank.csv", b"\nid\n1\n\n\r\n2\n\n")

    # When it is read
    items = read_all(path, CSV)

    # Then only the data rows are numbered, and their offsets skip the empty lines
    assert [(good(item).values["id"], item.position.row, item.position.offset) for item in items] == [
        ("1", 1, 4),
        ("2", 2, 9),
    ]


def test_undecodable_bytes_reject_only_their_row_with_the_byte_offset(write_file):
    # Given a row with a byte that is not UTF-8 between good rows
    data = b"id,name\n1,Ann\n2,B\xffb\n3,Cy\n"
    path = write_file("bad.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then that row is a RejectedRow with its row number and the offset of the bad byte
    assert isinstance(items[1], RejectedRow)
    assert items[1].position.row == 2
    assert items[1].position.offset == 14
    assert bad(items[1]).issues[0].reason == "undecodable bytes"
    assert "byte offset 17" in bad(items[1]).issues[0].detail
    assert data[17:18] == b"\xff"
    # And reading continues with the next row
    assert good(items[2]).values == {"id": "3", "name": "Cy"}
    assert items[2].position.row == 3


def test_undecodable_bytes_inside_a_multi_line_field_reject_that_row_only(write_file):
    # Given a quoted field spanning lines with a bad byte on its second line
    data = b'id,note\n1,"first\nsec\xc3ond"\n2,ok\n'
    path = write_file("bad-multiline.csv", data)

    # When it is read with a tiny read size so lines arrive in separate blocks
    items = read_all(path, SourceSpec(format="csv", read_chunk_bytes=4))

    # Then the multi-line row is rejected and the next row is intact
    assert isinstance(items[0], RejectedRow)
    assert items[0].position.row == 1
    assert good(items[1]).values == {"id": "2", "note": "ok"}
    assert items[1].position.offset == data.index(b"2,ok")


def test_multibyte_text_gets_byte_offsets_not_character_offsets(write_file):
    # Given UTF-8 rows with multi-byte characters
    data = "name,city\nZoë,Zürich\n李,北京\nAnn,Oslo\n".encode()
    path = write_file("intl.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then each offset is the position of the row's first byte
    assert [item.position.offset for item in items] == [
        data.index("Zoë".encode()),
        data.index("李".encode()),
        data.index(b"Ann"),
    ]
    offsets_point_at_rows(data, items)


def test_a_single_byte_encoding_is_decoded(write_file):
    # Given a Latin-1 file
    data = "name,city\nZoë,Zürich\nAnn,Oslo\n".encode("latin-1")
    path = write_file("latin.csv", data)

    # When it is read as latin-1
    items = read_all(path, SourceSpec(format="csv", encoding="latin-1"))

    # Then the text is right and offsets are byte offsets
    assert good(items[0]).values == {"name": "Zoë", "city": "Zürich"}
    assert items[1].position.offset == data.index(b"Ann")


def test_duplicate_header_names_are_a_clear_error_naming_the_file_and_the_columns(write_file):
    # Given a header naming a column twice
    path = write_file("dup.csv", b"id,email,email\n1,a,b\n")

    # When it is read, Then the error names the file and the positions of the two columns
    with pytest.raises(SourceError) as raised:
        read_all(path, CSV)
    assert str(path) in str(raised.value)
    assert raised.value.row == 0
    assert "header columns 2 and 3 have the same name" in raised.value.reason


def test_a_file_without_a_header_line_read_as_if_it_had_one_never_echoes_its_first_row(write_file):
    # Given a file with no header line whose first row repeats an e-mail address and a phone number
    path = write_file(
        "no-header.csv", b"u1,jane@example.com,jane@example.com,+15550100\nu2,bob@example.com,b,+15550100\n"
    )

    # When it is read with the default header: true, so that the first row is taken as the header
    with pytest.raises(SourceError) as raised:
        read_all(path, CSV)

    # Then the error says which columns clash and how to read such a file, without their values
    message = str(raised.value)
    assert "header columns 2 and 3 have the same name" in message
    assert "header: false" in message
    assert "example.com" not in message
    assert "5550100" not in message


def test_after_malformed_csv_the_reader_resumes_at_the_true_end_of_the_record(write_file):
    # Given a row with a bare carriage return before a quoted field that runs over three lines
    data = b'id,a,b\n1,foo\rbar,"x\n2,y,z\n3,y,z"\n4,ok,ok\n'
    path = write_file("cr-quoted.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then the whole record, quoted lines included, is one rejected row; nothing inside the quotes
    # becomes a row, and the next row keeps its number and offset
    assert [type(item).__name__ for item in items] == ["RejectedRow", "SourceRow"]
    rejected = bad(items[0])
    assert (rejected.position.row, rejected.position.offset) == (1, data.index(b"1,foo"))
    assert rejected.issues[0].reason == "malformed CSV"
    end = data.index(b"4,ok")
    assert rejected.issues[0].detail == (
        f"a carriage return inside a field that is not quoted; the rejected record runs from byte offset "
        f"{data.index(b'1,foo')} to {end}"
    )
    assert (items[1].position.row, items[1].position.offset) == (2, end)
    assert good(items[1]).values == {"id": "4", "a": "ok", "b": "ok"}


def test_a_malformed_record_whose_quotes_never_close_is_rejected_to_the_end_of_the_file(write_file):
    # Given a malformed row that opens a quoted field nobody closes
    data = b'id,a\n1,ok\n2,x\ry,"open\n3,z\n4,z\n'
    path = write_file("open-quote.csv", data)

    # When it is read
    items = read_all(path, CSV)

    # Then the good row is read and the rest is one rejected row, not rows 3 and 4 made up
    assert good(items[0]).values == {"id": "1", "a": "ok"}
    assert len(items) == 2
    assert (bad(items[1]).position.row, items[1].position.offset) == (2, data.index(b"2,x"))
    assert bad(items[1]).issues[0].detail.endswith(f"to {len(data)}")


def test_a_quoted_field_longer_than_csv_default_field_limit_is_read(write_file):
    # Given a quoted field of 200,000 characters over many lines (csv's default limit is 131,072)
    note = ("x" * 99 + "\n") * 2000
    data = f'id,note\n1,"{note}"\n2,ok\n3,"ok"\n'.encode()
    path = write_file("long-field.csv", data)

    # When it is read with the default record limit
    items = read_all(path, CSV)

    # Then the long field is one value and the rows after it are intact
    assert [good(item).values for item in items] == [
        {"id": "1", "note": note},
        {"id": "2", "note": "ok"},
        {"id": "3", "note": "ok"},
    ]
    assert [item.position.row for item in items] == [1, 2, 3]


def test_each_reader_reads_with_its_own_record_limit_whatever_another_left(write_file):
    # Given a quoted field of 2,000 bytes over several lines, and csv's process-wide field limit
    # lowered by some other code to less than that
    note = "word\n" * 400
    data = f'id,note\n1,"{note}"\n2,ok\n'.encode()
    path = write_file("long-field.csv", data)
    before = csv.field_size_limit(100)

    # When a reader with a 1 KiB record limit starts, then one with 8 KiB, the first still open
    small = SourceSpec(format="csv", max_record_bytes=1024)
    large = SourceSpec(format="csv", max_record_bytes=8192)
    try:
        with open_rows(str(path), small) as small_rows, open_rows(str(path), large) as large_rows:
            first_small = next(small_rows)
            large_read = list(large_rows)
            small_read = [first_small, *small_rows]
    finally:
        csv.field_size_limit(before)

    # Then the large reader reads the field whole and the small one rejects just that row
    assert [row.values["note"] for row in large_read if isinstance(row, SourceRow)] == [note, "ok"]
    assert [type(row) for row in small_read] == [RejectedRow, SourceRow]
    assert small_read[1].values == {"id": "2", "note": "ok"}


def test_a_malformed_row_at_a_range_start_reads_as_in_a_whole_read(write_file):
    # Given a file with a quoted multi-line field and a malformed row
    data = b'id,note\n1,"a\nb"\n2,c\n3,x\ry\n4,d\n'
    path = write_file("short.csv", data)
    spec = SourceSpec(format="csv", max_record_bytes=1024)

    # When it is read in two ranges, the first ending just before the malformed row
    split = data.index(b"3,x")
    ranges = [ByteRange(0, split, 1), ByteRange(split, len(data), 3)]

    # Then the rows and the reject are those of the whole read
    assert read_ranges(path, spec, ranges) == read_all(path, spec)
    assert [type(row) for row in read_all(path, spec)] == [SourceRow, SourceRow, RejectedRow, SourceRow]


def test_a_multi_line_field_over_the_record_limit_is_one_rejected_row(write_file):
    # Given a quoted field of 3,000 bytes over short lines, holding what looks like rows
    note = "5,fake\n" * 375
    data = f'id,note\n1,ok\n2,"{note}"\n3,ok\n4,ok\n'.encode()
    path = write_file("over-limit.csv", data)

    # When it is read with a 1 KiB record limit
    items = read_all(path, SourceSpec(format="csv", read_chunk_bytes=64, max_record_bytes=1024))

    # Then that record is one rejected row that says why, and no "5,fake" row is read
    assert [(type(item).__name__, item.position.row) for item in items] == [
        ("SourceRow", 1),
        ("RejectedRow", 2),
        ("SourceRow", 3),
        ("SourceRow", 4),
    ]
    assert (
        bad(items[1]).issues[0].detail.startswith("a field longer than the record limit of 1024 characters")
    )
    assert items[2].position.offset == data.index(b"3,ok")
    assert [good(item).values["id"] for item in (items[0], items[2], items[3])] == ["1", "3", "4"]


def test_an_empty_header_name_is_a_clear_error_naming_the_file(write_file):
    # Given a header with an empty name
    path = write_file("empty-name.csv", b"id,,name\n1,2,3\n")

    # When it is read, Then the error names the file and the column number
    with pytest.raises(SourceError, match=r"empty-name\.csv.*header column 2 has an empty name"):
        read_all(path, CSV)


def test_a_header_with_undecodable_bytes_is_an_error(write_file):
    path = write_file("bad-header.csv", b"id,n\xffme\n1,2\n")

    with pytest.raises(SourceError, match="header has bytes that are not valid utf-8"):
        read_all(path, CSV)


def test_an_empty_file_has_no_rows(write_file):
    # Given an empty file, When it is read, Then nothing is yielded
    assert read_all(write_file("empty.csv", b""), CSV) == []


def test_a_file_without_header_uses_the_configured_columns(write_file):
    # Given a headerless file
    path = write_file("noheader.csv", b"1,Ann\n2,Bob\n")

    # When it is read with columns named in the spec
    items = read_all(path, SourceSpec(format="csv", header=False, columns=("id", "name")))

    # Then the first line is a data row
    assert [(item.position.row, item.position.offset, good(item).values) for item in items] == [
        (1, 0, {"id": "1", "name": "Ann"}),
        (2, 6, {"id": "2", "name": "Bob"}),
    ]


def test_without_a_quote_character_quotes_are_literal(write_file):
    # Given a value with a bare quote, as in 5'10" heights
    path = write_file("height.csv", b"id,height\n1,5'10\"\n2,6'1\"\n")

    # When it is read with quoting off
    items = read_all(path, SourceSpec(format="csv", quotechar=None))

    # Then the quotes stay in the values
    assert [good(item).values["height"] for item in items] == ["5'10\"", "6'1\""]


def test_a_malformed_line_is_rejected_and_reading_goes_on(write_file):
    # Given a line with a bare carriage return inside an unquoted field
    path = write_file("cr.csv", b"id,note\n1,a\rb\n2,ok\n")

    # When it is read
    items = read_all(path, CSV)

    # Then that line is a RejectedRow and the next row keeps its number
    assert isinstance(items[0], RejectedRow)
    assert bad(items[0]).issues[0].reason == "malformed CSV"
    assert (items[1].position.row, good(items[1]).values) == (2, {"id": "2", "note": "ok"})


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13, 64])
def test_tiny_reads_give_the_same_rows_as_large_reads(write_file, chunk):
    # Given a file mixing multi-byte text, quoted newlines, CRLF, blank lines and a ragged row
    data = 'id,note\r\n1,"a\r\nb"\r\n\r\n2,Zoë\r\n3\r\n4,"x ""y"" z"\r\n5,end'.encode()
    path = write_file("mixed.csv", data)

    # When it is read in reads of a few bytes and in one large read
    small = read_all(path, SourceSpec(format="csv", read_chunk_bytes=chunk))
    large = read_all(path, CSV)

    # Then both give the same rows and positions
    assert small == large
    assert [item.position.row for item in large] == [1, 2, 3, 4, 5]


def test_a_line_over_the_record_limit_is_an_error_not_a_memory_blow_up(write_file):
    # Given a line far longer than the configured record limit
    path = write_file("long.csv", b"id,note\n1," + b"x" * 5000 + b"\n2,ok\n")

    # When it is read with a 1 KiB limit, Then it fails with the offset of that line
    with pytest.raises(SourceError, match="byte offset 8"):
        read_all(path, SourceSpec(format="csv", read_chunk_bytes=256, max_record_bytes=1024))


def test_a_field_past_the_field_limit_rejects_its_row_and_reading_goes_on(write_file):
    # Given a 5,000-character quoted field over one line, then a multi-line one, between good rows
    long_note = "x" * 5_000
    long_lines = ("y" * 99 + "\n") * 50
    data = f'id,note\n1,ok\n2,"{long_note}"\n3,"{long_lines}"\n4,ok\n'.encode()
    path = write_file("long-fields.csv", data)

    # When it is read with a field limit of 1,000 characters
    spec = SourceSpec(format="csv", max_field_chars=1_000)
    items = read_all(path, spec)

    # Then each long field's row is one reject that says why, and the rows around them are read
    assert [(type(item).__name__, item.position.row) for item in items] == [
        ("SourceRow", 1),
        ("RejectedRow", 2),
        ("RejectedRow", 3),
        ("SourceRow", 4),
    ]
    for rejected in (bad(items[1]), bad(items[2])):
        assert rejected.issues[0].reason == "field too long"
        assert rejected.issues[0].detail.startswith(
            "a field longer than the limit of 1000 characters (max_field_chars)"
        )
    assert items[3].position.offset == data.index(b"4,ok")
    # And a read resumed after any row yields exactly the rest
    sequential, points = read_with_resume_points(path, spec)
    assert sequential == items
    for done, point in enumerate(points):
        assert read_all(path, spec, resume=point) == items[done:]


def test_the_default_field_limit_is_one_mebi_character(write_file):
    # Given a field of exactly 1 Mi characters and one a character longer
    limit = 1024 * 1024
    data = f'id,note\n1,"{"a" * limit}"\n2,"{"b" * (limit + 1)}"\n3,ok\n'.encode()
    path = write_file("limit.csv", data)

    # When it is read with the defaults
    items = read_all(path, CSV)

    # Then the first is read whole and the second is a reject
    assert good(items[0]).values["note"] == "a" * limit
    assert bad(items[1]).issues[0].reason == "field too long"
    assert good(items[2]).values == {"id": "3", "note": "ok"}
