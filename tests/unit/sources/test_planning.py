"""Byte ranges: aligned on row starts, together they read exactly what a sequential read does."""

from __future__ import annotations

import io
import itertools
import random
from pathlib import Path

import fastavro
import pytest

from cdpbridge.records import RejectedRow
from cdpbridge.sources import (
    ByteRange,
    ResumePoint,
    SourceSpec,
    SourceSpecError,
    open_rows,
    plan_byte_ranges,
)
from tests.unit.sources.conftest import good, read_all, read_ranges, read_with_resume_points


def random_csv(seed: int, rows: int) -> bytes:
    """An RFC 4180 file with every hard case: quoted newlines (also blank ones), doubled quotes,
    delimiters in quotes, CRLF and LF, empty lines, ragged rows, multi-byte text, a BOM, and no
    newline after the last row."""
    generator = random.Random(seed)
    newline_choices = ["\n", "\r\n"]
    pieces = ["\ufeffid,name,note\r\n"]
    for row in range(rows):
        kind = generator.random()
        if kind < 0.05:
            pieces.append(generator.choice(newline_choices))  # an empty line, not a row
            continue
        note = generator.choice(
            [
                "plain",
                '"two\nlines"',
                '"blank\n\nline inside"',
                '"a, b"',
                '"say ""hi"""',
                '"crlf\r\ninside"',
                "Zoë",
                '"ends with newline\n"',
                "",
            ]
        )
        cells = [str(row), generator.choice(["Ann", "Bob", "李"]), note]
        if kind > 0.95:
            cells.append("extra")  # ragged: a RejectedRow, still a row
        pieces.append(",".join(cells) + generator.choice(newline_choices))
    text = "".join(pieces).rstrip("\r\n")
    return text.encode()


def random_malformed_csv(seed: int, rows: int) -> bytes:
    """An RFC 4180 file with rows csv refuses: bare carriage returns in unquoted fields (some
    before a quoted field that runs over lines which look like rows) and quoted fields over the
    record limit used with it (64 bytes), plus blank lines of carriage returns."""
    generator = random.Random(seed)
    pieces = ["id,name,note\n"]
    for row in range(rows):
        cells = [str(row), generator.choice(["Ann", '"Bob"', '"a ""b"""', "", '""'])]
        kind = generator.random()
        if kind < 0.1:
            cells.append("bare\rreturn")
        elif kind < 0.2:
            cells[1] = "bare\rreturn"
            cells.append(f'"{row + 1},fake\n{row + 2},fake"')
        elif kind < 0.25:
            cells.append('"' + "long line\n" * 10 + '"')
        elif kind < 0.3:
            cells.append('"two\r\nlines"')
        else:
            cells.append(generator.choice(["plain", '"a, b"', '"x\n\ny"']))
        pieces.append(",".join(cells) + generator.choice(["\n", "\r\n", "\n\r\r\n"]))
    return "".join(pieces).encode()


def random_jsonl(seed: int, rows: int) -> bytes:
    generator = random.Random(seed)
    lines = []
    for row in range(rows):
        kind = generator.random()
        if kind < 0.1:
            lines.append(generator.choice(["", "   ", "\t", "\r"]))
        elif kind < 0.15:
            lines.append('{"broken": ')
        else:
            lines.append(f'{{"id": {row}, "name": "Zoë {row}"}}')
    return "\n".join(lines).encode()


def assert_ranges_partition_the_file(path: Path, spec: SourceSpec, ranges: list[ByteRange]) -> None:
    size = path.stat().st_size
    assert ranges[0].start == 0
    assert ranges[-1].end == size
    for before, after in itertools.pairwise(ranges):
        assert before.end == after.start


