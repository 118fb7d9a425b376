"""`cdpbridge run` on Parquet files against the emulator: typed columns end as the same Braze profiles
as the CSV of the same customers, a second run sends nothing, parts of whole row groups make the same
run as one process, and a corrupt row group becomes rejects while the other groups are sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cdpbridge.sync.artifacts import iter_rejects
from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import (
    CUSTOMER_COLUMNS,
    CUSTOMER_MAPPING_YAML,
    CUSTOMER_PARQUET_MAPPING_YAML,
    customer_rows,
    write_customers_csv,
    write_customers_parquet,
)

from .conftest import Braze

pytestmark = pytest.mark.integration

ROWS = 600
GROUP_ROWS = 100
ATTRIBUTES = len(CUSTOMER_COLUMNS) - 1


def run(data: Path, root: Path, braze: Braze, mapping_yaml: str, *extra: str) -> int:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "mapping.yaml"
    config.write_text(mapping_yaml)
    return main(
        [
            "run",
            str(data),
            "--config",
            str(config),
            "--state",
            str(root / "state.sqlite3"),
            "--report-dir",
            str(root / "reports"),
            "--braze-url",
            braze.url,
            "--api-key",
            "local-dev-key",
            "--quiet",
            *extra,
        ]
    )


def reports(root: Path) -> list[dict[str, Any]]:
    found = [json.loads(path.read_text()) for path in (root / "reports").rglob("*.json")]
    return sorted(found, key=lambda report: report["started_at"])


def profiles(braze: Braze, count: int) -> dict[str, dict[str, Any]]:
    ids = [row[0] for row in customer_rows(count)]
    return {external_id: braze.attributes(external_id) for external_id in ids}


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip"])
def test_a_parquet_file_ends_as_the_same_profiles_as_its_csv(
    tmp_path: Path, braze: Braze, codec: str
) -> None:
    # Given the same customers as a CSV file and as a Parquet file with typed columns
    csv_file = write_customers_csv(tmp_path / "customers.csv", ROWS)
    parquet_file = write_customers_parquet(
        tmp_path / "customers.parquet", ROWS, row_group_rows=GROUP_ROWS, compression=codec
    )
    assert pq.ParquetFile(parquet_file).metadata.num_row_groups == ROWS // GROUP_ROWS

    # When the CSV runs into one emulator and the Parquet file into the same emulator emptied
    assert run(csv_file, tmp_path / "csv", braze, CUSTOMER_MAPPING_YAML) == 0
    from_csv = profiles(braze, ROWS)
    braze.reset()
    assert run(parquet_file, tmp_path / "parquet", braze, CUSTOMER_PARQUET_MAPPING_YAML) == 0

    # Then Braze holds exactly the same profiles: decimals as numbers, the Berlin timestamps as the
    # same UTC times, dates as dates, booleans and integers as such
    from_parquet = profiles(braze, ROWS)
    assert from_parquet == from_csv
    first = from_parquet["C00000000"]
    assert first["lifetime_value"] == 1244.52 and first["loyalty_points"] == 882
    assert first["last_order_at"] == "2026-07-09T16:15:00Z" and first["dob"] == "1973-05-06"
    assert first["newsletter"] is False
    (report,) = reports(tmp_path / "parquet")
    assert report["status"] == "completed"
    assert report["rows_read"] == ROWS and report["rows_rejected"] == 0
    assert report["attributes_sent"] == ROWS * ATTRIBUTES


def test_a_second_run_of_the_same_parquet_file_sends_nothing(tmp_path: Path, braze: Braze) -> None:
    data = write_customers_parquet(tmp_path / "customers.parquet", ROWS, row_group_rows=GROUP_ROWS)
    assert run(data, tmp_path, braze, CUSTOMER_PARQUET_MAPPING_YAML) == 0
    requests_before = braze.stats()["requests"]

    assert run(data, tmp_path, braze, CUSTOMER_PARQUET_MAPPING_YAML) == 0

    second = reports(tmp_path)[-1]
    assert second["attributes_sent"] == 0
    assert second["attributes_unchanged"] == ROWS * ATTRIBUTES
    assert braze.stats()["requests"] == requests_before


def test_parts_of_whole_row_groups_make_the_same_run_as_one_process(tmp_path: Path, braze: Braze) -> None:
    data = write_customers_parquet(tmp_path / "customers.parquet", ROWS, row_group_rows=GROUP_ROWS)
    assert run(data, tmp_path / "one", braze, CUSTOMER_PARQUET_MAPPING_YAML) == 0
    (single,) = reports(tmp_path / "one")
    braze.reset()

    assert run(data, tmp_path / "three", braze, CUSTOMER_PARQUET_MAPPING_YAML, "--workers", "3") == 0

    (parallel,) = reports(tmp_path / "three")
    assert parallel["parts"] == 3 and parallel["status"] == "completed"
    counted = ("rows_read", "rows_rejected", "users", "users_written", "attributes_sent")
    assert {name: parallel[name] for name in counted} == {name: single[name] for name in counted}
    assert braze.user_count() == ROWS


def test_a_corrupt_row_group_is_rejected_and_the_other_groups_are_sent(tmp_path: Path, braze: Braze) -> None:
    # Given a Parquet file whose fourth row group has an undecodable page header
    data = write_customers_parquet(tmp_path / "customers.parquet", ROWS, row_group_rows=GROUP_ROWS)
    raw = bytearray(data.read_bytes())
    chunk = pq.ParquetFile(data).metadata.row_group(3).column(0)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    raw[start : start + 16] = b"\xff" * 16
    data.write_bytes(bytes(raw))

    # When it runs
    assert run(data, tmp_path, braze, CUSTOMER_PARQUET_MAPPING_YAML) == 0

    # Then the group's 100 rows are in the rejects file, named by row and group, and the rest is sent
    (report,) = reports(tmp_path)
    assert report["rows_read"] == ROWS and report["rows_rejected"] == GROUP_ROWS
    rejects = list(iter_rejects(Path(report["rejects_file"]).read_bytes()))
    assert sorted(int(row["row"]) for row in rejects) == list(range(301, 401))
    assert {row["reason"] for row in rejects} == {"unreadable Parquet row group 4"}
    assert braze.user_count() == ROWS - GROUP_ROWS
    assert braze.user("C00000300") is None and braze.user("C00000400") is not None
