"""JSON lines and streamed JSON arrays: types kept, bad lines rejected, arrays never loaded whole."""

from __future__ import annotations

import io

import orjson
import pytest

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import SourceError, SourceSpec, open_rows
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.jsonarray import MAX_SCANNED_DEPTH, JsonArrayReader
from tests.unit.sources.conftest import bad, good, read_all, read_with_resume_points

JSONL = SourceSpec(format="jsonl")
JSON = SourceSpec(format="json")


# --- JSON lines -------------------------------------------------------------------------------


def test_json_lines_keep_json_types(write_file):
    # Given objects with numbers, booleans, null, arrays and nested objects
    data = b'{"id": 1, "vip": true, "score": 2.5, "tags": ["a"], "address": {"zip": "02134"}, "gone": null}\n'
    path = write_file("users.jsonl", data)

    # When it is read
    items = read_all(path, JSONL)

    # Then the values keep their JSON types
    assert good(items[0]).values == {
        "id": 1,
        "vip": True,
        "score": 2.5,
        "tags": ["a"],
        "address": {"zip": "02134"},
        "gone": None,
    }
    assert (items[0].position.row, items[0].position.offset) == (1, 0)


def test_blank_lines_are_skipped_and_do_not_count_as_rows(write_file):
    # Given blank and whitespace-only lines between objects, CRLF endings and no final newline
    data = b'{"a": 1}\r\n\r\n   \n\t\n{"a": 2}\n\n{"a": 3}'
    path = write_file("blank.jsonl", data)

    # When it is read
    items = read_all(path, JSONL)

    # Then rows count objects only, and offsets are where each object's line starts
    assert [(good(item).values["a"], item.position.row, item.position.offset) for item in items] == [
        (1, 1, 0),
        (2, 2, data.index(b'{"a": 2}')),
        (3, 3, data.index(b'{"a": 3}')),
    ]


def test_invalid_json_and_non_objects_are_rejected_with_their_row_numbers(write_file):
    # Given a line of broken JSON, an array, a string and NaN between good lines
    data = b'{"a": 1}\n{"a": \n[1, 2]\n"text"\n{"a": NaN}\n{"a": 2}\n'
    path = write_file("bad.jsonl", data)

    # When it is read
    items = read_all(path, JSONL)

    # Then each bad line is a RejectedRow with its row number and a reason, and reading goes on
    assert [type(item).__name__ for item in items] == [
        "SourceRow",
        "RejectedRow",
        "RejectedRow",
        "RejectedRow",
        "RejectedRow",
        "SourceRow",
    ]
    assert [item.position.row for item in items] == [1, 2, 3, 4, 5, 6]
    assert bad(items[1]).issues[0].reason == "invalid JSON"
    assert bad(items[2]).issues[0].reason == "line is a JSON array, not an object"
    assert bad(items[3]).issues[0].reason == "line is a JSON string, not an object"
    assert bad(items[4]).issues[0].reason == "invalid JSON"
    assert good(items[5]).values == {"a": 2}


def test_undecodable_bytes_in_a_line_reject_it_with_the_byte_offset(write_file):
    # Given a line holding a byte that is not UTF-8
    data = b'{"a": 1}\n{"a": "x\xfey"}\n{"a": 3}\n'
    path = write_file("bytes.jsonl", data)

    # When it is read
    items = read_all(path, JSONL)

    # Then the line is rejected naming the offset of the bad byte, and the next line is read
    assert isinstance(items[1], RejectedRow)
    assert bad(items[1]).issues[0].reason == "undecodable bytes"
    assert f"byte offset {data.index(b'\xfe')}" in bad(items[1]).issues[0].detail
    assert good(items[2]).values == {"a": 3}


def test_json_lines_with_a_bom_and_another_encoding(write_file):
    # Given a BOM-prefixed UTF-8 file and a Latin-1 file
    utf8 = write_file("bom.jsonl", '\ufeff{"name": "Zoë"}\n'.encode())
    latin = write_file("latin.jsonl", '{"name": "Zoë"}\n{"name": "Ann"}\n'.encode("latin-1"))

    # When both are read
    from_utf8 = read_all(utf8, JSONL)
    from_latin = read_all(latin, SourceSpec(format="jsonl", encoding="latin-1"))

    # Then the BOM is skipped (but counted in offsets) and Latin-1 text is decoded
    assert (good(from_utf8[0]).values, from_utf8[0].position.offset) == ({"name": "Zoë"}, 3)
    assert [good(item).values["name"] for item in from_latin] == ["Zoë", "Ann"]
    assert from_latin[1].position.offset == len('{"name": "Zoë"}\n'.encode("latin-1"))


