"""open_rows: a location and a SourceSpec in, a resumable stream of SourceRow | RejectedRow out."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources.avro import AvroReader
from cdpbridge.sources.cursor import ByteRange, ReadCursor, ReadWindow, ResumePoint
from cdpbridge.sources.delimited import DelimitedReader
from cdpbridge.sources.errors import SourceError, SourceSpecError
from cdpbridge.sources.jsonarray import JsonArrayReader
from cdpbridge.sources.jsonlines import JsonLinesReader
from cdpbridge.sources.opening import OpenedSource, SourceMember, open_source
from cdpbridge.sources.spec import SourceFormat, SourceSpec

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from cdpbridge.sources.parquet import ParquetReader

Row = SourceRow | RejectedRow


class RowStream:
    """Iterates the rows of one file and knows where to resume; closes what it opened.

    ``resume_point()`` may be called between rows at any time: it describes the position right
    after the last row yielded, and a stream opened with it yields exactly the rows not yet seen,
    with the same numbers and offsets.
    """

    def __init__(
        self,
        opened: OpenedSource,
        spec: SourceSpec,
        *,
        resume: ResumePoint | None = None,
        byte_range: ByteRange | None = None,
    ) -> None:
        self._opened = opened
        self._spec = spec
        self._byte_range = byte_range
        start = resume or (
            ResumePoint(byte_range.first_row, byte_range.start) if byte_range is not None else ResumePoint()
        )
        self._start = start
        self._cursor = ReadCursor(start.row, start.offset, start.block_index, start.member)
        self._rows = self._generate()
        self._closed = False

    @property
    def location(self) -> str:
        return self._opened.location

    @property
    def opened(self) -> OpenedSource:
        """The opened file, for reading its header before the rows (cdpbridge.sync.columns)."""
        return self._opened

    def __iter__(self) -> Iterator[Row]:
        # The generator itself, so that a for loop runs at generator speed with no wrapper call.
        return self._rows

    def __next__(self) -> Row:
        return next(self._rows)

    def resume_point(self) -> ResumePoint:
        return self._cursor.snapshot()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rows.close()
        self._opened.close()

    def __enter__(self) -> RowStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _generate(self) -> Generator[Row]:
        members = self._opened.members
        names = [member.name for member in members]
        first = names.index(self._start.member) if self._start.member is not None else 0
        end_offset = self._byte_range.end if self._byte_range is not None else None
        for number, member in enumerate(members[first:]):
            if number == 0:
                window = ReadWindow(self._start.offset, self._start.row, self._start.block_index, end_offset)
            else:
                window = ReadWindow(0, self._cursor.row, 0, end_offset)
                self._cursor.offset, self._cursor.block_index = 0, 0
            self._cursor.member = member.name
            yield from self._member_rows(member, window)

    def _member_rows(self, member: SourceMember, window: ReadWindow) -> Iterator[Row]:
        try:
            stream = member.open()
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
            raise SourceError(member.source, f"cannot open: {exc}") from exc
        try:
            yield from _reader(stream, self._spec, member.source, self._cursor).rows(window)
        except SourceError:
            raise
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            # Truncated gzip, bad CRC, broken deflate data: the rest of the file is unreadable.
            raise SourceError(member.source, f"cannot read: {exc}", row=self._cursor.row) from exc
        finally:
            if member.owns_stream:
                stream.close()


def _reader(
    stream: ByteStream, spec: SourceSpec, source: str, cursor: ReadCursor
) -> DelimitedReader | JsonLinesReader | JsonArrayReader | AvroReader | ParquetReader:
    if spec.format.is_delimited:
        return DelimitedReader(stream, spec, source, cursor)
    if spec.format is SourceFormat.JSONL:
        return JsonLinesReader(stream, spec, source, cursor)
    if spec.format is SourceFormat.JSON:
        return JsonArrayReader(stream, spec, source, cursor)
    if spec.format is SourceFormat.PARQUET:
        # Imported here: the Parquet reader (and pyarrow behind it) stays off the import path of
        # handlers that never read Parquet, whose cold start it would lengthen.
        from cdpbridge.sources.parquet import ParquetReader  # noqa: PLC0415

        return ParquetReader(stream, source, cursor)
    return AvroReader(stream, spec, source, cursor)


def open_rows(
    location: str,
    spec: SourceSpec,
    *,
    s3_client: S3Client | None = None,
    resume: ResumePoint | None = None,
    byte_range: ByteRange | None = None,
) -> RowStream:
    """Opens ``location`` (a local path or s3://bucket/key) for streaming its rows.

    ``resume`` continues right after the last row an earlier stream yielded. ``byte_range`` (from
    plan_byte_ranges) yields only the rows that start inside it; both can be combined to resume a
    range. Raises SourceError when the file cannot be opened or its header is unusable.
    """
    if byte_range is not None and byte_range.is_whole_file:
        byte_range = None
    opened = open_source(location, spec, s3_client=s3_client)
    try:
        if byte_range is not None and (not opened.splittable or spec.format is SourceFormat.JSON):
            raise SourceSpecError(
                f"{location}: a byte range cannot be read from a {opened.compression} {spec.format} file; "
                "read it whole (plan_byte_ranges returns a single range for such files)"
            )
        if resume is not None and resume.member is not None and resume.member not in _names(opened):
            raise SourceError(location, f"no zip member {resume.member!r} to resume in")
        return RowStream(opened, spec, resume=resume, byte_range=byte_range)
    except BaseException:
        opened.close()
        raise


def _names(opened: OpenedSource) -> list[str | None]:
    return [member.name for member in opened.members]
