"""Cost of the state stores per 1,000 users: value digests, SQLite get_many/apply, and the DynamoDB
stores' client-side CPU and API calls (against a moto server started on 127.0.0.1 in a separate
process, so its own CPU is not counted).

    .venv/bin/python bench/bench_state.py [--users-in-store 20000] [--attributes 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from cdpbridge.state import (
    DynamoDbFieldStateStore,
    DynamoDbSendLedger,
    SqliteFieldStateStore,
    value_digest,
)
from cdpbridge.state.tables import FIELD_STATE_TABLE, RUN_STATE_TABLE, create_table

BATCH_USERS = 1000


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _timed(fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter) -> float:
    started = clock()
    fn()
    return clock() - started


def bench_digest() -> dict[str, float]:
    values: dict[str, Any] = {
        "short string": "gold",
        "integer": 123456,
        "float": 12.5,
        "list of 5 strings": ["a", "bb", "ccc", "dddd", "eeeee"],
        "object of 6 keys": {"f": 1, "e": "x", "d": True, "c": None, "b": 2.5, "a": [1, 2]},
    }
    results: dict[str, float] = {}
    for name, value in values.items():
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(20000):
                value_digest(value)
            rounds.append((time.perf_counter() - started) / 20000)
        results[name] = round(min(rounds) * 1e9)
    return results


def _users(count: int, attributes: int, seed: int) -> dict[str, dict[str, bytes]]:
    return {
        f"external_id:{n}": {f"custom_attribute_{a}": value_digest((seed, n, a)) for a in range(attributes)}
        for n in range(count)
    }


def bench_sqlite(users_in_store: int, attributes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteFieldStateStore(Path(directory) / "state.sqlite3")
        population = _users(users_in_store, attributes, seed=0)
        keys = list(population)
        fill: list[float] = []
        for start in range(0, len(keys), BATCH_USERS):
            chunk = {key: population[key] for key in keys[start : start + BATCH_USERS]}
            fill.append(_timed(partial(store.apply, "ws", chunk)))
        rng = random.Random(7)
        reads, updates, misses = [], [], []
        for round_number in range(10):
            sample = rng.sample(keys, BATCH_USERS)
            reads.append(_timed(partial(store.get_many, "ws", sample)))
            # A typical delta: a quarter of the attributes changed, one forgotten.
            changes: dict[str, dict[str, bytes | None]] = {
                key: {
                    **{
                        f"custom_attribute_{a}": value_digest((round_number, a))
                        for a in range(attributes // 4)
                    },
                    f"custom_attribute_{attributes - 1}": None,
                }
                for key in sample
            }
            updates.append(_timed(partial(store.apply, "ws", changes)))
            unknown = [f"new:{round_number}:{n}" for n in range(BATCH_USERS)]
            misses.append(_timed(partial(store.get_many, "ws", unknown)))
        store.close()
    return {
        "apply_new_users_ms": _median_ms(fill),
        "get_many_existing_ms": _median_ms(reads),
        "get_many_unknown_ms": _median_ms(misses),
        "apply_delta_ms": _median_ms(updates),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
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
        process.wait(timeout=10)


def bench_dynamodb(attributes: int) -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - only this part of the benchmark needs it
    from botocore.config import Config  # noqa: PLC0415

    with moto_server() as endpoint:
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            # As the stores' default client (see cdpbridge.state._dynamo.default_client).
            config=Config(parameter_validation=False),
        )
        calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
        create_table(client, FIELD_STATE_TABLE, "bench-field-state")
        create_table(client, RUN_STATE_TABLE, "bench-run-state")
        dynamo_store = DynamoDbFieldStateStore("bench-field-state", client=client)
        population = _users(BATCH_USERS, attributes, seed=1)
        keys = list(population)
        cpu = time.process_time
        calls.clear()
        first_apply = _timed(partial(dynamo_store.apply, "ws", population), clock=cpu)
        first_apply_calls = dict(calls)
        reads, applies = [], []
        for round_number in range(5):
            calls.clear()
            snapshot = dynamo_store.get_many("ws", keys)
            reads.append(_timed(partial(dynamo_store.get_many, "ws", keys), clock=cpu))
            changes: dict[str, dict[str, bytes | None]] = {
                key: {
                    f"custom_attribute_{a}": value_digest((round_number, a)) for a in range(attributes // 4)
                }
                for key in keys
            }
            calls.clear()
            applies.append(_timed(partial(dynamo_store.apply, "ws", changes, known=snapshot), clock=cpu))
        apply_calls = dict(calls)

        ledger = DynamoDbSendLedger("bench-run-state", client=client)
        event_ids = [f"{row}:e0" for row in range(1, BATCH_USERS + 1)]
        calls.clear()
        for start in range(0, len(event_ids), 75):
            ledger.mark_sent("s3://bench/file.csv@etag", event_ids[start : start + 75])
        mark_calls = dict(calls)
        calls.clear()
        for start in range(0, len(event_ids), 75):
            ledger.already_sent("s3://bench/file.csv@etag", event_ids[start : start + 75])
        check_calls = dict(calls)
        items = client.scan(TableName="bench-run-state", Select="COUNT")["Count"]
    return {
        "field_state_client_cpu_ms": {
            "apply_new_users": round(first_apply * 1000, 1),
            "get_many": _median_ms(reads),
            "apply_delta_with_known": _median_ms(applies),
        },
        "field_state_calls": {"apply_new_users": first_apply_calls, "apply_delta_with_known": apply_calls},
        "ledger_per_1000_events_in_requests_of_75": {
            "mark_sent_calls": mark_calls,
            "already_sent_calls": check_calls,
            "items": items,
            "items_if_one_per_id": len(event_ids),
            "write_calls_if_one_per_id": -(-len(event_ids) // 25),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users-in-store", type=int, default=20000)
    parser.add_argument("--attributes", type=int, default=20)
    parser.add_argument("--skip-dynamodb", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "attributes_per_user": args.attributes,
        "value_digest_ns": bench_digest(),
        f"sqlite_per_{BATCH_USERS}_users": {
            "users_in_store": args.users_in_store,
            **bench_sqlite(args.users_in_store, args.attributes),
        },
    }
    if not args.skip_dynamodb:
        results[f"dynamodb_per_{BATCH_USERS}_users"] = bench_dynamodb(args.attributes)
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
