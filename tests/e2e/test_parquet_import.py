"""A Parquet file landing in the drop bucket: planned from S3 into parts of whole row groups, each part
read through ranged GETs by its own invocation, one report, the profiles the typed columns say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import requests

from cdpbridge_local.demo_data import CUSTOMER_PARQUET_MAPPING_YAML, customer_rows, write_customers_parquet
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
MIB = 1024 * 1024
ROWS = 24_000
GROUP_ROWS = 3_000


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Files from 1 MiB on fan out, in parts of about 1 MiB (the smallest the settings allow).
    fanout = {"FANOUT_THRESHOLD_BYTES": str(MIB), "FANOUT_PART_BYTES": str(MIB)}
    with LocalStack.start(
        template=TEMPLATE,
        stack_name="parquet-e2e",
        env_vars={"GenericImportFunction": fanout},
        failed_message_visibility_s=0,
    ) as running:
        running.put_object("config/generic/parquet.yaml", CUSTOMER_PARQUET_MAPPING_YAML)
        yield running


def reports(stack: LocalStack) -> list[dict[str, Any]]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/generic/")
    found = []
    for item in listing.get("Contents", []):
        if item["Key"].endswith(".json"):
            body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            found.append(orjson.loads(body))
    return found


def attributes(stack: LocalStack, external_id: str) -> dict[str, Any]:
    assert stack.emulator is not None
    response = requests.get(f"{stack.emulator.url}/_emulator/users/{external_id}", timeout=10)
    response.raise_for_status()
    held: dict[str, Any] = response.json()["attributes"]
    return held


def test_a_dropped_parquet_file_fans_out_by_row_groups_and_ends_as_the_typed_profiles(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given a Parquet file of eight row groups, larger than the fan-out threshold
    path = write_customers_parquet(tmp_path / "customers.parquet", ROWS, row_group_rows=GROUP_ROWS)
    assert pq.ParquetFile(path).metadata.num_row_groups == ROWS // GROUP_ROWS
    assert path.stat().st_size > MIB

    # When it lands in the bucket and the queues drain
    stack.put_object("inbound/generic/parquet/customers.parquet", path.read_bytes())
    stack.drain(timeout_s=300)

    # Then one report covers every part and every row
    (report,) = [r for r in reports(stack) if r["source"].endswith("parquet/customers.parquet")]
    assert report["status"] == "completed"
    assert report["parts"] >= 2
    assert report["rows_read"] == ROWS and report["rows_rejected"] == 0
    assert report["attributes_sent"] == ROWS * 19
    # And the profiles hold the typed values as Braze takes them
    rows = list(customer_rows(ROWS))
    for row in [*rows[:: ROWS // 12], rows[-1]]:
        held = attributes(stack, row[0])
        assert held["loyalty_points"] == int(row[11])
        assert held["lifetime_value"] == float(row[12])
        assert held["last_order_at"] == row[14]
        assert held["dob"] == row[5]
        assert held["newsletter"] is (row[16] == "true")
        assert held["zip_code"] == row[15]
