"""What a run costs in AWS: the requests it made, counted during the run, at on-demand list prices.

The run counts what it does (RunCounters): seconds its invocations ran, users read from and
written to the field-state table (and the write units their items take), send-ledger and
checkpoint requests, S3 requests by price class, and the queue messages that started its
invocations. ``aws_cost`` turns those counts into usage (GB-seconds, request units, requests) and
dollars, in total and per million rows.

Prices: one table, below, with the date they were read. Free tiers are left out (a workspace's
other functions use them up), and so are storage, data transfer and CloudWatch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from cdpbridge.sync.counters import RunCounters


@dataclass(frozen=True, slots=True)
class AwsPrices:
    """On-demand list prices in US dollars, us-east-1, Lambda on arm64 (Graviton)."""

    as_of: str
    region: str
    lambda_gb_second: float
    lambda_request: float
    dynamodb_read_request_unit: float
    dynamodb_write_request_unit: float
    # S3 Standard: PUT, COPY, POST, LIST (class A) and GET, HEAD, SELECT (class B).
    s3_put_request: float
    s3_get_request: float
    sqs_request: float


AWS_PRICES: Final = AwsPrices(
    as_of="2025-01 (DynamoDB on-demand after its November 2024 price reduction)",
    region="us-east-1",
    lambda_gb_second=0.0000133334,  # arm64, first 6 billion GB-seconds a month
    lambda_request=0.20 / 1e6,
    dynamodb_read_request_unit=0.125 / 1e6,
    dynamodb_write_request_unit=0.625 / 1e6,
    s3_put_request=0.005 / 1000,
    s3_get_request=0.0004 / 1000,
    sqs_request=0.40 / 1e6,  # standard queue
)

# A queue message that starts an invocation costs a send, a receive and a delete.
SQS_REQUESTS_PER_MESSAGE: Final = 3


@dataclass(frozen=True, slots=True)
class AwsUsage:
    lambda_gb_seconds: float
    lambda_requests: int
    dynamodb_read_units: float
    dynamodb_write_units: float
    s3_put_requests: int
    s3_get_requests: int
    sqs_requests: int

    @classmethod
    def of(cls, counters: RunCounters, memory_mb: int) -> AwsUsage:
        """Usage from a run's counters. Field-state reads are strongly consistent (one read unit per
        item up to 4 KB: a user's packed digests are far below that); the ledger and checkpoint
        items are small (one unit a request)."""
        return cls(
            lambda_gb_seconds=counters.invocation_seconds * memory_mb / 1024,
            lambda_requests=counters.invocations,
            dynamodb_read_units=float(
                counters.state_users_read + counters.ledger_reads + counters.checkpoint_reads
            ),
            dynamodb_write_units=float(
                counters.state_write_units + counters.ledger_writes + counters.checkpoint_writes
            ),
            s3_put_requests=counters.s3_put_requests,
            s3_get_requests=counters.s3_get_requests,
            sqs_requests=counters.invocations * SQS_REQUESTS_PER_MESSAGE,
        )

    def dollars(self, prices: AwsPrices = AWS_PRICES) -> dict[str, float]:
        parts = {
            "lambda": self.lambda_gb_seconds * prices.lambda_gb_second
            + self.lambda_requests * prices.lambda_request,
            "dynamodb": self.dynamodb_read_units * prices.dynamodb_read_request_unit
            + self.dynamodb_write_units * prices.dynamodb_write_request_unit,
            "s3": self.s3_put_requests * prices.s3_put_request + self.s3_get_requests * prices.s3_get_request,
            "sqs": self.sqs_requests * prices.sqs_request,
        }
        parts["total"] = sum(parts.values())
        return parts


def aws_cost(counters: RunCounters, memory_mb: int, prices: AwsPrices = AWS_PRICES) -> dict[str, Any]:
    """The run's AWS usage and its price, in total and per million rows read."""
    usage = AwsUsage.of(counters, memory_mb)
    dollars = usage.dollars(prices)
    rows = counters.rows_read
    return {
        "memory_mb": memory_mb,
        "usage": {name: round(value, 3) for name, value in asdict(usage).items()},
        "usd": {name: round(value, 6) for name, value in dollars.items()},
        "usd_per_million_rows": {name: round(value / rows * 1e6, 4) for name, value in dollars.items()}
        if rows
        else None,
        "prices": {"as_of": prices.as_of, "region": prices.region, "lambda_architecture": "arm64"},
    }
