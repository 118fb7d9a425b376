"""Hostile files of every source format, built from rows that say what the reader must make of them.

A file is a list of FileRow (good, or damaged in a way that stays inside the row) written in one
format, text encoding, line end and wrapper; ``mutations`` then damage the bytes anywhere, for the
properties that only ask the readers to fail cleanly. The Hypothesis settings of the whole suite
are here too: a fixed number of examples, derandomized and without an example database, so a CI
run tries the same cases every time and stays within its time budget.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass, replace
from typing import Any

import fastavro
import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.unit.sources.bombs import MIB, deflate_bomb, gzip_bomb, zip_bomb


def fuzz_settings(max_examples: int) -> settings:
    """``max_examples`` cases, the same ones on every run, no deadline (a loaded CI machine is slow)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


DELIMITERS = {"csv": ",", "tsv": "\t", "psv": "|"}
TEXT_FORMATS = ("csv", "tsv", "psv", "jsonl", "json")
FORMATS = (*TEXT_FORMATS, "avro")
ENCODINGS = ("utf-8", "utf-8-bom", "utf-16-le", "utf-16-be")
LINE_ENDS = ("\n", "\r\n", "\r")
WRAPPERS = ("none", "gzip", "zip")
# The readers' field limit in these files (max_field_chars), so that a field past it is small.
FIELD_LIMIT = 300
# The mapping's null markers: a name equal to one is no value, which the properties do not model.
NULL_MARKERS = frozenset({"", "null", "NULL", "nan", "NaN", "None"})

GOOD = "good"
# Damage that stays inside its row: the reader or the mapper rejects that row, the others are read.
ROW_DAMAGE: dict[str, tuple[str, ...]] = {
    "delimited": ("ragged", "undecodable", "field_too_long", "bare_cr", "no_id", "name_too_long"),
    "jsonl": ("invalid_json", "not_object", "nan", "deep", "undecodable", "no_id", "name_too_long"),
    "json": ("not_object", "nan", "deep", "undecodable", "no_id", "name_too_long"),
    "avro": ("no_id", "name_too_long"),
}
# Stands for an undecodable byte sequence until the text is encoded (a private-use character, which
# generated names never hold); see _break_placeholders.
_PLACEHOLDER = "\ue000"
_BROKEN = {
    "utf-8": b"\xff\xfe",
    "utf-16-le": b"\x00\xd8",  # a high surrogate with no low one after it
    "utf-16-be": b"\xd8\x00",
}
_BOMS = {"utf-8": b"", "utf-8-bom": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}
_AVRO_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "User",
        "fields": [{"name": "id", "type": ["null", "string"]}, {"name": "name", "type": "string"}],
    }
)

# Cells spreadsheets run as formulas: data, to pass through as text.
FORMULAS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.invalid","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "=1+1",
    "\t=1",
)


@dataclass(frozen=True, slots=True)
class FileRow:
    """One row: ``kind`` is GOOD or the damage done to it; ``name`` is what a good row must give."""

    kind: str
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class HostileFile:
    format: str
    encoding: str
    line_end: str
    wrapper: str
    rows: tuple[FileRow, ...]
    # Avro's block codec.
    codec: str = "null"

    @property
    def file_name(self) -> str:
        suffix = {"none": "", "gzip": ".gz", "zip": ".zip"}[self.wrapper]
        return f"users.{self.format}{suffix}"

    @property
    def good(self) -> list[tuple[int, FileRow]]:
        """(row number, row) of the rows that must go through."""
        return [(number, row) for number, row in enumerate(self.rows, start=1) if row.kind == GOOD]

    @property
    def bad_numbers(self) -> list[int]:
        return [number for number, row in enumerate(self.rows, start=1) if row.kind != GOOD]

    def data(self) -> bytes:
        return wrap(self.inner(), self.wrapper, f"users.{self.format}")

    def inner(self) -> bytes:
        if self.format == "avro":
            return _avro(self.rows, self.codec)
        if self.format in DELIMITERS:
            text = _delimited(self.rows, DELIMITERS[self.format], self.line_end)
        elif self.format == "jsonl":
            text = self.line_end.join(_json_line(row) for row in self.rows) + self.line_end
        else:
            text = (
                "[" + f",{self.line_end}".join(_json_element(row) for row in self.rows) + "]" + self.line_end
            )
        return _encode(text, self.encoding)


def _damage_family(file_format: str) -> str:
    return "delimited" if file_format in DELIMITERS else file_format