@pytest.mark.parametrize(("mark", "encoding"), [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_json_lines_and_arrays_in_utf16_with_a_byte_order_mark_are_decoded(write_file, mark, encoding):
    # Given JSON lines and a JSON array saved as UTF-16 with its BOM
    records = [{"id": 1, "name": "Zoë"}, {"id": 2, "name": "山田 😀"}]
    lines = "\n".join(orjson.dumps(record).decode() for record in records) + "\n"
    array = orjson.dumps(records, option=orjson.OPT_INDENT_2).decode()
    jsonl = write_file("users.jsonl", mark + lines.encode(encoding))
    json_array = write_file("users.json", mark + array.encode(encoding))

    # When they are read with the default specs, Then their values are those of the records
    assert [good(item).values for item in read_all(jsonl, JSONL)] == records
    assert [good(item).values for item in read_all(json_array, JSON)] == records


def test_json_lines_ending_in_cr_alone_are_read_line_by_line(write_file):
    # Given JSON lines separated by CR alone, a blank one among them
    path = write_file("users.jsonl", b'{"id": 1}\r{"id": 2}\r\r{"id": 3}\r')

    # When they are read, Then each line is a row at its own offset
    items = read_all(path, JSONL)
    assert [good(item).values for item in items] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [item.position.offset for item in items] == [0, 10, 21]


def test_a_line_over_the_record_limit_is_rejected_and_reading_goes_on(write_file):
    # Given a line far longer than the record limit between short lines
    long_line = orjson.dumps({"blob": "x" * 4000})
    data = b'{"a": 1}\n' + long_line + b'\n{"a": 2}\n'
    path = write_file("long.jsonl", data)

    # When it is read with a 1 KiB limit and small reads
    items = read_all(path, SourceSpec(format="jsonl", read_chunk_bytes=128, max_record_bytes=1024))

    # Then the long line is one RejectedRow and the following line keeps its place
    assert [type(item).__name__ for item in items] == ["SourceRow", "RejectedRow", "SourceRow"]
    assert bad(items[1]).issues[0].reason == "line too long"
    assert (items[2].position.row, items[2].position.offset) == (3, data.index(b'{"a": 2}'))


# --- JSON arrays ------------------------------------------------------------------------------


def test_a_json_array_yields_one_row_per_element_with_byte_offsets(write_file):
    # Given a pretty-printed array of objects with multi-byte text
    data = '[\n  {"name": "Zoë", "n": 1},\n  {"name": "Ann", "tags": [1, {"x": null}]}\n]\n'.encode()
    path = write_file("users.json", data)

    # When it is read
    items = read_all(path, JSON)

    # Then each element is a row whose offset is its opening brace
    assert [good(item).values for item in items] == [
        {"name": "Zoë", "n": 1},
        {"name": "Ann", "tags": [1, {"x": None}]},
    ]
    assert [item.position.offset for item in items] == [4, data.index(b'{"name": "Ann"')]
    assert [item.position.row for item in items] == [1, 2]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16])
def test_an_array_read_in_chunks_smaller_than_one_element_gives_the_same_rows(write_file, chunk):
    # Given an array whose elements are longer than a read, with numbers and escapes at every cut
    elements = [
        {"id": i, "amount": 12345.678 * i, "name": f"Zoë \u00e9 \\ {i}", "ok": i % 2 == 0} for i in range(30)
    ]
    data = b"\xef\xbb\xbf[" + b",\n".join(orjson.dumps(element) for element in elements) + b"]"
    path = write_file("chunked.json", data)

    # When it is read in tiny chunks and in one large read
    small = read_all(path, SourceSpec(format="json", read_chunk_bytes=chunk))
    large = read_all(path, JSON)

    # Then the rows and positions are identical and match the source
    assert small == large
    assert [good(item).values for item in large] == elements
    assert large[0].position.offset == 4


