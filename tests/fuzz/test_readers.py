"""The source readers under generated hostile files: they never crash or hang, every damaged row is
a reject with its reason, good rows come through, resuming and byte ranges agree with a whole read,
and a decompression bomb stops at its limit with memory bounded."""

from __future__ import annotations

import tempfile
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import ResumePoint, SourceError, SourceSpec, open_rows, plan_byte_ranges
from cdpbridge.sources.opening import RATIO_CHECKED_FROM_BYTES
from tests.fuzz.hostile import (
    GOOD,
    Bomb,
    HostileFile,
    bombs,
    fuzz_settings,
    hostile_files,
    mutate,
    mutations,
    spec_options,
    wrap,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(120)]

Row = SourceRow | RejectedRow
# Damage the mapper finds (the reader reads these rows as rows).
MAPPER_DAMAGE = frozenset({"no_id", "name_too_long"})
# Reads are cut into small pieces, so that rows and fields straddle every read boundary.
READ_CHUNKS = st.sampled_from((7, 64, 1 << 20))


def _read(path: Path, spec: SourceSpec, **options: object) -> tuple[list[Row], SourceError | None]:
    items: list[Row] = []
    try:
        with open_rows(str(path), spec, **options) as rows:  # type: ignore[arg-type]
            items.extend(rows)
    except SourceError as error:
        return items, error
    return items, None


def _read_with_points(
    path: Path, spec: SourceSpec
) -> tuple[list[Row], list[ResumePoint], SourceError | None]:
    items: list[Row] = []
    points: list[ResumePoint] = []
    try:
        with open_rows(str(path), spec) as rows:
            points.append(rows.resume_point())
            for item in rows:
                items.append(item)
                points.append(rows.resume_point())
    except SourceError as error:
        return items, points, error
    return items, points, None


def _assert_well_formed(items: list[Row], location: str) -> None:
    """Every item is a row or a reject of this file, numbered upwards; every reject says why."""
    numbers = [item.position.row for item in items]
    assert numbers == sorted(set(numbers)), numbers
    for item in items:
        assert isinstance(item, SourceRow | RejectedRow)
        assert item.position.source.startswith(location)
        if isinstance(item, RejectedRow):
            assert item.issues
            assert all(issue.reason.strip() for issue in item.issues)


def _assert_resumes_and_ranges_agree(path: Path, spec: SourceSpec, resume_at: float) -> None:
    """A read resumed after any row yields exactly the rest; byte ranges read like the whole file."""
    items, points, error = _read_with_points(path, spec)
    done = int(resume_at * (len(points) - 1)) if points else 0
    if points:
        rest, rest_error = _read(path, spec, resume=points[done])
        assert rest == items[done:]
        assert (rest_error is None) == (error is None)
    try:
        ranges = plan_byte_ranges(str(path), spec, target_bytes=97)
    except SourceError:
        return  # refused with a reason before anything is read
    by_ranges: list[Row] = []
    range_error: SourceError | None = None
    for byte_range in ranges:
        part, range_error = _read(path, spec, byte_range=byte_range)
        by_ranges.extend(part)
        if range_error is not None:
            break
    if error is None and range_error is None:
        assert by_ranges == items


@given(hostile=hostile_files(), chunk=READ_CHUNKS, resume_at=st.floats(0.0, 1.0))
@fuzz_settings(max_examples=80)
def test_good_rows_come_through_and_each_damaged_row_is_one_reject(
    hostile: HostileFile, chunk: int, resume_at: float
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Given a file of good rows and rows damaged in ways that stay inside the row
        path = Path(folder) / hostile.file_name
        path.write_bytes(hostile.data())
        spec = SourceSpec(**spec_options(hostile), read_chunk_bytes=chunk)

        # When it is read
        items, error = _read(path, spec)

        # Then it reads to the end, one item per row, numbered as the rows are
        assert error is None, error
        _assert_well_formed(items, str(path))
        assert [item.position.row for item in items] == list(range(1, len(hostile.rows) + 1))
        for item, row in zip(items, hostile.rows, strict=True):
            if row.kind == GOOD:
                # Good rows (formula-like cells included) come through as the text they hold
                assert isinstance(item, SourceRow), (row, item)
                assert item.values == {"id": row.id, "name": row.name}
            elif row.kind in MAPPER_DAMAGE:
                assert isinstance(item, SourceRow), (row, item)
            else:
                # Each damaged row is one reject with its reason
                assert isinstance(item, RejectedRow), (row, item)
        # And reading again from any resume point, or by byte ranges, gives the same rows
        _assert_resumes_and_ranges_agree(path, spec, resume_at)


@given(
    hostile=hostile_files(),
    edits=mutations(),
    outside=st.booleans(),
    chunk=READ_CHUNKS,
    resume_at=st.floats(0.0, 1.0),
)
@fuzz_settings(max_examples=150)
def test_any_damage_to_a_file_is_a_reject_or_an_error_naming_the_file(
    hostile: HostileFile, edits: list[tuple[str, float, bytes]], outside: bool, chunk: int, resume_at: float
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Given a file damaged anywhere: its text, or its gzip or zip wrapping (truncated, corrupt)
        if outside or hostile.wrapper == "none":
            data = mutate(hostile.data(), edits)
        else:
            data = replace(hostile, wrapper="none").inner()
            data = wrap(mutate(data, edits), hostile.wrapper, f"users.{hostile.format}")
        path = Path(folder) / hostile.file_name
        path.write_bytes(data)
        spec = SourceSpec(**spec_options(hostile), read_chunk_bytes=chunk)

        # When it is read
        items, error = _read(path, spec)

        # Then it yields rows and rejects with reasons, and stops, if at all, with an error that
        # names the file (never another exception)
        _assert_well_formed(items, str(path))
        if error is not None:
            assert str(path) in str(error)
            assert error.reason.strip()
        _assert_resumes_and_ranges_agree(path, spec, resume_at)


@given(bomb=bombs())
@fuzz_settings(max_examples=12)
def test_a_decompression_bomb_stops_at_its_limit_with_memory_bounded(bomb: Bomb) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Given a bomb of 1 to 16 GiB of zeros, spaces or valid rows: a gzip or zip file,
        # or a deflate block inside an Avro file
        path = Path(folder) / bomb.file_name
        path.write_bytes(bomb.data())

        # When it is read, with the memory it allocates traced
        tracemalloc.start()
        try:
            items, error = _read(path, SourceSpec(format=bomb.format))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        # Then a compressed file stops with an error naming the file, at a limit reached after a
        # bounded amount of decompressed data whatever the size of the bomb; an Avro block past the
        # record limit is one reject, never decompressed whole; and memory stays bounded
        _assert_well_formed(items, str(path))
        if bomb.wrapper == "avro deflate block":
            assert error is None
            assert [item.issues[0].reason for item in items if isinstance(item, RejectedRow)] == [
                "Avro block too large"
            ]
        else:
            assert error is not None
            assert str(path) in str(error)
            if "max_compression_ratio" in error.reason:
                assert error.offset is not None
                assert error.offset <= 4 * RATIO_CHECKED_FROM_BYTES
        assert peak < 8 * RATIO_CHECKED_FROM_BYTES, f"peak {peak / 2**20:.0f} MiB"