def wrap(data: bytes, wrapper: str, member: str) -> bytes:
    if wrapper == "gzip":
        return gzip.compress(data, mtime=0)
    if wrapper == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, data)
        return buffer.getvalue()
    return data


def _encode(text: str, encoding: str) -> bytes:
    codec = "utf-8" if encoding == "utf-8-bom" else encoding
    # Encoded piece by piece, so that the broken bytes replace whole code units.
    broken = _BROKEN[codec]
    return _BOMS[encoding] + broken.join(piece.encode(codec) for piece in text.split(_PLACEHOLDER))


def _delimited(rows: tuple[FileRow, ...], delimiter: str, line_end: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(("id", "name"))
    for row in rows:
        # Line breaks inside quoted names are the file's own line end (a CR file has no LF at all).
        name = row.name.replace("\n", "\r") if line_end == "\r" else row.name
        if row.kind == "ragged":
            writer.writerow((row.id, name, "one too many"))
        elif row.kind == "bare_cr":
            buffer.write(f"{row.id}{delimiter}a\rb{line_end}")
        elif row.kind == "undecodable":
            writer.writerow((row.id, f"bad{_PLACEHOLDER}bytes"))
        else:
            writer.writerow((row.id, name))
    return buffer.getvalue()


def _json_line(row: FileRow) -> str:
    if row.kind == "invalid_json":
        return orjson.dumps({"id": row.id, "name": row.name}).decode()[:-1]
    return _json_element(row)


def _json_element(row: FileRow) -> str:
    if row.kind == "not_object":
        return orjson.dumps([row.id, row.name]).decode()
    if row.kind == "nan":
        return f'{{"id": {orjson.dumps(row.id).decode()}, "score": NaN}}'
    if row.kind == "deep":
        return '{"id": "deep", "x": ' + "[" * 3000 + "]" * 3000 + "}"
    if row.kind == "undecodable":
        return f'{{"id": {orjson.dumps(row.id).decode()}, "name": "bad{_PLACEHOLDER}bytes"}}'
    if row.kind == "no_id":
        return orjson.dumps({"name": row.name}).decode()
    return orjson.dumps({"id": row.id, "name": row.name}).decode()


def _avro(rows: tuple[FileRow, ...], codec: str) -> bytes:
    buffer = io.BytesIO()
    records = [{"id": row.id or None, "name": row.name} for row in rows]
    fastavro.writer(buffer, _AVRO_SCHEMA, records, codec=codec, sync_interval=256)
    return buffer.getvalue()


# --- strategies -------------------------------------------------------------------------------

_NAME_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Co"),  # no lone surrogates; no private use (the placeholder's)
    blacklist_characters="\r",  # a CR in a name is a line end in a CR file
)
names = st.one_of(
    st.sampled_from(FORMULAS),
    st.text(_NAME_CHARACTERS, min_size=1, max_size=40),
    st.text(st.sampled_from("\",|\t\n; '=+-@"), min_size=1, max_size=12),
).filter(lambda name: name not in NULL_MARKERS)


@st.composite
def file_rows(draw: st.DrawFn, file_format: str, *, damaged: bool = True) -> tuple[FileRow, ...]:
    kinds = (GOOD, GOOD, GOOD, *ROW_DAMAGE[_damage_family(file_format)]) if damaged else (GOOD,)
    count = draw(st.integers(min_value=0, max_value=25))
    rows: list[FileRow] = []
    for index in range(count):
        kind = draw(st.sampled_from(kinds))
        name = draw(names)
        row = FileRow(kind, f"u{index}", name)
        if kind == "no_id":
            row = replace(row, id="")
        elif kind == "name_too_long":
            row = replace(row, name="n" * draw(st.integers(min_value=256, max_value=FIELD_LIMIT - 1)))
        elif kind == "field_too_long":
            row = replace(
                row, name="f" * draw(st.integers(min_value=FIELD_LIMIT + 1, max_value=2 * FIELD_LIMIT))
            )
        rows.append(row)
    return tuple(rows)


@st.composite
def hostile_files(
    draw: st.DrawFn, formats: tuple[str, ...] = FORMATS, *, damaged: bool = True
) -> HostileFile:
    file_format = draw(st.sampled_from(formats))
    if file_format == "avro":
        encoding, line_end = "utf-8", "\n"
    else:
        encoding = draw(st.sampled_from(ENCODINGS))
        line_end = draw(st.sampled_from(LINE_ENDS))
    rows = draw(file_rows(file_format, damaged=damaged))
    if line_end == "\r":
        # In a file of CR line ends a CR is a line end: there is no bare CR inside a field.
        rows = tuple(replace(row, kind=GOOD) if row.kind == "bare_cr" else row for row in rows)
    wrapper = draw(st.sampled_from(WRAPPERS))
    codec = draw(st.sampled_from(("null", "deflate", "bzip2"))) if file_format == "avro" else "null"
    return HostileFile(file_format, encoding, line_end, wrapper, rows, codec)


