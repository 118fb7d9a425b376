"""Splitting a file for a ``--workers`` run: about equal ranges that cover it, each on a row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdpbridge.mapping import load_mapping
from cdpbridge.sync.job import JobRequest
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv
from cdpbridge_local.parts import run_parts, split


def request_for(path: Path) -> JobRequest:
    mapping = load_mapping(CUSTOMER_MAPPING_YAML)
    return JobRequest("generic", str(path), "v1", "run-1", datetime.now(UTC), mapping)


def test_ranges_cover_the_file_in_about_equal_parts_that_start_on_rows(tmp_path: Path) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 3_000)
    data = path.read_bytes()

    ranges = split(request_for(path), 4)

    assert len(ranges) == 4
    assert ranges[0].start == 0
    assert [earlier.end for earlier in ranges[:-1]] == [later.start for later in ranges[1:]]
    assert ranges[-1].end == len(data)
    assert all(data[byte_range.start - 1 : byte_range.start] == b"\n" for byte_range in ranges[1:])
    sizes = [(byte_range.end or len(data)) - byte_range.start for byte_range in ranges]
    assert max(sizes) - min(sizes) < len(data) // 20
    # first_row numbers each range's first row as a sequential read would (row 1 follows the header)
    rows_before = [data[: byte_range.start].count(b"\n") for byte_range in ranges[1:]]
    assert [byte_range.first_row for byte_range in ranges[1:]] == rows_before


def test_one_worker_or_a_tiny_file_gives_one_range(tmp_path: Path) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 2)
    assert len(split(request_for(path), 1)) == 1
    assert len(split(request_for(path), 8)) <= 2


def test_workers_below_one_are_refused(tmp_path: Path) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 2)
    with pytest.raises(ValueError, match="at least 1"):
        split(request_for(path), 0)


def test_running_parts_needs_two_ranges_or_more(tmp_path: Path) -> None:
    path = write_customers_csv(tmp_path / "c.csv", 2)
    request = request_for(path)
    with pytest.raises(ValueError, match="at least two ranges"):
        run_parts(request, split(request, 1), lambda: None)  # type: ignore[arg-type,return-value]
