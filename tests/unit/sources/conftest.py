"""Helpers for the source reader tests: write a file, read it all, read it resumed or by ranges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdpbridge.records import RejectedRow, SourceRow
from cdpbridge.sources import ByteRange, ResumePoint, SourceSpec, open_rows

Row = SourceRow | RejectedRow

CURRENTS_FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "currents"


def good(item: Row) -> SourceRow:
    """The item as a SourceRow (failing the test when it is a RejectedRow)."""
    assert isinstance(item, SourceRow), item
    return item


def bad(item: Row) -> RejectedRow:
    """The item as a RejectedRow (failing the test when it is a SourceRow)."""
    assert isinstance(item, RejectedRow), item
    return item


def read_all(location: str | Path, spec: SourceSpec, **options: Any) -> list[Row]:
    with open_rows(str(location), spec, **options) as rows:
        return list(rows)


def read_with_resume_points(location: str | Path, spec: SourceSpec) -> tuple[list[Row], list[ResumePoint]]:
    """Every row, and the resume point taken before the first row and after each row."""
    points: list[ResumePoint] = []
    items: list[Row] = []
    with open_rows(str(location), spec) as rows:
        points.append(rows.resume_point())
        for item in rows:
            items.append(item)
            points.append(rows.resume_point())
    return items, points


def read_ranges(location: str | Path, spec: SourceSpec, ranges: list[ByteRange], **options: Any) -> list[Row]:
    items: list[Row] = []
    for byte_range in ranges:
        items.extend(read_all(location, spec, byte_range=byte_range, **options))
    return items


@pytest.fixture
def write_file(tmp_path: Path):
    def write(name: str, data: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    return write
