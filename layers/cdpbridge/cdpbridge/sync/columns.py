"""The columns a file declares before its first row, read so that a run can check them against its
mapping before it sends anything."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdpbridge.sources import SourceError, SourceFormat, SourceSpec
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources.avro import open_block_reader
from cdpbridge.sources.cursor import ReadCursor
from cdpbridge.sources.delimited import DelimitedReader
from cdpbridge.sources.opening import OpenedSource, open_source

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A header is read with small reads: the rows' own reader fetches megabytes at a time, which a
# header never needs (a longer header is still read whole, in more reads).
_HEADER_S3_RANGE_BYTES = 256 * 1024
_HEADER_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeclaredColumns:
    """The columns of one stream of rows: the file, or one member of a zip archive."""

    source: str
    columns: tuple[str, ...]


def read_declared_columns(
    location: str, spec: SourceSpec, *, s3_client: S3Client | None = None
) -> list[DeclaredColumns]:
    """The declared columns of the file at ``location`` (see ``declared_columns``), opened for this
    alone with small reads."""
    small = spec.model_copy(update={"s3_range_bytes": _HEADER_S3_RANGE_BYTES})
    opened = open_source(location, small, s3_client=s3_client)
    try:
        return declared_columns(opened, spec)
    finally:
        opened.close()


def declared_columns(opened: OpenedSource, spec: SourceSpec) -> list[DeclaredColumns]:
    """The header of each CSV-family member (or the spec's ``columns`` when the file has none), the
    fields of each Avro member's record schema, the columns of each Parquet member's schema. Empty
    for JSON and JSON lines, whose records name their own fields one by one (a key a record lacks
    is a value it lacks, not a renamed column), and for members that declare nothing (an empty
    file, an Avro schema that is not a record).

    ``opened`` stays open and is rewound, so the rows are read from the same opened object: a part
    opens its object once for the header check and the read. Raises SourceError when the header
    cannot be read, as reading the rows would.
    """
    if spec.format.is_delimited and not spec.header:
        return [DeclaredColumns(opened.location, spec.columns or ())]
    if not spec.format.is_delimited and spec.format not in (SourceFormat.AVRO, SourceFormat.PARQUET):
        return []
    small = spec.model_copy(update={"read_chunk_bytes": _HEADER_CHUNK_BYTES})
    declared: list[DeclaredColumns] = []
    try:
        for member in opened.members:
            try:
                stream = member.open()
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
                raise SourceError(member.source, f"cannot open: {exc}") from exc
            try:
                columns = _member_columns(stream, small, member.source)
            except SourceError:
                raise
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise SourceError(member.source, f"cannot read: {exc}", row=0) from exc
            finally:
                if member.owns_stream:
                    stream.close()
            if columns:
                declared.append(DeclaredColumns(member.source, columns))
    finally:
        # Where open_source left it: a gzip member reads the raw file from its current position.
        opened.raw.seek(0)
    return declared


def _member_columns(stream: ByteStream, spec: SourceSpec, source: str) -> tuple[str, ...]:
    if spec.format.is_delimited:
        header, _ = DelimitedReader(stream, spec, source, ReadCursor()).read_header()
        return header
    if spec.format is SourceFormat.PARQUET:
        return _parquet_columns(stream, source)
    blocks, _ = open_block_reader(stream, source)
    schema: Any = blocks.writer_schema
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return ()
    return tuple(str(field["name"]) for field in schema.get("fields", ()))


def _parquet_columns(stream: ByteStream, source: str) -> tuple[str, ...]:
    """The footer's columns; a gzip or zip member is spooled first, as the reader does."""
    # Imported here to keep the Parquet reader off the handlers' import path (cold start).
    from cdpbridge.sources.parquet import open_parquet, seekable_copy  # noqa: PLC0415

    copy = seekable_copy(stream)
    try:
        return open_parquet(copy or stream, source).columns
    finally:
        if copy is not None:
            copy.close()
