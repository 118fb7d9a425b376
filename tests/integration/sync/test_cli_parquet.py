"""`cdpbridge run` on Parquet files against the emulator: typed columns end as the same Braze profiles
as the CSV of the same customers, a second run sends nothing, parts of whole row groups make the same
run as one process, a corrupt row group becomes rejects while the other groups are sent, and a run
killed inside a row group resumes from its checkpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdpbridge.mapping import load_mapping
from cdpbridge.sync.artifacts import iter_rejects
from cdpbridge.sync.job import JobRequest, run_part
from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import (
    CUSTOMER_COLUMNS,
    CUSTOMER_MAPPING_YAML,
    CUSTOMER_PARQUET_MAPPING_YAML,
    customer_rows,
    write_customers_csv,
    write_customers_parquet,
)

from .conftest import Braze, Runner

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


ORDERS_MAPPING = """\
version: 1
integration: generic
source: {format: parquet}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string, strategy: set}
  - {column: visits, attribute: visits, type: integer, strategy: sum}
events:
  - {name: order_placed, time_column: at, properties: {amount: {column: amount, type: float}}}
purchases:
  - {product_id_column: sku, currency: EUR, price_column: amount, time_column: at}
"""
ORDER_USERS = 50


def write_orders_parquet(path: Path, rows: int) -> Path:
    """Orders with typed columns in row groups of 700 rows (chunks of 200 rows end mid-group)."""
    table = pa.table(
        {
            "id": [f"u{index % ORDER_USERS}" for index in range(rows)],
            "tier": [f"tier{index % 3}" for index in range(rows)],
            "visits": pa.array([1] * rows, pa.int32()),
            "at": pa.array(
                [datetime(2026, 11, 1 + index % 9, 10, tzinfo=UTC) for index in range(rows)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "amount": pa.array([Decimal(f"{index}.5") for index in range(rows)], pa.decimal128(12, 2)),
            "sku": [f"sku{index % 7}" for index in range(rows)],
        }
    )
    pq.write_table(table, path, row_group_size=700)
    return path


def test_a_parquet_run_killed_mid_row_group_resumes_from_its_checkpoint_without_sending_twice(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    path = write_orders_parquet(tmp_path / "orders.parquet", 3000)
    # Given a reference: the whole file in one go, on a fresh emulator
    reference = runner.run(path, ORDERS_MAPPING, run_id="reference", chunk_rows=200)
    expected = {f"u{n}": braze.user(f"u{n}") for n in range(ORDER_USERS)}
    braze.reset()
    runner.workdir = tmp_path / "second"
    runner.workdir.mkdir()

    # When a run dies after a few chunks (a checkpoint after each, inside the second row group)
    crashes = {"left": 5}

    def crash_after_a_few_chunks(_counters: object) -> None:
        crashes["left"] -= 1
        if crashes["left"] == 0:
            raise KeyboardInterrupt("killed")

    services = runner.services(chunk_rows=200, checkpoint_interval_s=0.0)
    with pytest.raises(KeyboardInterrupt):
        run_part(_request(path, "resumed"), services, progress=crash_after_a_few_chunks)
    partial_events = sum(len((braze.user(f"u{n}") or {"events": []})["events"]) for n in range(ORDER_USERS))
    assert 0 < partial_events < 3000
    resumed = run_part(_request(path, "resumed"), runner.services(chunk_rows=200, checkpoint_interval_s=0.0))

    # Then the final state is the reference's: every event, purchase and increment exactly once
    assert resumed.finished and resumed.counters.rows_read == 3000
    assert reference.counters.events_sent == 3000
    for n in range(ORDER_USERS):
        got, want = braze.user(f"u{n}"), expected[f"u{n}"]
        assert got is not None and want is not None
        assert got["attributes"] == want["attributes"]
        assert got["attributes"]["visits"] == 60
        assert len(got["events"]) == len(want["events"]) == 60
        assert len(got["purchases"]) == len(want["purchases"]) == 60


def _request(path: Path, run_id: str) -> JobRequest:
    stat = path.stat()
    return JobRequest(
        "generic",
        str(path),
        f"{stat.st_size}-{stat.st_mtime_ns}",
        run_id,
        datetime.now(UTC),
        load_mapping(ORDERS_MAPPING),
    )
