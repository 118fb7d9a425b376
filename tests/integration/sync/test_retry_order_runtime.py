"""The import function's runtime, over moto server and the emulator, when earlier runs left retry
files and a file fans out: part 0 replays them before any other part may send a newer row of the
same users, and starts the other parts once its replay has drained, handing them what failed again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge.records import RowPosition
from cdpbridge.state import value_digest
from cdpbridge.sync.engine import HELD_BEHIND_RETRY
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file
from cdpbridge_local.demo_data import customer_rows, write_customers_csv

from ..emulator_admin import Braze
from . import test_runtime
from .test_runtime import Stack, handle

pytestmark = pytest.mark.integration

# The fixtures of the runtime suite: moto server, and a drop bucket, queue and tables on it.
moto_url = test_runtime.moto_url
stack = test_runtime.stack

ROWS = 16_000
LAST = list(customer_rows(ROWS))[-1]
# The file's last customer: in the last part, far from part 0.
CUSTOMER, TIER = LAST[0], LAST[10]
EARLIER_RUN = "20200101T000000Z-000000000000"
EARLIER_FILE = f"retry/generic/{EARLIER_RUN}.p0.i1.000.jsonl"


def leave_retry_file(stack: Stack, tier: str) -> None:
    """An earlier run could not deliver the customer's move to ``tier``: it waits in a retry file."""
    location = f"s3://{stack.bucket}/inbound/generic/earlier.csv"
    ref = ObjectRef(
        RowPosition(location, 7),
        f"external_id:{CUSTOMER}",
        "attributes",
        {"external_id": CUSTOMER, "loyalty_tier": tier},
        {"loyalty_tier": value_digest(tier)},
        None,
        1,
    )
    entry = RetryEntry(f"{location}@etag0", ref, "unavailable")
    stack.s3.put_object(Bucket=stack.bucket, Key=EARLIER_FILE, Body=encode_retry_file([entry]))


