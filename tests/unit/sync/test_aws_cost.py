"""What a run costs in AWS: counted during the run, priced from the one table of list prices."""

from __future__ import annotations

import pytest

from cdpbridge.sync.aws_cost import AWS_PRICES, SQS_REQUESTS_PER_MESSAGE, AwsUsage, aws_cost
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.job import run_part
from tests.unit.sync.job_helpers import FakeBraze, Workdir, job_request

MAPPING = """
version: 1
identifier: {column: id, as: external_id}
fields:
  - {column: city, attribute: city}
"""


def test_usage_follows_the_counters_and_is_priced_from_the_table() -> None:
    counters = RunCounters(
        rows_read=2_000_000,
        invocations=4,
        invocation_seconds=100.0,
        state_users_read=2_000_000,
        state_write_units=1_000_000,
        ledger_reads=10,
        ledger_writes=20,
        checkpoint_reads=4,
        checkpoint_writes=30,
        s3_get_requests=50,
        s3_put_requests=6,
    )
    usage = AwsUsage.of(counters, memory_mb=2048)
    assert usage.lambda_gb_seconds == 200.0
    assert usage.dynamodb_read_units == 2_000_014
    assert usage.dynamodb_write_units == 1_000_050
    assert usage.sqs_requests == 4 * SQS_REQUESTS_PER_MESSAGE
    dollars = usage.dollars()
    lambda_usd = 200 * AWS_PRICES.lambda_gb_second + 4 * AWS_PRICES.lambda_request
    assert dollars["lambda"] == pytest.approx(lambda_usd)
    assert dollars["dynamodb"] == pytest.approx(
        2_000_014 * AWS_PRICES.dynamodb_read_request_unit + 1_000_050 * AWS_PRICES.dynamodb_write_request_unit
    )
    assert dollars["total"] == pytest.approx(sum(v for k, v in dollars.items() if k != "total"))
    priced = aws_cost(counters, memory_mb=2048)
    assert priced["usd_per_million_rows"]["total"] == pytest.approx(dollars["total"] / 2, abs=1e-4)
    assert priced["prices"]["region"] == "us-east-1"


def test_no_rows_no_price_per_million() -> None:
    assert aws_cost(RunCounters(), memory_mb=1024)["usd_per_million_rows"] is None


def test_every_report_says_what_the_run_asked_of_aws(workdir: Workdir) -> None:
    path = workdir.write("users.csv", "id,city", [f"u{number},Paris" for number in range(10)])
    services = workdir.services(FakeBraze())
    outcome = run_part(job_request(MAPPING, path, "run1"), services)
    assert outcome.report is not None
    counters = outcome.counters
    assert counters.invocations == 1
    assert counters.invocation_seconds > 0
    assert counters.state_users_read == 10
    assert counters.state_users_written == 10
    assert counters.state_write_units == 10
    assert counters.checkpoint_reads == 1
    cost = outcome.report["aws_cost"]
    assert cost["usage"]["dynamodb_write_units"] == 10
    assert cost["usd"]["total"] > 0

    # The same file again: its records are unchanged, so nothing is written
    again = run_part(job_request(MAPPING, path, "run2"), workdir.services(FakeBraze()))
    assert again.counters.state_users_read == 10
    assert again.counters.state_users_written == 0
