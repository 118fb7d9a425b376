"""Apache Parquet files through pyarrow, one row group at a time, typed by the file's own schema.

A Parquet file is a sequence of row groups followed by a footer that locates them. Rows are
positioned like Avro records: ``offset`` is the byte offset where the row's group starts (its first
column chunk) and ``block_index`` the row's index inside that group. A byte range holds the row
groups that start inside it, so a planned range is always made of whole row groups.

Values keep the types of the schema: integers stay ints, decimals are ``Decimal`` with every digit,
timestamps are ``datetime`` (zone-aware when the column has a zone), dates are ``date``, booleans
are ``bool``, lists are lists, structs and maps are dicts. The codecs (snappy, gzip, zstd, brotli,
lz4) are inside the file and handled by pyarrow.

pyarrow is imported only when a Parquet file is opened: it is large, and the handlers that never
read Parquet keep their cold start.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._rows import make_row
from cdpbridge.sources.cursor import ReadCursor, ReadWindow
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.opening import decompresses_as_read
from cdpbridge.sources.spec import first_bad_column_name

if TYPE_CHECKING:
    import pyarrow
    import pyarrow.parquet

Row = SourceRow | RejectedRow

PARQUET_MAGIC = b"PAR1"
# Rows turned into Python values at a time: memory stays flat inside a row group of millions of
# rows, and each batch is large enough that pyarrow's per-batch cost is negligible.
BATCH_ROWS = 16_384
# A gzip- or zip-wrapped Parquet file is copied to a temporary file first (Parquet is read from its
# footer backwards); this much of it stays in memory before the copy spills to disk.
_SPOOL_MEMORY_BYTES = 16 * 1024 * 1024
_COPY_CHUNK_BYTES = 1024 * 1024
# A reject's detail carries the start of pyarrow's message; enough to tell one failure from another.
_DETAIL_CHARS = 200


@dataclass(frozen=True, slots=True)
class RowGroup:
    """Where one row group lies in the file and how many rows it holds."""

    # 0-based, as the file's footer numbers it (the number error messages give is 1-based).
    index: int
    # The first byte of its first column chunk: the position its rows carry.
    offset: int
    # Where a read continues once the group is done: the next group's offset, or for the last
    # group the end of its data.
    next_offset: int
    rows: int


@dataclass(slots=True)
class ParquetLayout:
    """An open Parquet file, its columns and its row groups in file order."""

    file: pyarrow.parquet.ParquetFile
    columns: tuple[str, ...]
    groups: list[RowGroup]


def _arrow_errors() -> tuple[type[BaseException], ...]:
    import pyarrow  # noqa: PLC0415  (pyarrow is only paid for by Parquet reads)

    # ArrowException covers ArrowInvalid (a ValueError) and friends; a bad page or a broken
    # decompression surfaces as OSError (ArrowIOError).
    return (pyarrow.ArrowException, OSError, ValueError, EOFError, IndexError)


def open_parquet(stream: ByteStream, source: str) -> ParquetLayout:
    """Reads the footer of the Parquet file in ``stream``: its columns and row groups.

    Raises SourceError naming the file when it is not a readable Parquet file, or when its columns
    cannot become the keys of a row (an empty or a repeated name).
    """
    from pyarrow import parquet  # noqa: PLC0415  (pyarrow is only paid for by Parquet reads)

    stream.seek(0)
    if stream.read(4) != PARQUET_MAGIC:
        raise SourceError(source, "not a Parquet file (it does not start with PAR1)", offset=0)
    stream.seek(0)
    try:
        # Pages written with a CRC are checked against it: a flipped byte is a reject, not a value.
        file = parquet.ParquetFile(stream, page_checksum_verification=True)
        metadata = file.metadata
        columns = tuple(file.schema_arrow.names)
    except SourceError:
        raise
    except _arrow_errors() as exc:
        raise SourceError(source, f"not a readable Parquet file: {exc}", offset=0) from exc
    bad = first_bad_column_name(columns)
    if bad is not None:
        number, earlier = bad
        reason = (
            f"column {number} has an empty name"
            if earlier is None
            else f"columns {earlier} and {number} are both named {columns[number - 1]!r}"
        )
        raise SourceError(source, f"unusable Parquet schema: {reason}", offset=0)
    try:
        groups = _row_groups(metadata)
    except _arrow_errors() as exc:
        raise SourceError(source, f"unreadable Parquet footer: {exc}", offset=0) from exc
    return ParquetLayout(file, columns, groups)


def _row_groups(metadata: Any) -> list[RowGroup]:
    """Row groups ordered by where they start, so that row numbers grow with byte offsets (a
    byte range and a resume point name groups by offset). Writers put them in that order anyway."""
    spans: list[tuple[int, int, int, int]] = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        starts: list[int] = []
        ends: list[int] = []
        for column in range(group.num_columns):
            chunk = group.column(column)
            # Some writers put 0 in dictionary_page_offset when there is no dictionary page.
            dictionary = chunk.dictionary_page_offset if chunk.has_dictionary_page else None
            start = dictionary if dictionary else chunk.data_page_offset
            starts.append(start)
            ends.append(start + chunk.total_compressed_size)
        if starts:
            spans.append((min(starts), max(ends), index, group.num_rows))
    spans.sort()
    groups: list[RowGroup] = []
    for position, (start, end, index, rows) in enumerate(spans):
        next_offset = spans[position + 1][0] if position + 1 < len(spans) else end
        groups.append(RowGroup(index, start, next_offset, rows))
    return groups


def row_group_boundaries(raw: ByteStream, source: str, target: int) -> tuple[list[tuple[int, int]], int]:
    """Where byte ranges of about ``target`` bytes start: (offset, rows before it) at row group
    starts only, and the rows in the file. Reads the footer, not the data.

    The file is cut into as many parts as its size holds ``target`` (never more than it has row
    groups), each cut at the row group start nearest an equal share of the row groups' bytes. Row
    groups are coarse and the footer can be a large share of a small file, so cutting at the first
    group past each target, as text formats do, would often give one part fewer than asked.
    """
    layout = open_parquet(raw, source)
    size = raw.seek(0, 2)
    groups = [group for group in layout.groups if group.rows]
    rows_before: list[int] = []
    records = 0
    for group in groups:
        rows_before.append(records)
        records += group.rows
    parts = min(len(groups), -(-size // target))
    if parts < 2:
        return [], records
    starts = [group.offset for group in groups]
    first, span = starts[0], groups[-1].next_offset - starts[0]
    cuts: list[int] = []
    for part in range(1, parts):
        ideal = first + span * part / parts
        index = bisect.bisect_left(starts, ideal)
        if index == len(starts) or (index > 0 and ideal - starts[index - 1] <= starts[index] - ideal):
            index -= 1
        if index > (cuts[-1] if cuts else 0):
            cuts.append(index)
    return [(starts[index], rows_before[index]) for index in cuts], records


def _python_ready(data_type: pyarrow.DataType) -> pyarrow.DataType:
    """The type to cast a column to before it becomes Python values: nanosecond timestamps, times
    and durations have no Python counterpart and become microseconds (Braze keeps milliseconds, so
    nothing it could store is lost); nested types are walked."""
    import pyarrow  # noqa: PLC0415

    types = pyarrow.types
    if types.is_timestamp(data_type) and data_type.unit == "ns":
        return pyarrow.timestamp("us", data_type.tz)
    if types.is_time64(data_type) and data_type.unit == "ns":
        return pyarrow.time64("us")
    if types.is_duration(data_type) and data_type.unit == "ns":
        return pyarrow.duration("us")
    if types.is_map(data_type):
        key, item = data_type.key_field, data_type.item_field
        return pyarrow.map_(key.with_type(_python_ready(key.type)), item.with_type(_python_ready(item.type)))
    if types.is_list(data_type) or types.is_large_list(data_type) or types.is_fixed_size_list(data_type):
        field = data_type.value_field
        ready = field.with_type(_python_ready(field.type))
        if types.is_list(data_type):
            return pyarrow.list_(ready)
        if types.is_large_list(data_type):
            return pyarrow.large_list(ready)
        return pyarrow.list_(ready, data_type.list_size)
    if types.is_struct(data_type):
        return pyarrow.struct([field.with_type(_python_ready(field.type)) for field in data_type.fields])
    return data_type


class ParquetReader:
    def __init__(self, stream: ByteStream, source: str, cursor: ReadCursor) -> None:
        self._stream = stream
        self._source = source
        self._cursor = cursor

    def rows(self, window: ReadWindow) -> Iterator[Row]:
        spooled = seekable_copy(self._stream)
        try:
            yield from self._rows(spooled or self._stream, window)
        finally:
            if spooled is not None:
                spooled.close()

    def _rows(self, stream: ByteStream, window: ReadWindow) -> Iterator[Row]:
        layout = open_parquet(stream, self._source)
        names = layout.columns
        conversions = [_ColumnConversion.of(field.type) for field in layout.file.schema_arrow]
        errors = _arrow_errors()
        source = self._source
        cursor = self._cursor
        limit = window.end_offset if window.end_offset is not None else 1 << 62
        row = window.start_row
        for group in layout.groups:
            if group.offset < window.start_offset or group.rows == 0:
                continue
            if group.offset >= limit:
                return
            skip = window.skip_in_block if group.offset == window.start_offset else 0
            index = skip
            offset, rows_in_group = group.offset, group.rows
            try:
                for values in _group_values(layout.file, group, skip, conversions):
                    item = make_row(source, row, offset, index, dict(zip(names, values, strict=True)))
                    index += 1
                    row += 1
                    # Inline rather than through _advance: this runs once per row.
                    cursor.row = row
                    if index == rows_in_group:
                        cursor.offset, cursor.block_index = group.next_offset, 0
                    else:
                        cursor.offset, cursor.block_index = offset, index
                    yield item
            except SourceError:
                raise
            except errors as exc:
                # Pages hold no row markers: once a group fails, its remaining rows cannot be told
                # apart. Each becomes a reject, and the next group is read as usual.
                reason = f"unreadable Parquet row group {group.index + 1}"
                detail = _one_line(f"{type(exc).__name__}: {exc}")[:_DETAIL_CHARS]
                for lost in range(index, group.rows):
                    position = RowPosition(self._source, row, group.offset, lost)
                    row += 1
                    self._advance(group, row, lost + 1)
                    yield RejectedRow(position, [RowIssue(position, None, reason, detail)])

    def _advance(self, group: RowGroup, row: int, done_in_group: int) -> None:
        cursor = self._cursor
        cursor.row = row
        if done_in_group >= group.rows:
            cursor.offset, cursor.block_index = group.next_offset, 0
        else:
            cursor.offset, cursor.block_index = group.offset, done_in_group


@dataclass(frozen=True, slots=True)
class _ColumnConversion:
    """How one column's Arrow values become Python values."""

    # The type to cast to first (nanoseconds to microseconds), None when the file's type will do.
    cast_to: pyarrow.DataType | None
    # Maps become dicts. Asking pyarrow for that costs a Python call per value, ten times the
    # plain conversion, so only columns that hold a map ask.
    has_map: bool

    @classmethod
    def of(cls, data_type: pyarrow.DataType) -> _ColumnConversion:
        ready = _python_ready(data_type)
        return cls(None if ready == data_type else ready, _holds_map(data_type))

    def values(self, column: pyarrow.Array) -> list[Any]:
        if self.cast_to is not None:
            column = column.cast(self.cast_to, safe=False)
        values: list[Any] = column.to_pylist(maps_as_pydicts="strict") if self.has_map else column.to_pylist()
        return values


