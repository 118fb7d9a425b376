"""Amperity through the template's wiring: query results (CSV, and Parquet once the reader is in)
and an audience file dropped into inbound/amperity/ end as exactly the expected profiles in Braze,
without creating users Braze does not know, and a second drop of the same file writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cdpbridge.integrations.amperity import (
    EXAMPLE_AUDIENCES_MAPPING_PATH,
    EXAMPLE_AUDIENCES_PATH,
    EXAMPLE_MAPPING_PATH,
    EXAMPLE_RESULTS_PATH,
)
from cdpbridge_local.stack import LOCAL_API_KEY, LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# Exactly what Braze holds for the known users once the example results ran (see the CSV beside the
# example mapping): all eight Amperity types, standard fields where they belong.
EXPECTED: dict[str, dict[str, Any]] = {
    "AMP-1001": {
        "first_name": "Anna",
        "last_name": "Becker",
        "dob": "1988-03-14",
        "home_city": "Berlin",
        "loyalty_member": True,
        "last_purchase_at": "2024-05-06T07:55:12Z",
        "l12m_monetary": 1234.5,
        "predicted_clv": 2875.125,
        "l12m_frequency": 14,
        "preferred_store": "Berlin Mitte",
        "loyalty_tier": "gold",
    },
    "AMP-1002": {
        "first_name": "Luc",
        "last_name": "Dubois",
        "dob": "1979-11-02",
        "home_city": "Lyon",
        "loyalty_member": False,
        "last_purchase_at": "2024-05-05T21:14:09Z",
        "l12m_monetary": 89.99,
        "predicted_clv": 310.5,
        "l12m_frequency": 2,
        "preferred_store": "Lyon Part-Dieu",
        "loyalty_tier": "silver",
    },
    "AMP-1003": {
        "first_name": "Sofía",
        "last_name": "García",
        "dob": "1995-07-30",
        "home_city": "Sevilla",
        "loyalty_member": True,
        "last_purchase_at": "2024-04-28T13:00:00Z",
        "l12m_monetary": 12345678.9,
        "predicted_clv": 0.25,
        "l12m_frequency": 37,
        "preferred_store": "Málaga Plaza Mayor 1",
        "loyalty_tier": "platinum",
    },
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE, stack_name="amperity-e2e", failed_message_visibility_s=0
    ) as running:
        running.put_object("config/amperity.yaml", EXAMPLE_MAPPING_PATH.read_bytes())
        running.put_object("config/amperity/audiences.yaml", EXAMPLE_AUDIENCES_MAPPING_PATH.read_bytes())
        yield running


def emulator(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    assert stack.emulator is not None
    response = requests.request(
        method,
        f"{stack.emulator.url}{path}",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {LOCAL_API_KEY}"},
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def seed_known_users(stack: LocalStack, prefix: str = "AMP-") -> None:
    """A fresh Braze holding <prefix>1001 to 1004 as some other source left them (not 1005)."""
    emulator(stack, "POST", "/_emulator/reset", {"config": False})
    seeded = emulator(
        stack,
        "POST",
        "/users/track",
        {
            "attributes": [
                {"external_id": f"{prefix}1001", "loyalty_tier": "silver"},
                {"external_id": f"{prefix}1002"},
                {"external_id": f"{prefix}1003", "first_name": "Sofia"},
                {"external_id": f"{prefix}1004", "loyalty_tier": "silver"},
            ]
        },
    )
    assert not seeded.get("errors"), seeded


def attributes(stack: LocalStack, external_id: str) -> dict[str, Any] | None:
    found = emulator(stack, "GET", f"/_emulator/users/{external_id}")
    return None if found is None else dict(found["attributes"])


def new_reports(stack: LocalStack, before: set[str]) -> list[dict[str, Any]]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/amperity/")
    keys = sorted(item["Key"] for item in listing.get("Contents", []) if item["Key"].endswith(".json"))
    return [
        orjson.loads(stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=key)["Body"].read())
        for key in keys
        if key not in before
    ]


def report_keys(stack: LocalStack) -> set[str]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/amperity/")
    return {item["Key"] for item in listing.get("Contents", [])}


def drop_and_drain(stack: LocalStack, key: str, body: bytes) -> dict[str, Any]:
    before = report_keys(stack)
    stack.put_object(key, body)
    stack.drain(timeout_s=120)
    (report,) = new_reports(stack, before)
    return report


def assert_results_applied(stack: LocalStack, report: dict[str, Any], prefix: str = "AMP-") -> None:
    assert report["status"] == "completed"
    assert (report["rows_read"], report["rows_rejected"], report["users_missing_in_braze"]) == (5, 1, 1)
    for external_id, expected in EXPECTED.items():
        user = prefix + external_id.removeprefix("AMP-")
        assert attributes(stack, user) == expected, user
    assert attributes(stack, f"{prefix}1004") == {"loyalty_tier": "silver"}  # varchar(20) exceeded: a reject
    assert attributes(stack, f"{prefix}1005") is None  # not in Braze: not created, counted


def test_csv_results_end_as_the_expected_profiles_and_a_second_drop_writes_nothing(stack: LocalStack) -> None:
    # Given Braze knowing four of the five users
    seed_known_users(stack)

    # When Amperity drops its query results
    first = drop_and_drain(
        stack, "inbound/amperity/braze_customer_attributes.csv", EXAMPLE_RESULTS_PATH.read_bytes()
    )

    # Then every known user holds exactly the typed values; the unknown one is counted, not created
    assert_results_applied(stack, first)

    # When the same results are dropped again
    second = drop_and_drain(
        stack, "inbound/amperity/braze_customer_attributes-again.csv", EXAMPLE_RESULTS_PATH.read_bytes()
    )

    # Then nothing is written
    assert (second["users_written"], second["attributes_sent"], second["data_points_sent"]) == (0, 0, 0)
    assert_results_applied(stack, second)


def test_parquet_results_end_as_the_expected_profiles(stack: LocalStack, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the Parquet reader (format: parquet) needs pyarrow")
    from tests.fixtures.amperity.results_parquet import (  # noqa: PLC0415 - needs pyarrow, checked above
        PARQUET_MAPPING_YAML,
        write_results_parquet,
    )

    # Given Braze knowing four of the five users (ids of their own: the dedupe state of the CSV runs
    # holds the AMP- ones) and a feed of the example mapping reading Parquet
    seed_known_users(stack, prefix="PQ-")
    stack.put_object("config/amperity/parquet.yaml", PARQUET_MAPPING_YAML.encode())
    path = write_results_parquet(tmp_path / "braze_customer_attributes.parquet", id_prefix="PQ-")

    # When Amperity drops the results as Parquet
    report = drop_and_drain(
        stack, "inbound/amperity/parquet/braze_customer_attributes.parquet", path.read_bytes()
    )

    # Then the profiles are exactly those of the CSV
    assert_results_applied(stack, report, prefix="PQ-")


def test_an_audience_file_sets_one_attribute_per_audience(stack: LocalStack) -> None:
    seed_known_users(stack)

    report = drop_and_drain(
        stack, "inbound/amperity/audiences/audiences.csv", EXAMPLE_AUDIENCES_PATH.read_bytes()
    )

    assert report["status"] == "completed" and report["users_missing_in_braze"] == 1
    assert attributes(stack, "AMP-1001") == {"loyalty_tier": "silver", "amperity_high_value": True}
    assert attributes(stack, "AMP-1002") == {"amperity_lapsed_buyers": True}