def land_big_file(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    path = write_customers_csv(tmp_path / "c.csv", ROWS)
    assert path.stat().st_size > 2 * 1024 * 1024  # over the fan-out threshold of the stack (1 MiB)
    return stack.put("inbound/generic/huge.csv", path.read_bytes())


def messages(stack: Stack) -> list[dict[str, Any]]:
    return [orjson.loads(body) for body in stack.receive_all()]


def retry_entries(stack: Stack, key: str) -> list[RetryEntry]:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    return list(decode_retry_file(body, key))


def customer_entries(stack: Stack, keys: list[str]) -> list[tuple[str, str]]:
    return [
        (entry.ref.body["loyalty_tier"], entry.reason)
        for key in keys
        for entry in retry_entries(stack, key)
        if entry.ref.body["external_id"] == CUSTOMER
    ]


def test_with_retry_files_pending_part_0_replays_first_and_the_other_parts_hold_what_failed_again(
    stack: Stack, braze: Braze, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an earlier run left the customer's move to an old tier in a retry file
    leave_retry_file(stack, "old-tier")
    # And Braze gives up quickly when it is down
    monkeypatch.setenv("BRAZE_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("BRAZE_RETRY_BASE_DELAY_S", "0.01")
    monkeypatch.setenv("BRAZE_RETRY_MAX_DELAY_S", "0.02")

    # When a file big enough to fan out lands, with a newer row of that customer in its last part
    handle(land_big_file(stack, tmp_path))

    # Then only part 0 is queued, carrying the messages of the other parts
    (zero,) = messages(stack)
    assert zero["type"] == "cdpbridge.part"
    assert zero["part_id"] == "0"
    parts = zero["parts"]
    assert parts >= 3
    waiting = zero["then_parts"]
    assert [message["part_id"] for message in waiting] == [str(n) for n in range(1, parts)]
    assert all(message["type"] == "cdpbridge.part" and message["parts"] == parts for message in waiting)
    assert "held_from" not in zero

    # When part 0 runs while Braze is down: its replay fails again
    braze.configure(faults={"status_503": 1.0})
    handle(zero)
    braze.configure(faults={"status_503": 0.0})

    # Then part 0 queued the other parts, each handed the retry file its replay wrote
    started = messages(stack)
    assert sorted(message["part_id"] for message in started) == [str(n) for n in range(1, parts)]
    replay_file = f"retry/generic/{zero['run_id']}.p0.i1.000.jsonl"
    for message in started:
        assert message["type"] == "cdpbridge.part"
        assert message["held_from"] == [replay_file]
        assert "then_parts" not in message
    assert [tier for tier, _ in customer_entries(stack, [replay_file])] == ["old-tier"]
    assert EARLIER_FILE not in stack.keys("retry/generic/")

    # And when the other parts run, Braze up, the customer's newer row is not sent: it follows the
    # old tier into the last part's retry file
    for message in started:
        handle(message)
    assert messages(stack) == []
    assert braze.user(CUSTOMER) is None
    assert braze.user(list(customer_rows(ROWS))[-2][0]) is not None
    reports = [key for key in stack.keys("reports/generic/") if key.endswith(".json")]
    assert len(reports) == 1
    report = stack.json(reports[0])
    assert report["rows_read"] == ROWS
    assert report["parts"] == parts
    last_part = [key for key in report["retry_files"] if f".p{parts - 1}." in key]
    assert customer_entries(stack, last_part) == [(TIER, HELD_BEHIND_RETRY)]

    # And the next run replays the old tier before the newer one: Braze ends on the file's value
    handle(stack.put("inbound/generic/small.csv", (tmp_path / "c.csv").read_text().splitlines()[0].encode()))
    assert stack.keys("retry/generic/") == []
    assert braze.attributes(CUSTOMER)["loyalty_tier"] == TIER


def test_with_no_retry_files_pending_every_part_is_queued_at_once(stack: Stack, tmp_path: Path) -> None:
    # Given no retry file is pending
    assert stack.keys("retry/") == []

    # When a file big enough to fan out lands
    handle(land_big_file(stack, tmp_path))

    # Then every part is queued at once, none waiting for another or holding anyone
    queued = messages(stack)
    assert len(queued) >= 3
    assert sorted(int(message["part_id"]) for message in queued) == list(range(len(queued)))
    for message in queued:
        assert message["type"] == "cdpbridge.part"
        assert message["parts"] == len(queued)
        assert "then_parts" not in message
        assert "held_from" not in message


def test_part_0_continued_after_its_replay_starts_the_other_parts_once(
    stack: Stack, braze: Braze, tmp_path: Path
) -> None:
    # Given an earlier run left the customer's move to an old tier in a retry file, and a file big
    # enough to fan out with a newer row of that customer
    leave_retry_file(stack, "old-tier")
    handle(land_big_file(stack, tmp_path))
    (zero,) = messages(stack)
    parts = zero["parts"]

    # When part 0 runs close to its deadline: it replays, then stops at a checkpoint
    braze.configure(latency_ms=20)
    handle(zero, seconds_left=5.3)
    braze.configure(latency_ms=0)

    # Then the other parts were started, holding nobody (the replay delivered everything); part 0's
    # continuation still carries them (a replay stopped at the deadline starts them later), but
    # they are started once, below
    queued = messages(stack)
    started = [message for message in queued if message["type"] == "cdpbridge.part"]
    (continuation,) = [message for message in queued if message["type"] == "cdpbridge.continue"]
    assert sorted(message["part_id"] for message in started) == [str(n) for n in range(1, parts)]
    assert all(message["held_from"] == [] for message in started)
    assert continuation["part_id"] == "0"
    assert braze.attributes(CUSTOMER)["loyalty_tier"] == "old-tier"

    # And when part 0 is delivered again and continued to its end, no part is started again
    handle(zero)
    again = messages(stack)
    assert [message["type"] for message in again] in ([], ["cdpbridge.continue"])
    pending = [continuation, *again]
    while pending:
        for message in pending:
            handle(message)
        pending = messages(stack)
        assert all(message["type"] == "cdpbridge.continue" for message in pending)

    # And when the other parts run, the run ends with one report and the customer on the file's value
    for message in started:
        handle(message)
    assert messages(stack) == []
    reports = [key for key in stack.keys("reports/generic/") if key.endswith(".json")]
    assert len(reports) == 1
    assert stack.json(reports[0])["rows_read"] == ROWS
    assert braze.attributes(CUSTOMER)["loyalty_tier"] == TIER
    assert braze.user_count() == ROWS