def _holds_map(data_type: pyarrow.DataType) -> bool:
    import pyarrow  # noqa: PLC0415

    if pyarrow.types.is_map(data_type):
        return True
    return any(_holds_map(data_type.field(index).type) for index in range(data_type.num_fields))


def _group_values(
    file: pyarrow.parquet.ParquetFile, group: RowGroup, skip: int, conversions: list[_ColumnConversion]
) -> Iterator[tuple[Any, ...]]:
    """The rows of one row group after its first ``skip``, as tuples of Python values in column
    order, decoded a batch at a time."""
    batches = file.iter_batches(batch_size=BATCH_ROWS, row_groups=[group.index], use_threads=False)
    for whole_batch in batches:
        if skip >= whole_batch.num_rows:
            skip -= whole_batch.num_rows
            continue
        batch = whole_batch.slice(skip) if skip else whole_batch
        skip = 0
        if not conversions:
            yield from [()] * batch.num_rows
            continue
        columns = [
            conversion.values(column) for conversion, column in zip(conversions, batch.columns, strict=True)
        ]
        yield from zip(*columns, strict=True)


def _one_line(text: str) -> str:
    """pyarrow's messages span lines and may quote raw bytes; a reject's detail is one plain line."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())


def seekable_copy(stream: ByteStream) -> Any:
    """A temporary copy of a gzip or zip member (their streams cannot seek from the end, which a
    Parquet footer needs), or None when ``stream`` is the file itself."""
    if not decompresses_as_read(stream):
        return None
    import shutil  # noqa: PLC0415  (only wrapped Parquet files need them; kept off the import path)
    import tempfile  # noqa: PLC0415

    copy = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY_BYTES)  # noqa: SIM115  (closed by the caller)
    try:
        shutil.copyfileobj(stream, copy, _COPY_CHUNK_BYTES)
        copy.seek(0)
    except BaseException:
        copy.close()
        raise
    return copy