def assert_ranges_read_like_the_whole_file(path: Path, spec: SourceSpec, ranges: list[ByteRange]) -> None:
    whole = read_all(path, spec)
    parts = [read_all(path, spec, byte_range=byte_range) for byte_range in ranges]
    # Every range holds rows, starting with the row number the planner announced
    for byte_range, part in zip(ranges, parts, strict=True):
        assert part, f"empty range {byte_range}"
        assert part[0].position.row == byte_range.first_row
        end = byte_range.end if byte_range.end is not None else path.stat().st_size
        assert all(byte_range.start <= (item.position.offset or 0) < end for item in part)
    # And together they are the sequential read: same rows, same positions, none twice
    assert [item for part in parts for item in part] == whole


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("target", [1, 17, 64, 250, 1000])
def test_csv_ranges_follow_quote_parity_and_match_a_sequential_read(tmp_path, seed, target):
    # Given a CSV full of quoted newlines, empty lines and ragged rows
    path = tmp_path / "users.csv"
    path.write_bytes(random_csv(seed, 120))
    # (small reads, so that quoted fields and lines straddle the planner's reads too)
    spec = SourceSpec(format="csv", read_chunk_bytes=97)

    # When it is split into ranges of about ``target`` bytes
    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)

    # Then the ranges are contiguous and read back exactly like the whole file
    assert len(ranges) > 1
    assert_ranges_partition_the_file(path, spec, ranges)
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("target", [1, 50, 400])
def test_csv_ranges_agree_with_the_reader_around_malformed_records(tmp_path, seed, target):
    # Given a CSV with records csv refuses, some of them before quoted lines that look like rows
    path = tmp_path / "malformed.csv"
    path.write_bytes(random_malformed_csv(seed, 80))
    spec = SourceSpec(format="csv", read_chunk_bytes=89, max_record_bytes=64)
    assert any(isinstance(item, RejectedRow) for item in read_all(path, spec))

    # When it is split
    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)

    # Then every range starts where the reader's rows start and numbers them the same
    assert len(ranges) > 1
    assert_ranges_partition_the_file(path, spec, ranges)
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


def test_a_quoted_field_longer_than_csv_default_limit_is_read_at_the_start_of_a_later_range(tmp_path):
    # Given a quoted field of 200,000 characters over many lines, in the second half of a file
    note = ("y" * 99 + "\n") * 2000
    data = b"id,note\n" + b"".join(b"%d,short\n" % n for n in range(1, 2000))
    data += f'2000,"{note}"\n2001,last\n'.encode()
    path = tmp_path / "long-later.csv"
    path.write_bytes(data)
    spec = SourceSpec(format="csv")

    # When the file is split so that a range starts at the row holding the long field
    ranges = plan_byte_ranges(str(path), spec, target_bytes=data.index(b"2000,") - 1)
    assert ranges[1].start == data.index(b"2000,")

    # Then that range reads the field whole, as a whole-file read does
    second = read_all(path, spec, byte_range=ranges[1])
    assert good(second[0]).values == {"id": "2000", "note": note}
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


def test_resuming_after_every_row_of_a_malformed_csv_yields_exactly_the_rest(tmp_path):
    path = tmp_path / "malformed.csv"
    path.write_bytes(random_malformed_csv(4, 40))
    spec = SourceSpec(format="csv", read_chunk_bytes=53, max_record_bytes=64)
    items, points = read_with_resume_points(path, spec)

    for done, point in enumerate(points):
        assert read_all(path, spec, resume=point) == items[done:], f"resume after {done} rows"


def test_a_csv_with_a_quote_that_does_not_open_a_field_is_not_split(tmp_path):
    # Given 19 rows, the first with a bare inch mark and a later one with a quoted newline
    rows = [b'1,TV 55" screen'] + [b"%d,item%d" % (n, n) for n in range(2, 13)]
    rows += [b'13,"multi\nline"'] + [b"%d,item%d" % (n, n) for n in range(14, 20)]
    data = b"id,product\n" + b"\n".join(rows) + b"\n"
    path = tmp_path / "inches.csv"
    path.write_bytes(data)
    spec = SourceSpec(format="csv")

    # When it is planned in ranges far smaller than the file
    ranges = plan_byte_ranges(str(path), spec, target_bytes=40)

    # Then it is one range, which reads rows 1 to 19 as a whole-file read does
    assert ranges == [ByteRange(0, len(data), 1)]
    items = read_all(path, spec, byte_range=ranges[0])
    assert [(item.position.row, good(item).values["id"]) for item in items] == [
        (n, str(n)) for n in range(1, 20)
    ]
    assert good(items[0]).values["product"] == 'TV 55" screen'


