"""Every events/ sample reaches its function's handler through the local stack, driven by template.yaml.

A sample is named <code directory>_<trigger>.json (generic_import_s3_sqs.json -> the function whose
CodeUri is functions/generic_import/). It is routed by its content, the way the deployed stack routes
it (an S3 notification by the bucket's prefix filters, any other SQS record by its queue), delivered
through that queue and drained. A schedule's Input carries no routing: it is invoked on the function
whose schedule has an Input of the same shape, as EventBridge delivers it.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "events"
SAMPLES = sorted((ROOT / "events").glob("*.json"))
IMPORT_RUNTIME = ROOT / "layers" / "cdpbridge" / "cdpbridge" / "sync" / "runtime.py"
CURRENTS_FIXTURES = ROOT / ".." / "shared" / "fixtures" / "currents"


def s3_notifications(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The S3 records inside a sample's SQS bodies (none for other samples)."""
    found: list[dict[str, Any]] = []
    for record in event.get("Records") or []:
        body = json.loads(record.get("body") or "null")
        if isinstance(body, dict):
            found += [item for item in body.get("Records") or [] if item.get("eventSource") == "aws:s3"]
    return found


def is_function_url_request(event: dict[str, Any]) -> bool:
    """A Function URL request (payload 2.0): Lambda hands it to the URL's function as it is."""
    return event.get("version") == "2.0" and "http" in (event.get("requestContext") or {})


def is_schedule_input(event: dict[str, Any]) -> bool:
    return (
        "Records" not in event
        and event.get("detail-type") != "Scheduled Event"
        and not is_function_url_request(event)
    )


def sample_files_by_key(event: dict[str, Any]) -> dict[tuple[str, str], Path]:
    """The objects a sample's S3 notifications announce, and the fixture that stands for each."""
    files: dict[tuple[str, str], Path] = {}
    for s3_record in s3_notifications(event):
        bucket = s3_record["s3"]["bucket"]["name"]
        key = unquote_plus(s3_record["s3"]["object"]["key"])
        if key.startswith("currents/"):
            # A Currents key names its event type; Braze's sample file of that type stands for it.
            event_type = key.split("event_type=", 1)[1].split("/", 1)[0]
            files[(bucket, key)] = CURRENTS_FIXTURES / f"{event_type}.avro"
            continue
        integration = key.split("/")[1]
        (files[(bucket, key)],) = FIXTURES.glob(f"{integration}_customers.*")
    return files


def function_for(sample: Path, stack: LocalStack) -> str:
    matches = [
        name for name, spec in stack.functions.items() if sample.stem.startswith(f"{spec.code_dir.name}_")
    ]
    assert len(matches) == 1, f"{sample.name}: expected one function, found {matches}"
    return matches[0]


def sample_bucket() -> str:
    buckets = {
        bucket for sample in SAMPLES for bucket, _ in sample_files_by_key(json.loads(sample.read_text()))
    }
    assert len(buckets) == 1, f"samples name several buckets: {buckets}"
    return buckets.pop()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # The samples' bucket becomes the drop bucket; failing messages dead-letter at once, not after 90 min.
    with LocalStack.start(
        ROOT / "template.yaml",
        {"DropBucketName": sample_bucket(), "MaxReceiveCount": 1, "EnableCurrents": "true"},
        stack_name="event-samples",
        failed_message_visibility_s=0,
    ) as running:
        for mapping in FIXTURES.glob("*_mapping.yaml"):
            integration = mapping.name.removesuffix("_mapping.yaml")
            running.put_object(f"config/{integration}.yaml", mapping.read_bytes())
        yield running


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param(
            path,
            id=path.name,
            marks=[
                pytest.mark.xfail(
                    condition=path.name.startswith("generic_import_") and not IMPORT_RUNTIME.exists(),
                    reason="cdpbridge/sync/runtime.py does not exist yet",
                    strict=True,
                ),
            ],
        )
        for path in SAMPLES
    ],
)
def test_each_sample_reaches_the_handler_of_the_function_its_trigger_feeds(stack: LocalStack, sample: Path):
    # Given the sample and the files it announces, landed in the drop bucket
    event = json.loads(sample.read_text(encoding="utf-8"))
    expected = function_for(sample, stack)
    for (bucket, key), fixture in sample_files_by_key(event).items():
        stack.put_object(key, fixture.read_bytes(), bucket=bucket)
    stack.drain(timeout_s=60)  # the landing's own notification

    if is_function_url_request(event):
        # When the function's URL is requested (Lambda invokes the function with the request)
        first = stack.invoke_record(expected, event)
        assert first.event == event
    elif is_schedule_input(event):
        # When the schedule whose Input has the sample's shape fires it
        (schedule,) = [
            trigger
            for trigger in stack.schedule_triggers()
            if trigger.input is not None
            and set(json.loads(trigger.input)) == set(event)
            # Export schedules of several integrations share the Input's shape: the sample's own.
            and trigger.function_id == expected
        ]
        assert schedule.function_id == expected
        first = stack.invoke_record(expected, event)
        # Then the function got it as EventBridge delivers an Input: as it is
        assert first.event == event
    else:
        # When the sample is routed by its content and delivered through the stack
        routes = stack.route_event(event)
        records = stack.deliver_event(event, timeout_s=60)

        # Then it went to the function its name says, through that function's queue
        assert {route.function_id for route in routes} == {expected}
        assert records, f"{sample.name}: nothing was invoked"
        first = records[0]
        assert first.function_id == expected
        if "Records" in event:
            assert [record["body"] for record in first.event["Records"]] == [
                record["body"] for record in event["Records"]
            ]
        else:
            # A scheduled event, delivered by its rule as it is
            assert first.event == event
    # And the handler ran: the function's init and the runtime did not refuse it
    error_type = (first.error or {}).get("errorType", "")
    assert not error_type.startswith(("Runtime.", "Sandbox.")), f"{sample.name}: {first.error}"
