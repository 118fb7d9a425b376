"""Resuming from the point after any row yields exactly the rest, with the same positions."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import fastavro
import orjson
import pytest

from cdpbridge.sources import ResumePoint, SourceError, SourceSpec, open_rows
from tests.unit.sources.conftest import read_all, read_with_resume_points

TRICKY_CSV = (
    b'\xef\xbb\xbfid,note\r\n1,"multi\r\nline, with comma"\r\n\r\n2,Zo\xc3\xab\r\n3\r\n4,"say ""hi"""\r\n'
    b"5,b\xffd\r\n\r\n6,a\rb\r\n7,last"
)
TRICKY_JSONL = b'{"n": 1}\n\n{"n": \n[2]\n  \n{"n": "\xc3\xa9"}\n{"n": 5}'


def _avro(records: int) -> bytes:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": "n", "type": "int"}, {"name": "s", "type": "string"}],
        }
    )
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [{"n": n, "s": "é" * (n % 7)} for n in range(records)], sync_interval=64)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CASES = {
    "csv": ("tricky.csv", TRICKY_CSV, SourceSpec(format="csv", read_chunk_bytes=7)),
    "tsv": ("plain.tsv", b"a\tb\n1\t2\n3\t4\n5\t6\n7\n8\t9\n", SourceSpec(format="tsv")),
    "jsonl": ("tricky.jsonl", TRICKY_JSONL, SourceSpec(format="jsonl", read_chunk_bytes=5)),
    "json": (
        "array.json",
        json.dumps([{"n": n, "s": "é" * n} for n in range(8)] + [5, {"last": True}], indent=2).encode(),
        SourceSpec(format="json", read_chunk_bytes=9),
    ),
    "avro": ("events.avro", _avro(40), SourceSpec(format="avro")),
    "utf16-csv": (
        "wide.csv",
        b"\xff\xfe" + TRICKY_CSV[3:].decode("utf-8", "replace").encode("utf-16-le"),
        SourceSpec(format="csv", read_chunk_bytes=7),
    ),
    "cr-csv": (
        "mac.csv",
        b'id,note\r1,"multi\rline, with comma"\r\r2,Zo\xc3\xab\r3\r4,"say ""hi"""\r5,b\xffd\r6,last',
        SourceSpec(format="csv", read_chunk_bytes=7),
    ),
    "utf16-json": (
        "wide.json",
        b"\xfe\xff" + json.dumps([{"n": n, "s": "é" * n} for n in range(8)], indent=2).encode("utf-16-be"),
        SourceSpec(format="json", read_chunk_bytes=9),
    ),
    "gzip-csv": ("tricky.csv.gz", gzip.compress(TRICKY_CSV), SourceSpec(format="csv", read_chunk_bytes=11)),
    "zip-jsonl": (
        "parts.zip",
        _zip({"b.jsonl": b'{"m": "b1"}\n{"m": "b2"}\n', "a.jsonl": TRICKY_JSONL, "c.jsonl": b'{"m": "c1"}'}),
        SourceSpec(format="jsonl"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_resuming_after_every_row_yields_exactly_the_remaining_rows(tmp_path: Path, case: str):
    # Given a small file and the resume point after each row of a sequential read
    name, data, spec = CASES[case]
    path = tmp_path / name
    path.write_bytes(data)
    items, points = read_with_resume_points(path, spec)
    assert len(items) >= 5

    for done, point in enumerate(points):
        # When reading resumes from the point taken after ``done`` rows (through JSON, as stored)
        restored = ResumePoint.from_dict(json.loads(json.dumps(point.to_dict())))
        rest = read_all(path, spec, resume=restored)

        # Then exactly the rows not yet yielded come out, numbered and positioned as before
        assert rest == items[done:], f"resume after {done} rows from {point}"


def test_the_resume_point_before_any_row_is_the_start_of_the_file(tmp_path: Path):
    path = tmp_path / "users.csv"
    path.write_bytes(b"id\n1\n")

    with open_rows(str(path), SourceSpec(format="csv")) as rows:
        assert rows.resume_point() == ResumePoint(row=1, offset=0)


def test_the_resume_point_after_the_last_row_yields_nothing_more(tmp_path: Path):
    path = tmp_path / "users.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n\n')
    spec = SourceSpec(format="jsonl")
    with open_rows(str(path), spec) as rows:
        list(rows)
        end = rows.resume_point()

    assert end == ResumePoint(row=3, offset=18)
    assert read_all(path, spec, resume=end) == []


def test_resuming_in_a_zip_member_that_is_not_there_is_an_error(tmp_path: Path):
    path = tmp_path / "parts.zip"
    path.write_bytes(_zip({"a.jsonl": b'{"a": 1}\n'}))

    with pytest.raises(SourceError, match=r"no zip member 'gone\.jsonl'"):
        open_rows(
            str(path), SourceSpec(format="jsonl"), resume=ResumePoint(row=3, offset=10, member="gone.jsonl")
        )


def test_resume_points_are_plain_json(tmp_path: Path):
    point = ResumePoint(row=12, offset=3456, block_index=2, member="a.csv")

    assert orjson.loads(orjson.dumps(point.to_dict())) == {
        "row": 12,
        "offset": 3456,
        "block_index": 2,
        "member": "a.csv",
    }
    assert ResumePoint.from_dict(point.to_dict()) == point
