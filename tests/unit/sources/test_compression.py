"""gzip and zip are undone transparently; positions are offsets in the decompressed stream."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import pytest

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import (
    ByteRange,
    Compression,
    SourceError,
    SourceSpec,
    SourceSpecError,
    open_rows,
    plan_byte_ranges,
)
from cdpbridge.sources.opening import RATIO_CHECKED_FROM_BYTES, open_source
from tests.unit.sources.bombs import MIB, gzip_bomb, zip_bomb
from tests.unit.sources.conftest import good, read_all

CSV_DATA = b'\xef\xbb\xbfid,note\n1,"multi\nline"\n2,Zo\xc3\xab\n3,x\n'
CSV = SourceSpec(format="csv")


def zip_bytes(members: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for directory in directories:
            archive.writestr(zipfile.ZipInfo(directory), b"")
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_gzip_is_read_transparently_with_decompressed_offsets(write_file):
    # Given the same CSV plain and gzipped
    plain = write_file("users.csv", CSV_DATA)
    packed = write_file("users.csv.gz", gzip.compress(CSV_DATA))

    # When both are read
    from_plain = read_all(plain, CSV)
    from_gzip = read_all(packed, CSV)

    # Then the rows and positions agree (offsets are in the decompressed stream)
    assert [(i.position.row, i.position.offset, good(i).values) for i in from_gzip] == [
        (i.position.row, i.position.offset, good(i).values) for i in from_plain
    ]
    assert len(from_gzip) == 3


def test_gzip_is_recognised_by_its_magic_bytes_whatever_the_name(write_file):
    # Given gzipped JSON lines under a name without .gz, and a plain file named .gz
    hidden = write_file("export-0001", gzip.compress(b'{"a": 1}\n{"a": 2}\n'))
    misnamed = write_file("plain.jsonl.gz", b'{"a": 3}\n')

    # When they are read with compression auto
    spec = SourceSpec(format="jsonl")

    # Then the content decides
    assert [good(item).values for item in read_all(hidden, spec)] == [{"a": 1}, {"a": 2}]
    assert [good(item).values for item in read_all(misnamed, spec)] == [{"a": 3}]


def test_a_declared_compression_the_content_contradicts_is_an_error(write_file):
    path = write_file("users.csv", CSV_DATA)

    with pytest.raises(SourceError, match=r"users\.csv.*says gzip but the file content is none"):
        read_all(path, SourceSpec(format="csv", compression=Compression.GZIP))


def test_a_zip_with_one_member_reads_that_member(write_file):
    # Given a zip holding one CSV and a directory entry
    path = write_file("users.zip", zip_bytes({"export/users.csv": CSV_DATA}, directories=("export/",)))

    # When it is read
    items = read_all(path, CSV)

    # Then its rows come out with the location as source
    assert [good(item).values["id"] for item in items] == ["1", "2", "3"]
    assert items[0].position.source == str(path)


def test_a_zip_with_several_members_reads_them_in_name_order_numbering_rows_throughout(write_file):
    # Given a zip whose members were added out of order, plus macOS metadata
    members = {
        "part-2.jsonl": b'{"n": 3}\n',
        "part-1.jsonl": b'{"n": 1}\n\n{"n": 2}\n',
        "__MACOSX/._part-1.jsonl": b"\x00\x05\x16\x07",
    }
    path = write_file("segment-export.zip", zip_bytes(members))

    # When it is read
    items = read_all(path, SourceSpec(format="jsonl"))

    # Then members come in name order, rows are numbered across members, and each row names its
    # member with offsets inside that member
    assert [good(item).values["n"] for item in items] == [1, 2, 3]
    assert [item.position.row for item in items] == [1, 2, 3]
    assert [item.position.source for item in items] == [
        f"{path}!part-1.jsonl",
        f"{path}!part-1.jsonl",
        f"{path}!part-2.jsonl",
    ]
    assert [item.position.offset for item in items] == [0, 10, 0]


def test_each_csv_member_of_a_zip_has_its_own_header(write_file):
    members = {"a.csv": b"id,name\n1,Ann\n", "b.csv": b"name,id\nBob,2\n"}
    path = write_file("two.zip", zip_bytes(members))

    items = read_all(path, CSV)

    assert [good(item).values for item in items] == [{"id": "1", "name": "Ann"}, {"id": "2", "name": "Bob"}]


def test_an_empty_zip_and_a_broken_zip_are_clear_errors(write_file):
    empty = write_file("empty.zip", zip_bytes({}))
    broken = write_file("broken.zip", zip_bytes({"a.csv": CSV_DATA})[:40])

    with pytest.raises(SourceError, match="holds no files"):
        read_all(empty, CSV)
    with pytest.raises(SourceError, match=r"broken\.zip.*not a readable zip archive"):
        read_all(broken, CSV)


def test_a_truncated_gzip_is_an_error_after_the_rows_it_could_read(write_file):
    # Given a gzip cut in the middle of a long file
    data = b"id\n" + b"".join(f"{i}\n".encode() for i in range(20000))
    path = write_file("cut.csv.gz", gzip.compress(data)[:-40])

    # When it is read in small reads
    seen: list[SourceRow | RejectedRow] = []
    spec = SourceSpec(format="csv", read_chunk_bytes=1024)
    with pytest.raises(SourceError, match=r"cut\.csv\.gz.*cannot read"), open_rows(str(path), spec) as rows:
        seen.extend(rows)

    # Then the rows read before the cut were yielded first
    assert len(seen) > 1000


def test_compressed_files_and_json_arrays_are_planned_as_one_whole_range(write_file):
    # Given a large gzip CSV and a JSON array
    data = b"id\n" + b"".join(f"{i}\n".encode() for i in range(5000))
    packed = write_file("big.csv.gz", gzip.compress(data))
    array = write_file("big.json", b"[" + b",".join(b'{"a": 1}' for _ in range(500)) + b"]")

    # When ranges are planned with a small target
    # Then each is a single range over the whole file
    assert plan_byte_ranges(str(packed), CSV, target_bytes=100) == [ByteRange(0, None, 1)]
    assert plan_byte_ranges(str(array), SourceSpec(format="json"), target_bytes=100) == [
        ByteRange(0, None, 1)
    ]


def test_a_partial_byte_range_of_a_compressed_file_is_refused(write_file):
    path = write_file("users.csv.gz", gzip.compress(CSV_DATA))

    with pytest.raises(SourceSpecError, match="cannot be read from a gzip"):
        open_rows(str(path), CSV, byte_range=ByteRange(10, 20, 2))
    # The planner's whole-file range is accepted
    assert len(read_all(path, CSV, byte_range=ByteRange(0, None, 1))) == 3


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to count open files")
def test_closing_the_stream_closes_the_file_even_mid_read(write_file):
    # Given a zip being read
    path = write_file("users.zip", zip_bytes({"users.csv": CSV_DATA}))
    before = _open_descriptors()
    rows = open_rows(str(path), CSV)
    first = next(rows)

    # When the stream is closed after one row
    rows.close()

    # Then the file is closed again
    assert isinstance(first, SourceRow)
    assert _open_descriptors() == before


# 1 MiB of identical 128-byte rows: deflate shrinks it about 1,000 times.
ROWS_CHUNK = b"7," + b"a" * 125 + b"\n"
ROWS_CHUNK *= MIB // len(ROWS_CHUNK)
ROWS_PER_CHUNK = MIB // 128
# 1 MiB of 16 rows of spaces: deflate's best case, about 1,000 times (the ratio of real bombs).
BOMB_CHUNK = (b"7," + b" " * (64 * 1024 - 3) + b"\n") * 16


def _stopped_at(path: Path, spec: SourceSpec) -> tuple[int, SourceError]:
    """The rows read before the read failed, and the failure."""
    rows = 0
    with pytest.raises(SourceError) as failure, open_rows(str(path), spec) as stream:
        for item in stream:
            assert isinstance(item, SourceRow)
            rows += 1
    return rows, failure.value


def test_a_gzip_bomb_stops_at_the_ratio_limit_after_the_same_work_whatever_its_size(write_file):
    # Given two gzip files of valid rows that decompress to 1 GiB and 8 GiB from 1 MB and 9 MB
    small = write_file("bomb.csv.gz", gzip_bomb(b"id,name\n", BOMB_CHUNK, 1024))
    large = write_file("bigger-bomb.csv.gz", gzip_bomb(b"id,name\n", BOMB_CHUNK, 8 * 1024))

    # When each is read with the default limits
    outcomes = [_stopped_at(path, CSV) for path in (small, large)]

    # Then the good rows before the limit go through, and each read stops with an error naming the
    # file and the limit, soon after the ratio is first judged and at the same point for both, so
    # the work does not grow with the bomb
    (small_rows, small_error), (large_rows, large_error) = outcomes
    assert small_rows == large_rows > 0
    assert (small_error.source, large_error.source) == (str(small), str(large))
    assert "max_compression_ratio of 200" in small_error.reason
    assert small_error.offset == large_error.offset
    assert small_error.offset is not None
    assert RATIO_CHECKED_FROM_BYTES < small_error.offset <= 4 * RATIO_CHECKED_FROM_BYTES


def test_a_zip_bomb_member_stops_at_the_ratio_limit_with_an_error_naming_it(write_file):
    # Given a zip archive whose one member decompresses to 1 GiB of zeros (no line end at all)
    path = write_file("bomb.zip", zip_bomb({"users.csv": (b"id,name\n", b"\0" * MIB, 1024)}))

    # When it is read, Then it stops early with an error naming the file and the limit
    rows, error = _stopped_at(path, CSV)
    assert rows == 0
    assert error.source == str(path)
    assert "max_compression_ratio of 200" in error.reason
    assert error.offset is not None
    assert error.offset <= 4 * RATIO_CHECKED_FROM_BYTES


def test_a_zip_bomb_in_a_member_named_among_several_names_that_member(write_file):
    # Given an archive of a sound member and a bomb
    members = {"a.csv": (b"id,name\n1,x\n", b"", 0), "b.csv": (b"id,name\n", BOMB_CHUNK, 512)}
    path = write_file("parts.zip", zip_bomb(members))

    # When it is read, Then the sound member's row goes through and the error names the bomb member
    rows, error = _stopped_at(path, CSV)
    assert rows > 1
    assert error.source == f"{path}!b.csv"
    assert "max_compression_ratio" in error.reason


def test_the_decompressed_size_limit_stops_a_read_with_an_error_naming_the_file(write_file):
    # Given an ordinary gzipped CSV of 2 MiB, read with a 1 MiB limit on decompressed bytes
    data = b"id,name\n" + b"".join(b"%d,name %d\n" % (n, n * 7919) for n in range(150_000))
    assert len(data) > 2 * MIB
    path = write_file("users.csv.gz", gzip.compress(data))
    spec = SourceSpec(format="csv", max_decompressed_bytes=MIB)

    # When it is read, Then the rows of the first MiB go through and the error says which limit
    rows, error = _stopped_at(path, spec)
    assert 0 < rows < 150_000
    assert error.source == str(path)
    assert f"more than {MIB} bytes, the limit max_decompressed_bytes sets" in error.reason


def test_a_small_very_repetitive_file_is_not_taken_for_a_bomb(write_file):
    # Given a 4 MiB gzip of identical rows: a ratio far above the limit, but under the size from
    # which the ratio is judged
    path = write_file("same.csv.gz", gzip_bomb(b"id,name\n", ROWS_CHUNK, 4))

    # When it is read, Then every row is read
    assert len(read_all(path, CSV)) == 4 * ROWS_PER_CHUNK


def test_a_higher_ratio_limit_lets_a_repetitive_file_through(write_file):
    # Given 40 MiB of identical rows in a 40 KB gzip, read with the ratio limit raised
    path = write_file("same.csv.gz", gzip_bomb(b"id,name\n", ROWS_CHUNK, 40))
    spec = SourceSpec(format="csv", max_compression_ratio=100_000)

    # When it is read, Then it is read to the end
    with open_rows(str(path), spec) as rows:
        assert sum(1 for _ in rows) == 40 * ROWS_PER_CHUNK


def test_a_seek_back_does_not_count_compressed_bytes_twice(write_file):
    # Given a gzip bomb, and the readers' way of looking at a file's first bytes and going back
    path = write_file("bomb.csv.gz", gzip_bomb(b"id,name\n", BOMB_CHUNK, 1024))

    def failure_offset(look_first: bool) -> int | None:
        opened = open_source(str(path), CSV)
        try:
            stream = opened.members[0].open()
            if look_first:
                stream.read(64 * 1024)
                stream.seek(0)
            with pytest.raises(SourceError) as failure:
                while stream.read(MIB):
                    pass
            return failure.value.offset
        finally:
            opened.close()

    # When it is read straight through, and after a look at its head
    # Then the ratio stops both reads at the same point: the compressed bytes read again after the
    # seek back count from there (counted twice, they made the ratio look half as high)
    assert failure_offset(look_first=True) == failure_offset(look_first=False)


def test_a_zip_whose_directory_claims_more_compressed_bytes_than_the_archive_holds_is_an_error(write_file):
    # Given an archive whose central directory claims far more compressed bytes for its member than
    # the archive holds (found by the fuzz suite: read whole it happened to read, resumed it failed)
    data = bytearray(zip_bytes({"users.csv": b"id,name\n" + b"1,x\n" * 1000}))
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 20 : directory + 24] = (1 << 29).to_bytes(4, "little")
    path = write_file("corrupt.zip", bytes(data))

    # When it is opened, Then the error names the file and the member, before any row is read
    with pytest.raises(SourceError, match=r"corrupt\.zip.*'users\.csv' claims 536870912 compressed bytes"):
        open_rows(str(path), CSV)