_INSERTS = (
    b'"',
    b'""',
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"\\",
    b"\\ud800",
    b"NaN",
    b"1e999",
    b"=cmd|' /C calc'!A0",
)


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, float, bytes]]:
    """Edits of a file's bytes, each at a fraction of its length: (kind, where, bytes)."""
    edit = st.tuples(
        st.sampled_from(("insert", "overwrite", "delete", "truncate")),
        st.floats(min_value=0.0, max_value=1.0),
        st.one_of(st.sampled_from(_INSERTS), st.binary(min_size=1, max_size=8)),
    )
    return draw(st.lists(edit, max_size=4))


def mutate(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, piece in edits:
        at = int(where * len(data))
        if kind == "insert":
            data = data[:at] + piece + data[at:]
        elif kind == "overwrite":
            data = data[:at] + piece + data[at + len(piece) :]
        elif kind == "delete":
            data = data[:at] + data[at + len(piece) :]
        else:
            data = data[:at]
    return data


# The bytes a bomb repeats, by name: 1 MiB each, compressing about 800 to 1,000 times. (Blank lines
# are left out: at about a microsecond a line, the 16 to 32 MiB read before the limit take 30 s.)
BOMB_CHUNKS: dict[str, bytes] = {
    "zeros": b"\0" * MIB,
    "spaces": b" " * MIB,
    "csv rows": (b"7," + b" " * (64 * 1024 - 3) + b"\n") * 16,
    "json lines": (b'{"id": "7", "pad": "' + b"a" * (64 * 1024 - 23) + b'"}\n') * 16,
}
_BOMB_CHUNKS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "csv": ("zeros", "csv rows"),
    "jsonl": ("spaces", "json lines"),
    # (An array element of millions of open brackets is a unit test: under tracemalloc the parser's
    # recursion takes seconds an example.)
    "json": ("spaces",),
    "avro": ("zeros",),
}


@dataclass(frozen=True, slots=True)
class Bomb:
    wrapper: str
    format: str
    chunk: str
    gibibytes: int

    def data(self) -> bytes:
        head = b"id,name\n" if self.format in DELIMITERS else b"[" if self.format == "json" else b""
        repeats = self.gibibytes * 1024
        chunk = BOMB_CHUNKS[self.chunk]
        if self.wrapper == "gzip":
            return gzip_bomb(head, chunk, repeats)
        if self.wrapper == "avro deflate block":
            return _avro_block_bomb(deflate_bomb(b"", chunk, repeats), records=repeats)
        return zip_bomb({f"users.{self.format}": (head, chunk, repeats)})

    @property
    def file_name(self) -> str:
        suffix = {"gzip": ".gz", "zip": ".zip", "avro deflate block": ""}[self.wrapper]
        return f"bomb.{self.format}{suffix}"


def _avro_block_bomb(deflated: bytes, *, records: int) -> bytes:
    """A deflate Avro file of one block that claims ``records`` and holds ``deflated``."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, _AVRO_SCHEMA, [], codec="deflate")
    header = buffer.getvalue()
    return header + _avro_long(records) + _avro_long(len(deflated)) + deflated + header[-16:]


def _avro_long(value: int) -> bytes:
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = encoded & 0x7F
        encoded >>= 7
        if not encoded:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


@st.composite
def bombs(draw: st.DrawFn) -> Bomb:
    file_format = draw(st.sampled_from(tuple(_BOMB_CHUNKS_BY_FORMAT)))
    wrappers = ("gzip", "zip", "avro deflate block") if file_format == "avro" else ("gzip", "zip")
    wrapper = draw(st.sampled_from(wrappers))
    # A zip member stays under 4 GiB (no zip64 records); gzip members are many small ones.
    most = 3 if wrapper == "zip" else 16
    return Bomb(
        wrapper,
        file_format,
        draw(st.sampled_from(_BOMB_CHUNKS_BY_FORMAT[file_format])),
        draw(st.integers(min_value=1, max_value=most)),
    )


def spec_options(hostile: HostileFile) -> dict[str, Any]:
    """The source settings a file is read with (a mapping's ``source`` section)."""
    return {"format": hostile.format, "max_field_chars": FIELD_LIMIT}
