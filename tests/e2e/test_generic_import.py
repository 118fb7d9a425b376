"""From a file landing in the drop bucket, through the template's routing, to the emulator's profiles."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, customer_rows, write_customers_csv
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(template=TEMPLATE, failed_message_visibility_s=0) as running:
        running.put_object("config/generic.yaml", CUSTOMER_MAPPING_YAML)
        yield running


def reports(stack: LocalStack) -> dict[str, dict[str, Any]]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/generic/")
    found = {}
    for item in listing.get("Contents", []):
        if item["Key"].endswith(".json"):
            body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = orjson.loads(body)
    return found


def profile(stack: LocalStack, external_id: str) -> dict[str, Any]:
    assert stack.emulator is not None
    response = requests.get(f"{stack.emulator.url}/_emulator/users/{external_id}", timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_a_dropped_file_reaches_braze_and_a_repeat_writes_nothing(stack: LocalStack, tmp_path: Path) -> None:
    # Given a customer file dropped into inbound/generic/
    path = write_customers_csv(tmp_path / "customers.csv", 400)
    before = set(reports(stack))
    stack.put_object("inbound/generic/customers.csv", path.read_bytes())
    # When the queues drain
    stack.drain(timeout_s=120)
    # Then every profile is exact and the run's report is in the bucket
    new = {k: v for k, v in reports(stack).items() if k not in before}
    assert len(new) == 1
    (report,) = new.values()
    assert report["rows_read"] == 400
    assert report["attributes_sent"] == 400 * 19
    for row in list(customer_rows(400))[::37]:
        held = profile(stack, row[0])["attributes"]
        assert held["first_name"] == row[1]
        assert held["loyalty_points"] == int(row[11])
        assert held["zip_code"] == row[15]

    # And the same content dropped again under another name writes no attribute
    stack.put_object("inbound/generic/customers-again.csv", path.read_bytes())
    stack.drain(timeout_s=120)
    latest = {
        k: v for k, v in reports(stack).items() if k not in before and v["source"].endswith("again.csv")
    }
    (again,) = latest.values()
    assert again["attributes_sent"] == 0
    assert again["attributes_unchanged"] == 400 * 19


def test_bad_rows_land_in_a_rejects_file_in_the_bucket(stack: LocalStack) -> None:
    body = (
        "customer_id,first_name,loyalty_points,email\n"
        "X1,Ann,10,ann@example.com\n"
        ",Nobody,5,nobody@example.com\n"
        "X2,Bob,ten,bob@example.com\n"
    )
    stack.put_object(
        "config/generic/small.yaml",
        CUSTOMER_MAPPING_YAML.split("fields:")[0]
        + "fields:\n"
        + "  - {column: first_name, attribute: first_name, type: string, strategy: set}\n"
        + "  - {column: loyalty_points, attribute: loyalty_points, type: integer, strategy: set}\n"
        + "  - {column: email, attribute: email, type: string, strategy: set}\n",
    )
    stack.put_object("inbound/generic/small/bad.csv", body)
    stack.drain(timeout_s=60)
    (report,) = [r for r in reports(stack).values() if r["source"].endswith("small/bad.csv")]
    assert report["rows_read"] == 3
    assert report["rows_rejected"] == 2
    rejects_key = report["rejects_file"].split(f"s3://{stack.drop_bucket}/", 1)[1]
    rejects = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=rejects_key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(rejects)))
    assert [(r["row"], r["column"]) for r in rows] == [("2", "customer_id"), ("3", "loyalty_points")]
    assert profile(stack, "X1")["attributes"]["loyalty_points"] == 10
