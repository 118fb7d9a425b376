"""Segment webhook and transformer: what a request costs before the queue, and a call in the relay.

Measures, in this process's CPU time: the webhook's whole request handling (size check, HMAC-SHA1
of the body, parse, packing into queue messages) for a single call and for a 100-call batch, the
cost of refusing a wrongly signed 100-call body (hash only), and the Segment transformer's µs per
call (identify with a computed trait). The queue itself is not part of it: it is one SendMessageBatch
per ten messages.

    .venv/bin/python bench/segment_webhook.py [--repeats 2000] [--json out.json]

Prints the figures and a JSON line {"webhook_single_us": ..., "webhook_batch100_us": ...,
"webhook_refused_batch100_us": ..., "segment_transform_us_per_call": ...}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from harness import write_json

from cdpbridge.integrations.segment.transform import SegmentTransformer
from cdpbridge.integrations.segment.webhook import handle_request, sign
from cdpbridge.mapping import load_mapping
from cdpbridge.records import RowPosition, SourceRow

SECRET = b"bench-secret"


class Discard:
    def send(self, messages: Sequence[bytes]) -> None:
        del messages


def call(number: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"personas_{number:012d}",
        "userId": f"user-{number}",
        "timestamp": "2026-12-01T09:00:00.000Z",
        "traits": {"last_product_viewed_item": f"item-{number % 50}"},
        "context": {
            "personas": {
                "computation_class": "trait",
                "computation_key": "last_product_viewed_item",
                "computation_id": "ais_1",
                "space_id": "spa_1",
            }
        },
    }


def event(body: bytes, signature: str) -> dict[str, Any]:
    return {"headers": {"x-signature": signature}, "body": body.decode(), "isBase64Encoded": False}


def per_request_us(request: dict[str, Any], repeats: int) -> float:
    sink = Discard()
    timings = []
    for _ in range(repeats):
        started = time.process_time_ns()
        handle_request(request, secret=SECRET, max_body_bytes=6 * 1024 * 1024, sink=sink)
        timings.append(time.process_time_ns() - started)
    return round(statistics.median(timings) / 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    single = orjson.dumps(call(1))
    batch = orjson.dumps([call(number) for number in range(100)])
    transformer = SegmentTransformer(
        load_mapping("version: 1\nintegration: segment\nsource: {format: jsonl}\n")
    )
    rows = [SourceRow(RowPosition("bench", number + 1), call(number)) for number in range(args.repeats * 10)]
    started = time.process_time_ns()
    for row in rows:
        transformer.map_row(row)
    transform_us = (time.process_time_ns() - started) / 1000 / len(rows)

    figures = {
        "webhook_single_us": per_request_us(event(single, sign(SECRET, single)), args.repeats),
        "webhook_batch100_us": per_request_us(event(batch, sign(SECRET, batch)), args.repeats // 4),
        "webhook_refused_batch100_us": per_request_us(event(batch, "0" * 40), args.repeats // 4),
        "segment_transform_us_per_call": round(transform_us, 2),
    }
    print(f"webhook, 1 call:                {figures['webhook_single_us']:>8} µs a request")
    print(f"webhook, 100-call batch:        {figures['webhook_batch100_us']:>8} µs a request")
    print(f"webhook, refused 100-call body: {figures['webhook_refused_batch100_us']:>8} µs a request")
    print(f"transformer:                    {figures['segment_transform_us_per_call']:>8} µs a call")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
