"""The local stack's chaos switches: killing the busy worker, duplicate deliveries, a shorter timeout."""

import json
import threading
import time
from pathlib import Path

import pytest

from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "stack" / "template.yaml"


def _received(stack: LocalStack) -> list[dict]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="received/")
    return [
        json.loads(stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read())
        for item in listing.get("Contents", [])
    ]


def test_a_killed_invocation_fails_like_a_crash_and_its_message_comes_back():
    with LocalStack.start(
        FIXTURE,
        {"RecorderBatchSize": 1},
        stack_name="chaos-kill",
        with_emulator=False,
        failed_message_visibility_s=1,
        function_timeout_s=20,
    ) as stack:
        assert {spec.timeout_s for spec in stack.functions.values()} == {20}
        # Given a message whose invocation takes a while
        stack.sqs_client.send_message(
            QueueUrl=stack.physical_id("RecorderQueue"), MessageBody=json.dumps({"sleep": 1.5})
        )
        killed: list[str | None] = []

        def kill_once() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                found = stack.kill_busy_worker()
                if found is not None:
                    killed.append(found)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_once)
        killer.start()
        # When its worker is killed in the middle and the queue drains
        records = stack.drain(timeout_s=30)
        killer.join()
        # Then the first invocation ended as a crash (not a timeout) and the message ran again
        assert killed == ["RecorderFunction"]
        recorder = [record for record in records if record.function_id == "RecorderFunction"]
        assert recorder[0].error is not None
        assert recorder[0].error["errorType"] == "Runtime.ExitError"
        assert recorder[-1].ok
        assert stack.kill_busy_worker() is None  # nothing runs between invocations


def test_armed_duplicate_deliveries_send_messages_again_and_count_them():
    with LocalStack.start(FIXTURE, stack_name="chaos-dup", with_emulator=False) as stack:
        duplicates = stack.arm_duplicate_deliveries(0.5, seed=4)
        for index in range(8):
            stack.sqs_client.send_message(
                QueueUrl=stack.physical_id("RecorderQueue"), MessageBody=json.dumps({"n": index})
            )
        stack.drain(timeout_s=30)
        bodies = [record["body"] for document in _received(stack) for record in document["event"]["Records"]]
        delivered = sum(duplicates.delivered.values())
        assert delivered > 0
        assert duplicates.delivered == {"sqs_message": delivered}
        assert len(bodies) == 8 + delivered
        assert sorted(set(bodies)) == sorted(json.dumps({"n": index}) for index in range(8))