def test_an_array_is_streamed_not_loaded_whole():
    # Given a large array on a stream that records the largest read made from it
    elements = [orjson.dumps({"id": i, "pad": "x" * 50}) for i in range(5000)]
    data = b"[" + b",".join(elements) + b"]"
    largest_read = 0

    class TrackingStream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            nonlocal largest_read
            chunk = super().read(size)
            largest_read = max(largest_read, len(chunk))
            return chunk

    stream = TrackingStream(data)
    spec = SourceSpec(format="json", read_chunk_bytes=1024)
    rows = iter(JsonArrayReader(stream, spec, "mem.json", ReadCursor()).rows(ReadWindow()))

    # When the first row is taken
    first = next(rows)

    # Then only about one read of the stream was consumed
    assert good(first).values == {"id": 0, "pad": "x" * 50}
    assert stream.tell() <= 2 * 1024
    # And the rest streams through in reads no larger than a chunk
    assert sum(1 for _ in rows) == 4999
    assert largest_read <= 1024


def test_non_object_elements_are_rejected_and_the_array_goes_on(write_file):
    # Given an array mixing objects, a number, a string and an array
    path = write_file("mixed.json", b'[{"a": 1}, 5, "x", [1], {"a": 2}]')

    # When it is read
    items = read_all(path, JSON)

    # Then the non-objects are RejectedRows with their row numbers
    assert [type(item).__name__ for item in items] == [
        "SourceRow",
        "RejectedRow",
        "RejectedRow",
        "RejectedRow",
        "SourceRow",
    ]
    assert bad(items[1]).issues[0].reason == "array element is a JSON number, not an object"
    assert items[4].position.row == 5


def test_an_element_with_undecodable_bytes_is_rejected_with_the_byte_offset(write_file):
    # Given an element whose string holds a byte that is not UTF-8
    data = b'[{"a": "ok"}, {"a": "b\xffd"}, {"a": "\xc3\xa9"}]'
    path = write_file("bytes.json", data)

    # When it is read
    items = read_all(path, SourceSpec(format="json", read_chunk_bytes=5))

    # Then that element is rejected naming the bad byte, and the others are read
    assert isinstance(items[1], RejectedRow)
    assert bad(items[1]).issues[0].reason == "undecodable bytes"
    assert f"byte offset {data.index(b'\xff')}" in bad(items[1]).issues[0].detail
    assert good(items[2]).values == {"a": "é"}
    assert items[2].position.offset == data.rindex(b"{")


def test_an_unpaired_surrogate_escape_is_rejected(write_file):
    # Given an element with a lone surrogate escape and one with a proper pair
    path = write_file("surrogate.json", b'[{"a": "\\ud800"}, {"a": "\\ud83d\\ude00"}]')

    # When it is read
    items = read_all(path, JSON)

    # Then the lone surrogate (which no encoder accepts) is a reject and the pair decodes
    assert isinstance(items[0], RejectedRow)
    assert good(items[1]).values == {"a": "\U0001f600"}


@pytest.mark.parametrize(
    ("element", "detail"),
    [
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": 1e400}', "a number out of the range of a double"),
        (b'{"a": "tab\there"}', "Invalid control character at byte offset {tab}"),
        (b'{"a": 1 x}', "Expecting ',' delimiter at byte offset {x}"),
        # Brackets, separators and an escaped quote inside strings do not end the element early
        (b'{"a": "]}, [\\"{", "b": [1, {"c": "\\\\"}] x}', "Expecting ',' delimiter at byte offset {x}"),
        (b"", "no value between two separators (an extra ',')"),
    ],
)
def test_a_refused_element_is_rejected_and_the_array_goes_on(write_file, element, detail):
    # Given an array with one element the parser refuses between good ones
    data = b'[{"a": 1}, {"a": 2},\n ' + element + b' , {"a": 4}, {"a": 5}]'
    path = write_file("one-bad.json", data)

    # When it is read, in one read and in reads of a few bytes
    items = read_all(path, JSON)
    assert read_all(path, SourceSpec(format="json", read_chunk_bytes=3)) == items

    # Then that element alone is a rejected row saying why, and the next elements are read
    assert [(type(item).__name__, item.position.row) for item in items] == [
        ("SourceRow", 1),
        ("SourceRow", 2),
        ("RejectedRow", 3),
        ("SourceRow", 4),
        ("SourceRow", 5),
    ]
    rejected = bad(items[2])
    assert rejected.position.offset == (22 if element else 23)
    expected = detail.format(tab=data.find(b"\t"), x=data.find(b" x") + 1)
    assert (rejected.issues[0].reason, rejected.issues[0].detail) == ("invalid JSON", expected)
    assert [good(item).values for item in (items[3], items[4])] == [{"a": 4}, {"a": 5}]
    assert items[3].position.offset == data.index(b'{"a": 4}')


