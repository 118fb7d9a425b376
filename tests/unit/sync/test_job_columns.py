"""A file's header is checked against the mapping before any row is sent: a missing identifier
column, a missing column of a clear field and, when strict, any missing column fail the run with
nothing sent; other missing columns are warnings in the report and the log."""

from __future__ import annotations

import gzip
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.mapping import load_mapping
from cdpbridge.sources import SourceSpec, opening, plan_byte_ranges
from cdpbridge.sync.job import JobRequest, PartOutcome, RunPart, run_part
from tests.unit.sync.job_helpers import FakeBraze, Workdir

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string, strategy: clear}
  - {column: region, attribute: region, type: string, strategy: set}
"""

ROWS = [f"u{n},gold,north-{n}" for n in range(40)]


def run(workdir: Workdir, braze: FakeBraze, path: Path, mapping: str = MAPPING) -> PartOutcome:
    request = JobRequest("generic", str(path), "v1", "run1", datetime.now(UTC), load_mapping(mapping))
    return run_part(request, workdir.services(braze))


def test_a_renamed_clear_column_fails_the_run_and_unsets_nothing(workdir: Workdir) -> None:
    # Given a file whose 'tier' column is now spelled 'Tier', for a clear field
    path = workdir.write("users.csv", "id,Tier,region", ROWS)
    braze = FakeBraze()
    # When it runs
    outcome = run(workdir, braze, path)
    # Then nothing is sent, and the report says the run failed, naming the file and the column
    assert braze.calls == 0
    assert outcome.report is not None
    assert outcome.report["status"] == "failed"
    assert outcome.report["rows_read"] == 0
    assert outcome.report["missing_columns"] == ["tier"]
    failure = outcome.report["failure"]
    assert str(path) in failure
    assert "fields[0].column: the file has no column 'tier'" in failure
    assert "north-" not in failure


def test_an_optional_clear_column_may_be_missing_and_then_clears_nothing(workdir: Workdir) -> None:
    # Given the same file, with the clear field marked optional
    path = workdir.write("users.csv", "id,Tier,region", ROWS)
    braze = FakeBraze()
    mapping = MAPPING.replace("strategy: clear}", "strategy: clear, optional: true}")
    # When it runs
    outcome = run(workdir, braze, path, mapping)
    # Then the other fields are written and 'tier' is neither unset nor reported
    assert outcome.report is not None and outcome.report["status"] == "completed"
    written = braze.objects("attributes")
    assert len(written) == 40
    assert all("tier" not in body and body["region"].startswith("north-") for body in written)
    assert outcome.report["missing_columns"] == []
    assert outcome.report["warnings"] == []


def test_a_missing_set_column_is_a_warning_in_the_report_and_the_log(
    workdir: Workdir, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a file without the 'region' column of a set field
    path = workdir.write("users.csv", "id,tier", [f"u{n},gold" for n in range(40)])
    braze = FakeBraze()
    caplog.set_level(logging.WARNING)
    # When it runs
    outcome = run(workdir, braze, path)
    # Then the rows are sent without it, and the report and the log name the file and the column
    assert outcome.report is not None and outcome.report["status"] == "completed"
    assert [body["tier"] for body in braze.objects("attributes")] == ["gold"] * 40
    assert outcome.report["missing_columns"] == ["region"]
    assert outcome.report["warnings"] == [
        f"{path}: the file has no column 'region': nothing is written from it"
    ]
    logged = [
        record
        for record in caplog.records
        if record.getMessage() == "the file lacks columns the mapping names"
    ]
    assert len(logged) == 1
    assert logged[0].__dict__["missing_columns"] == ["region"]
    assert "gold" not in str(logged[0].__dict__["warnings"])


def test_strict_makes_any_missing_column_a_failure(workdir: Workdir) -> None:
    path = workdir.write("users.csv", "id,tier", [f"u{n},gold" for n in range(40)])
    braze = FakeBraze()
    outcome = run(workdir, braze, path, MAPPING.replace("source:", "strict: true\nsource:"))
    assert braze.calls == 0
    assert outcome.report is not None and outcome.report["status"] == "failed"
    assert "the file has no column 'region'" in outcome.report["failure"]


def test_a_missing_identifier_column_fails_every_part_of_a_fanned_out_run_once(workdir: Workdir) -> None:
    # Given a large file whose identifier column is spelled 'ID', read in two parts
    path = workdir.write("users.csv", "ID,tier,region", [f"u{n},gold,north" for n in range(2000)])
    spec = SourceSpec(format="csv")
    ranges = plan_byte_ranges(str(path), spec, target_bytes=path.stat().st_size // 2)
    request = JobRequest("generic", str(path), "v1", "run1", datetime.now(UTC), load_mapping(MAPPING))
    braze = FakeBraze()
    # When both parts run
    outcomes = [
        run_part(replace(request, part=RunPart(str(index), len(ranges), byte_range)), workdir.services(braze))
        for index, byte_range in enumerate(ranges)
    ]
    # Then nothing is sent and the one report says so once, for both parts
    assert len(ranges) == 2
    assert braze.calls == 0
    report = outcomes[-1].report
    assert report is not None and report["status"] == "failed"
    assert report["failure"].startswith("parts 0, 1: the file does not fit the mapping")
    assert report["failure"].count("identifier.column: the file has no column 'id'") == 1
    assert report["missing_columns"] == ["id"]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_part_opens_its_object_once_for_the_header_check_and_the_read(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    # Given a file that fits the mapping, plain or gzip (whose reader reads the raw file onward)
    path = workdir.write("users.csv", "id,tier,region", ROWS)
    if compressed:
        packed = path.with_suffix(".csv.gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        path = packed
    opened: list[str] = []
    open_raw = opening.open_raw

    def counting_open_raw(location: str, **options: Any) -> Any:
        opened.append(location)
        return open_raw(location, **options)

    monkeypatch.setattr(opening, "open_raw", counting_open_raw)
    # When it runs
    outcome = run(workdir, FakeBraze(), path)
    # Then the header was checked and every row read from one opening of the object
    assert opened == [str(path)]
    assert outcome.report is not None
    assert outcome.report["status"] == "completed"
    assert outcome.report["rows_read"] == len(ROWS)
