"""What a source file looks like: format, dialect, encoding, compression, and the reading knobs."""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from enum import StrEnum
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MIB = 1024 * 1024
GIB = 1024 * MIB

# Every byte below 0x80 must decode to the same character and back: the readers split lines and the
# planner counts quotes and newlines on raw bytes, which is only sound for ASCII-compatible codecs.
_ASCII_BYTES = bytes(range(128))
_ASCII_TEXT = _ASCII_BYTES.decode("ascii")
_UTF8_NAMES = frozenset({"utf-8", "utf-8-sig"})


class SourceFormat(StrEnum):
    """File formats the source readers understand."""

    CSV = "csv"
    TSV = "tsv"
    PSV = "psv"
    JSONL = "jsonl"
    JSON = "json"
    AVRO = "avro"
    PARQUET = "parquet"

    @property
    def is_delimited(self) -> bool:
        return self in _DEFAULT_DELIMITERS

    @property
    def default_delimiter(self) -> str | None:
        return _DEFAULT_DELIMITERS.get(self)


_DEFAULT_DELIMITERS: dict[SourceFormat, str] = {
    SourceFormat.CSV: ",",
    SourceFormat.TSV: "\t",
    SourceFormat.PSV: "|",
}

_SUFFIX_FORMATS: dict[str, SourceFormat] = {
    ".csv": SourceFormat.CSV,
    ".tsv": SourceFormat.TSV,
    ".tab": SourceFormat.TSV,
    ".psv": SourceFormat.PSV,
    ".jsonl": SourceFormat.JSONL,
    ".ndjson": SourceFormat.JSONL,
    ".json": SourceFormat.JSON,
    ".avro": SourceFormat.AVRO,
    ".parquet": SourceFormat.PARQUET,
}
_COMPRESSION_SUFFIXES = frozenset({".gz", ".gzip", ".zip"})


class Compression(StrEnum):
    AUTO = "auto"  # magic bytes decide; the extension is only a hint
    NONE = "none"
    GZIP = "gzip"
    ZIP = "zip"


def infer_format(location: str) -> SourceFormat | None:
    """The format a file name suggests (``users.csv.gz`` -> csv), or None when it says nothing."""
    suffixes = [s.lower() for s in PurePosixPath(location).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


def compression_from_name(location: str) -> Compression:
    """The compression a file name claims (used as a hint next to the magic bytes)."""
    suffix = PurePosixPath(location).suffix.lower()
    if suffix in (".gz", ".gzip"):
        return Compression.GZIP
    if suffix == ".zip":
        return Compression.ZIP
    return Compression.NONE


def first_bad_column_name(names: Iterable[str]) -> tuple[int, int | None] | None:
    """The first column (1-based) whose name is empty or repeated, with the earlier column of that
    name (None for an empty name); None when every name is its own. A row is a dict, so a repeated
    name would keep only the last of its values and silently drop the others."""
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name.strip():
            return number, None
        if name in seen:
            return number, seen[name]
        seen[name] = number
    return None


def _check_column_names(columns: tuple[str, ...]) -> None:
    bad = first_bad_column_name(columns)
    if bad is None:
        return
    number, earlier = bad
    if earlier is None:
        raise ValueError(f"columns: column {number} has an empty name")
    raise ValueError(f"columns: columns {earlier} and {number} are both named {columns[number - 1]!r}")


class SourceSpec(BaseModel):
    """How to read one file. ``delimiter`` defaults by format (csv ``,``, tsv tab, psv ``|``).

    Extra keys are ignored so that a mapping's ``source`` section (which also carries value
    options such as null markers, handled by the mapper) can be validated into a SourceSpec as is.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: SourceFormat
    delimiter: str | None = None
    # None reads every quote character literally (csv.QUOTE_NONE).
    quotechar: str | None = '"'
    encoding: str = "utf-8"
    compression: Compression = Compression.AUTO
    # CSV family: the first record names the columns. Without a header, ``columns`` names them.
    header: bool = True
    columns: tuple[str, ...] | None = None
    # Size of each read from the (decompressed) stream; memory per reader is a small multiple of it.
    read_chunk_bytes: int = Field(default=1 * MIB, ge=1, le=256 * MIB)
    # Size of each ranged GetObject when the file is on S3.
    s3_range_bytes: int = Field(default=8 * MIB, ge=1, le=1024 * MIB)
    # A JSON-lines line or JSON array element longer than this is refused instead of buffered.
    max_record_bytes: int = Field(default=64 * MIB, ge=1)
    # CSV family: a field longer than this many characters makes its row a reject. csv holds the
    # field being read as 4 bytes a character in a buffer that doubles, so this bounds memory:
    # a 5 MB field cost 32 MB there. Braze takes no value near 1 Mi characters long.
    max_field_chars: int = Field(default=1 * MIB, ge=1)
    # gzip and zip: reading stops with an error once the decompressed bytes pass this many, or
    # once they are more than this many times the compressed bytes read (a decompression bomb:
    # deflate reaches about 1,000 times; CSV and JSON exports rarely pass 20).
    max_decompressed_bytes: int = Field(default=16 * GIB, ge=1)
    max_compression_ratio: float = Field(default=200.0, ge=1.0)

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _single_character(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value) != 1 or value in "\r\n":
            raise ValueError(f"must be one character other than a line break, got {value!r}")
        if not value.isascii():
            raise ValueError(f"must be an ASCII character, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _ascii_compatible_encoding(cls, value: str) -> str:
        try:
            name = codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        # utf-8-sig only differs by the byte order mark, which the readers step over themselves.
        name = "utf-8" if name in _UTF8_NAMES else name
        try:
            compatible = _ASCII_BYTES.decode(name) == _ASCII_TEXT and _ASCII_TEXT.encode(name) == _ASCII_BYTES
        except (UnicodeError, LookupError):
            compatible = False
        if not compatible:
            raise ValueError(
                f"encoding {value!r} is not ASCII-compatible (UTF-16/32 and similar are not supported); "
                "re-encode the file as UTF-8"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceSpec:
        if not self.format.is_delimited:
            if self.delimiter is not None:
                raise ValueError(f"delimiter only applies to csv, tsv and psv, not {self.format}")
            if self.columns is not None or not self.header:
                raise ValueError(f"header and columns only apply to csv, tsv and psv, not {self.format}")
            return self
        if self.quotechar is not None and self.quotechar == self.effective_delimiter:
            raise ValueError("quotechar and delimiter must differ")
        if self.header and self.columns is not None:
            raise ValueError("columns names a file without a header row: set header to false or drop columns")
        if not self.header and not self.columns:
            raise ValueError("a file without a header row needs columns to name its fields")
        if self.columns is not None:
            _check_column_names(self.columns)
        return self

    @property
    def effective_delimiter(self) -> str:
        """The delimiter in use for a CSV-family format (the format's default when not given)."""
        delimiter = self.delimiter or self.format.default_delimiter
        if delimiter is None:
            raise ValueError(f"{self.format} has no delimiter")
        return delimiter

    @property
    def codec(self) -> str:
        """The codec that decodes the text after any byte order mark has been stepped over."""
        name = codecs.lookup(self.encoding).name
        return "utf-8" if name in _UTF8_NAMES else name

    @property
    def skips_utf8_bom(self) -> bool:
        return codecs.lookup(self.encoding).name in _UTF8_NAMES