def test_an_element_nested_too_deeply_for_the_parser_is_rejected(write_file):
    # Given an element nested far deeper than the parser's recursion allows
    data = b'[{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b'}, {"a": 3}]'
    path = write_file("deep.json", data)

    # When it is read, Then that element is rejected and the next is read
    items = read_all(path, JSON)
    assert bad(items[0]).issues[0].detail == "nested too deeply"
    assert (items[1].position.row, good(items[1]).values) == (2, {"a": 3})


def test_an_element_nested_past_the_scanned_depth_is_an_error_naming_the_file(write_file):
    # Given an element of open brackets deeper than where its end is looked for
    data = b'[{"a": 1}, ' + b"[" * (MAX_SCANNED_DEPTH + 10) + b"]"
    path = write_file("deep.json", data)

    # When it is read, Then the good element is read and the error names the file and the depth
    rows = []
    expected = rf"deep\.json.*nest deeper than {MAX_SCANNED_DEPTH} levels"
    with pytest.raises(SourceError, match=expected), open_rows(str(path), JSON) as stream:
        rows.extend(stream)
    assert [good(row).values for row in rows] == [{"a": 1}]


@pytest.mark.parametrize(
    "refused",
    [b'{"a": [' + b"[1, [2]], " * 2000 + b"NaN]}", b'{"a": "' + b"x\ty" * 2000 + b'"}'],
)
def test_a_large_refused_element_is_one_reject_whatever_read_cuts_it(write_file, refused):
    # Given a large element the parser refuses (a NaN deep inside, raw tabs in a string), read in
    # reads much smaller than it
    data = b'[{"a": 1}, ' + refused + b', {"a": 3}]'
    path = write_file("large.json", data)

    # When it is read, Then it is one reject between the two good elements
    items = read_all(path, SourceSpec(format="json", read_chunk_bytes=512))
    assert [type(item).__name__ for item in items] == ["SourceRow", "RejectedRow", "SourceRow"]
    assert good(items[2]).values == {"a": 3}


def test_resuming_after_every_row_of_an_array_with_refused_elements_yields_exactly_the_rest(write_file):
    data = b'[{"a": 1}, {"a": NaN}, 7, {"a": "x\ty"},, {"a": [1e999]}, {"a": 6}]'
    path = write_file("resume-bad.json", data)
    spec = SourceSpec(format="json", read_chunk_bytes=4)
    items, points = read_with_resume_points(path, spec)
    assert [item.position.row for item in items] == [1, 2, 3, 4, 5, 6, 7]
    assert [isinstance(item, RejectedRow) for item in items] == [False, True, True, True, True, True, False]

    for done, point in enumerate(points):
        assert read_all(path, spec, resume=point) == items[done:], f"resume after {done} rows"


def test_empty_arrays_and_empty_files_have_no_rows(write_file):
    assert read_all(write_file("empty-array.json", b" [ ] \n"), JSON) == []
    assert read_all(write_file("empty.json", b""), JSON) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}', r"expected a JSON array of objects, found '\{'"),
        (b'[{"a": 1} {"a": 2}]', "expected ',' or ']' after an array element"),
        (
            b'[{"a": 1}, {"a": [1}, {"a": 2}]',
            r"byte offset \d+: invalid JSON in the array .*brackets do not match",
        ),
        (b'[{"a": 1}, {"a": NaN, "b": "never closed}]', r"invalid JSON in the array .*file ends inside it"),
        (b'[{"a": 1}]  [', "unexpected data after the end of the array"),
    ],
)
def test_broken_json_arrays_are_errors_naming_the_file_and_offset(write_file, data, message):
    # Given an array that is not valid JSON
    path = write_file("broken.json", data)

    # When it is read, Then the error names the file and says what is wrong
    with pytest.raises(SourceError, match=message) as raised:
        read_all(path, JSON)
    assert str(path) in str(raised.value)


def test_a_truncated_array_yields_its_complete_elements_then_fails(write_file):
    # Given an array cut off inside its third element
    path = write_file("truncated.json", b'[{"a": 1}, {"a": 2}, {"a": ')

    # When it is read
    seen: list[SourceRow | RejectedRow] = []
    with (
        pytest.raises(SourceError, match=r"invalid JSON in the array|ends inside the JSON array"),
        open_rows(str(path), SourceSpec(format="json", read_chunk_bytes=4)) as rows,
    ):
        seen.extend(rows)

    # Then the complete elements came first
    assert [good(item).values for item in seen] == [{"a": 1}, {"a": 2}]
