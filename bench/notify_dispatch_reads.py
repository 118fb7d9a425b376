"""What one Notify dispatcher run reads from SchedulesTable: items, bytes and read units.

A program of ``--users`` users planned over the 96 fifteen-minute slots of each of three send dates
(yesterday all sent, today sent up to now, tomorrow all planned: the steady state at midday) in a
moto server on 127.0.0.1, and one real dispatcher run at a slot's time, sending that slot through
the Braze emulator. Every Query and UpdateItem of the run is counted; read units follow DynamoDB's
rule (per response: the bytes of the items read, rounded up to 4 KB, 1 unit strongly consistent,
0.5 eventually consistent). Moto answers ConsumedCapacity with a constant, so the bytes are summed
here, by DynamoDB's item size rule (attribute names plus values).

    .venv/bin/python bench/notify_dispatch_reads.py --users 100000 [--legacy-plan] [--json out.json]

``--legacy-plan`` writes the plan as the version before the due index did (no q, no ix): the
dispatcher then reads each date whole, as before.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from bench_state import _free_port
from harness import write_json

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge.integrations.notify.dispatcher import Dispatcher, send_dates_around
from cdpbridge.integrations.notify.program import ProgramConfig
from cdpbridge.integrations.notify.schedules import (
    SCHEDULES_TABLE,
    DynamoDbScheduleStore,
    partition_key,
)
from cdpbridge.state.tables import create_table
from cdpbridge_local.emulator import EmulatorServer

API_KEY = "local-dev-key"
CAMPAIGN_ID = "notify-bench"
SLOTS = 96
TODAY = date(2026, 12, 8)
# Midday: slot 48 of today is due; the earlier ones went out in earlier runs.
NOW_SLOT = 48
BATCH = 25


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process (its CPU is not the dispatcher's); killed when a big table
    keeps it busy past the wait."""
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def slot_time(send_date: date, index: int) -> str:
    moment = datetime.combine(send_date, datetime.min.time(), UTC) + timedelta(minutes=15 * index)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: each attribute's name plus its value (numbers: about a byte per two
    digits, plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, text),) = value.items()
        size += len(str(text).encode()) if kind == "S" else math.ceil(len(str(text).lstrip("-")) / 2) + 1
    return size


class Meter:
    """Counts the run's DynamoDB calls through botocore's events."""

    def __init__(self, client: Any) -> None:
        self.queries: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.read_units: Counter[str] = Counter()
        self.updates = 0
        self._request: dict[str, Any] = {}
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.Query", self._before)
        events.register("after-call.dynamodb.Query", self._query)
        events.register("after-call.dynamodb.UpdateItem", self._update)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        self._request = dict(params)

    def _query(self, parsed: dict[str, Any], **_: Any) -> None:
        where = self._request.get("IndexName", "table")
        page = sum(item_size(item) for item in parsed.get("Items", []))
        self.queries[where] += 1
        self.items[where] += parsed.get("ScannedCount", 0)
        self.bytes[where] += page
        per_4kb = 1.0 if self._request.get("ConsistentRead") else 0.5
        self.read_units[where] += max(1, math.ceil(page / 4096)) * per_4kb

    def _update(self, **_: Any) -> None:
        self.updates += 1

    def reset(self) -> None:
        self.queries.clear()
        self.items.clear()
        self.bytes.clear()
        self.read_units.clear()
        self.updates = 0


def plan_items(users: int, indexed: bool) -> list[dict[str, Any]]:
    """Three dates of the program's plan as the planner and earlier dispatcher runs left them."""
    items = []
    for send_date in (TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1)):
        partition = partition_key("bench", send_date)
        for user in range(users):
            index = user % SLOTS
            at = slot_time(send_date, index)
            done = send_date < TODAY or (send_date == TODAY and index < NOW_SLOT)
            item: dict[str, Any] = {
                "pk": {"S": partition},
                "sk": {"S": f"user-{user:07d}"},
                "at": {"S": at},
                "lt": {"S": at.replace("Z", "+00:00")},
                "b": {"S": "sub_segment"},
                "s": {"S": "sent" if done else "planned"},
                "u": {"N": "1796000000"},
                "expires_at": {"N": "1799000000"},
            }
            if done:
                item["c"] = {"S": "0123456789abcdef0123456789abcdef"}
                item["si"] = {"S": f"notify-bench-{at.replace('-', '').replace(':', '')}"}
            if indexed:
                item["ix"] = {"N": "1"}
                if not done:
                    item["q"] = {"S": partition}
            items.append(item)
    return items


def meter_total(counts: Any) -> list[float]:
    return [float(value) for value in counts.values()]


def load(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), BATCH):
        requests_ = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH]]
        pending: Any = {table: requests_}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


def main(argv: list[str] | None = None) -> int:
    import boto3  # noqa: PLC0415 - only this script needs it

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--legacy-plan", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    indexed = bool(getattr(SCHEDULES_TABLE, "global_indexes", ())) and not args.legacy_plan

    with moto_server() as endpoint, EmulatorServer(host="127.0.0.1", port=0) as emulator:
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        create_table(client, SCHEDULES_TABLE, "schedules")
        started = time.perf_counter()
        load(client, "schedules", plan_items(args.users, indexed))
        load_s = time.perf_counter() - started
        requests.post(
            f"{emulator.url}/_emulator/campaigns",
            json={"campaign_id": CAMPAIGN_ID, "name": "Notify bench"},
            timeout=10,
        ).raise_for_status()

        program = ProgramConfig.model_validate(
            {
                "program": "bench",
                "campaign_id": CAMPAIGN_ID,
                "segment_id": "bench-segment",
                "send_date": TODAY.isoformat(),
                "window": {"start": "00:00", "end": "23:59"},
                "default_time_zone": "UTC",
            }
        )
        meter = Meter(client)
        store = DynamoDbScheduleStore("schedules", client=client)
        braze = BrazeClient(BrazeSettings(rest_endpoint=emulator.url), API_KEY)
        now = datetime.fromisoformat(slot_time(TODAY, NOW_SLOT))
        started = time.perf_counter()
        report = Dispatcher(program, store, braze).dispatch(now, send_dates_around(now))
        run_s = time.perf_counter() - started
        first = {
            "queries": dict(meter.queries),
            "items_read": dict(meter.items),
            "bytes_read": dict(meter.bytes),
            "read_units": dict(meter.read_units),
            "update_items": meter.updates,
        }
        meter.reset()
        # The next run, five minutes later, with nothing due.
        Dispatcher(program, store, braze).dispatch(now + timedelta(minutes=5), send_dates_around(now))
        idle = {
            "queries": dict(meter.queries),
            "items_read": dict(meter.items),
            "read_units": dict(meter.read_units),
        }
        result = {
            "users_per_date": args.users,
            "rows_in_table": 3 * args.users,
            "plan": "from before the due index" if not indexed else "with the due index",
            "due": report.due,
            "sent": report.sent,
            "calls": report.calls,
            "run": first,
            "run_read_units": sum(meter_total(first["read_units"])),
            "run_items_read": sum(meter_total(first["items_read"])),
            "next_run_nothing_due": idle,
            "load_s": round(load_s, 1),
            "run_s": round(run_s, 1),
        }
        # Written before the servers stop: a moto server holding 300,000 rows is slow to stop.
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
