"""BlueConic through the template's wiring: a delta dropped into inbound/blueconic/ reaches Braze, and
the export schedule's Input turns a Braze segment into a CSV under outbound/blueconic/, waiting for
Braze across invocations through the function's own queue."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
EXPORT_CONFIG = {
    "segment": {"name": "replaced by the schedule's segment"},
    "identifiers": [{"braze": "external_id", "column": "crm_customer_id"}],
    "fields": [
        {"braze": "first_name", "column": "firstname"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
        {"braze": "custom_attributes.interests", "column": "interests"},
    ],
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        parameters={"BlueConicExportSegment": "Gold and platinum"},
        stack_name="blueconic-e2e",
        # Braze's export waits shortened from minutes to fractions of a second.
        env_vars={
            "BlueConicExportFunction": {
                "EXPORT_POLL_INITIAL_S": "0.2",
                "EXPORT_POLL_MAX_S": "0.5",
                "EXPORT_QUIET_PERIOD_S": "0.3",
                "EXPORT_INLINE_WAIT_MAX_S": "0.3",
            }
        },
        failed_message_visibility_s=0,
    ) as running:
        running.put_object("config/blueconic.yaml", EXAMPLE_MAPPING_PATH.read_bytes())
        running.put_object("config/blueconic-export.yaml", orjson.dumps(EXPORT_CONFIG))
        yield running


def emulator(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    assert stack.emulator is not None
    response = requests.request(method, f"{stack.emulator.url}/_emulator{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def keys(stack: LocalStack, prefix: str) -> list[str]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def text(stack: LocalStack, key: str) -> str:
    body: bytes = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=key)["Body"].read()
    return body.decode("utf-8")


def test_a_delta_reaches_braze_and_the_segment_comes_back_as_a_blueconic_csv(stack: LocalStack) -> None:
    # Given the example delta dropped where BlueConic writes
    stack.put_object("inbound/blueconic/profiles-delta.csv", EXAMPLE_DELTA_PATH.read_bytes())

    # When the queues drain
    stack.drain(timeout_s=120)

    # Then the profiles are in Braze and the run's report in the bucket
    (report_key,) = [key for key in keys(stack, "reports/blueconic/") if key.endswith(".json")]
    report = orjson.loads(text(stack, report_key))
    assert (report["rows_read"], report["rows_rejected"], report["status"]) == (5, 0, "completed")
    anna = emulator(stack, "GET", "/users/CRM-100001")["attributes"]
    assert (anna["first_name"], anna["interests"], anna["bc_visits"]) == ("Anna", ["running", "yoga"], "48")

    # Given a segment of the gold and platinum profiles, and Braze writing exports to the drop bucket
    emulator(
        stack,
        "POST",
        "/segments",
        {
            "name": "Gold and platinum",
            "filter": {"attribute": "loyalty_tier", "op": "in", "value": ["gold", "platinum"]},
        },
    )
    emulator(
        stack,
        "PUT",
        "/config",
        {
            "export_s3": {
                "endpoint_url": stack.moto_url,
                "bucket": stack.drop_bucket,
                "path": "",
                "region": "us-east-1",
            },
            "export_delay_s": 1.0,
        },
    )

    # When the export schedule fires (its Input names the config and the segment) and its
    # continuation messages are delivered
    (schedule,) = stack.schedule_triggers("BlueConicExportFunction")
    assert schedule.enabled
    (first,) = stack.fire_schedule("BlueConicExportFunction")
    assert first.error is None, first.error
    assert first.response["status"] == "waiting"
    stack.drain(timeout_s=120)

    # Then one CSV holds the segment's members, identifier first
    (csv_key,) = keys(stack, "outbound/blueconic/")
    rows = list(csv.reader(io.StringIO(text(stack, csv_key), newline="")))
    assert rows[0] == ["crm_customer_id", "firstname", "loyalty_tier", "interests"]
    assert sorted(rows[1:]) == [
        ["CRM-100001", "Anna", "gold", "running|yoga"],
        ["CRM-100004", "Tom", "platinum", "gaming|music|travel"],
    ]
    (export_report_key,) = keys(stack, "reports/blueconic-export/")
    export_report = orjson.loads(text(stack, export_report_key))
    assert export_report["status"] == "completed"
    assert export_report["segment"]["name"] == "Gold and platinum"
    assert export_report["waits"]["invocations"] >= 2