@pytest.mark.parametrize(
    ("line", "splittable"),
    [
        (b'1,"a, b"', True),
        (b'1,"say ""hi"""', True),
        (b'"1",""', True),
        (b'1,"two\nlines",x', True),
        (b'1,"ab"c', True),  # csv takes the "c" into the field; the parity still ends the row
        (b'1,TV 55" screen', False),
        (b"1,5'10\"", False),
        (b'1, "spaced"', False),  # the space makes the quote a literal character
        (b'1,"ab"c"d"', False),
        (b'1,a"b"c', False),
    ],
)
def test_only_files_whose_quotes_all_open_fields_are_split(tmp_path, line, splittable):
    # Given the line among many ordinary rows, near the end of the file (seen after several reads)
    data = b"id,v\n" + b"".join(b"%d,x\n" % n for n in range(50)) + line + b"\n2,y\n"
    path = tmp_path / "quotes.csv"
    path.write_bytes(data)
    spec = SourceSpec(format="csv", read_chunk_bytes=64)

    # When it is planned
    ranges = plan_byte_ranges(str(path), spec, target_bytes=100)

    # Then it is split only when quote parity finds the reader's rows, and reads like the whole file
    assert (len(ranges) > 1) is splittable
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


@pytest.mark.parametrize("target", [1, 7])
def test_a_line_of_carriage_returns_is_an_empty_line_not_a_row(tmp_path, target):
    # Given lines of nothing but carriage returns, which csv.reader skips as empty
    data = b"id,v\n1,a\r\n\r\r\n2,b\n\r\r\r\n3,c\n"
    path = tmp_path / "returns.csv"
    path.write_bytes(data)
    spec = SourceSpec(format="csv")

    # When it is split, Then no range is empty and the row numbers are those of a sequential read
    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)
    assert [byte_range.first_row for byte_range in ranges] == [1, 2, 3]
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


@pytest.mark.parametrize("target", [1, 40, 300])
def test_tsv_and_unquoted_csv_split_on_any_newline(tmp_path, target):
    data = b'a\tb\n1\t"x\n2\t5\'10"\n\n3\t4'
    path = tmp_path / "plain.tsv"
    path.write_bytes(data)
    spec = SourceSpec(format="tsv", quotechar=None)

    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)

    assert_ranges_partition_the_file(path, spec, ranges)
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("target", [1, 33, 500])
def test_json_lines_ranges_match_a_sequential_read(tmp_path, seed, target):
    # Given JSON lines with blank, whitespace-only and broken lines
    path = tmp_path / "users.jsonl"
    path.write_bytes(random_jsonl(seed, 150))
    spec = SourceSpec(format="jsonl", read_chunk_bytes=61)

    # When it is split
    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)

    # Then the ranges read back exactly like the whole file
    assert len(ranges) > 1
    assert_ranges_partition_the_file(path, spec, ranges)
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


@pytest.mark.parametrize("target", [1, 300, 2000])
def test_avro_ranges_start_on_blocks_and_match_a_sequential_read(tmp_path, target):
    # Given an Avro file of many blocks
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}],
        }
    )
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [{"n": n, "s": "x" * (n % 13)} for n in range(300)], sync_interval=150)
    path = tmp_path / "events.avro"
    path.write_bytes(buffer.getvalue())
    block_offsets = {block.offset for block in fastavro.block_reader(io.BytesIO(buffer.getvalue()))}
    spec = SourceSpec(format="avro")

    # When it is split
    ranges = plan_byte_ranges(str(path), spec, target_bytes=target)

    # Then every range after the first starts on a block, and together they read the whole file
    assert len(ranges) > 1
    assert {byte_range.start for byte_range in ranges[1:]} <= block_offsets
    assert_ranges_partition_the_file(path, spec, ranges)
    assert_ranges_read_like_the_whole_file(path, spec, ranges)


def test_a_small_file_is_one_range(tmp_path):
    path = tmp_path / "small.csv"
    path.write_bytes(b"id\n1\n2\n")

    assert plan_byte_ranges(str(path), SourceSpec(format="csv"), target_bytes=1 << 20) == [ByteRange(0, 7, 1)]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("wide.csv", b"\xff\xfe" + ("id,name\n" + "1,Zoë\n" * 400).encode("utf-16-le")),
        ("mac.csv", b"id,name\r" + b"1,Zoe\r" * 400),
        ("mac.jsonl", b'{"id": 1}\r' * 400),
    ],
)
def test_files_the_readers_see_rewritten_are_planned_as_one_whole_range(tmp_path, name, data):
    # Given a UTF-16 file (read re-encoded as UTF-8) or one with CR line ends (read as LF)
    path = tmp_path / name
    path.write_bytes(data)
    spec = SourceSpec(format=name.rsplit(".", 1)[1])

    # When it is planned in ranges far smaller than the file
    ranges = plan_byte_ranges(str(path), spec, target_bytes=256)

    # Then it is one range over the whole file, which reads every row
    assert ranges == [ByteRange(0, None, 1)]
    assert len(read_ranges(path, spec, ranges)) == 400


def test_no_range_is_left_empty_when_rows_run_out(tmp_path):
    # Given a file whose only row is followed by many empty lines
    path = tmp_path / "sparse.csv"
    path.write_bytes(b"id\n1\n" + b"\n" * 200)

    # When it is split finely, Then a single range holds the one row
    assert plan_byte_ranges(str(path), SourceSpec(format="csv"), target_bytes=10) == [ByteRange(0, 205, 1)]


def test_resuming_inside_a_range_stays_inside_that_range(tmp_path):
    # Given the second range of a split file, read with a resume point after each row
    path = tmp_path / "users.csv"
    path.write_bytes(random_csv(9, 60))
    spec = SourceSpec(format="csv")
    ranges = plan_byte_ranges(str(path), spec, target_bytes=200)
    second = ranges[1]
    items = read_all(path, spec, byte_range=second)

    points: list[ResumePoint] = []
    with open_rows(str(path), spec, byte_range=second) as rows:
        for _ in rows:
            points.append(rows.resume_point())

    # When each point is resumed within the range
    for done, point in enumerate(points, start=1):
        rest = read_all(path, spec, byte_range=second, resume=point)

        # Then exactly the rest of the range comes out
        assert rest == items[done:]


def test_the_first_resume_point_of_a_range_is_its_start(tmp_path):
    path = tmp_path / "users.jsonl"
    path.write_bytes(random_jsonl(7, 40))
    spec = SourceSpec(format="jsonl")
    second = plan_byte_ranges(str(path), spec, target_bytes=100)[1]
    with open_rows(str(path), spec, byte_range=second) as rows:
        assert rows.resume_point() == ResumePoint(row=second.first_row, offset=second.start)


def test_whole_file_reads_are_untouched_by_planning(tmp_path):
    # The union check above relies on read_with_resume_points agreeing with read_all
    path = tmp_path / "users.csv"
    path.write_bytes(random_csv(3, 30))
    items, _ = read_with_resume_points(path, SourceSpec(format="csv"))
    assert items == read_all(path, SourceSpec(format="csv"))
    assert read_ranges(path, SourceSpec(format="csv"), [ByteRange(0, None, 1)]) == items


def test_a_non_positive_target_is_refused(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(b"id\n1\n")

    with pytest.raises(SourceSpecError, match="target_bytes must be positive"):
        plan_byte_ranges(str(path), SourceSpec(format="csv"), target_bytes=0)
