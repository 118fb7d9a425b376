"""Faults the emulator injects (429, 5xx, HTML 502, dropped connections, slowness) and rate limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cdpbridge.braze import BrazeUnavailableError, TrackCap, TrackOutcome, TrackRequest, TrackRequestBuilder

from .conftest import ClientFactory, EmulatorAdmin

pytestmark = pytest.mark.integration

# Short windows keep a 429's wait-until-reset short.
ONE_SECOND_TRACK_WINDOW = {"users.track": {"limit": 3000, "window_s": 1}}


def let_abandoned_requests_finish(slow_ms: float) -> None:
    """Waits out requests the client gave up on: the emulator still holds them for ``slow_ms`` and
    then counts them against the rate limit window, which would skew the next test's window."""
    time.sleep(slow_ms / 1000 + 0.2)


def requests_of(count: int, prefix: str, users_each: int = 5) -> list[TrackRequest]:
    made = []
    for r in range(count):
        builder = TrackRequestBuilder(TrackCap())
        for n in range(users_each):
            builder.add("attributes", {"external_id": f"{prefix}-{r}-{n}", "r": r}, (r, n))
        request = builder.flush()
        assert request is not None
        made.append(request)
    return made


def track_all(client: Any, requests: list[TrackRequest]) -> list[TrackOutcome]:
    return [client.track(request) for request in requests]


@pytest.mark.parametrize(
    ("fault", "emulator_status", "client_counter"),
    [
        ("status_500", "500", "server_errors"),
        ("status_502_html", "502", "server_errors"),
        ("status_503", "503", "server_errors"),
        ("drop_connection", "dropped", "connection_errors"),
        ("status_429", "429", "rate_limited"),
    ],
)
def test_each_transient_fault_is_retried_until_accepted(
    make_client: ClientFactory, admin: EmulatorAdmin, fault: str, emulator_status: str, client_counter: str
) -> None:
    # Given half of all requests fail with this fault
    admin.configure(seed=11, faults={fault: 0.5}, rate_limits=ONE_SECOND_TRACK_WINDOW)
    client = make_client(rate_limits=ONE_SECOND_TRACK_WINDOW)
    # When 6 requests of 5 users are tracked one after another
    outcomes = track_all(client, requests_of(6, fault))
    # Then every one is accepted in the end, and nothing was applied twice or lost
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 6
    assert admin.count() == 30
    statuses = admin.statuses("users.track")
    assert statuses["201"] == 6
    injected = statuses.get(emulator_status, 0)
    assert injected > 0, "the seed must inject at least one fault"
    # ... and the client's counters agree with what the emulator saw
    stats = client.snapshot()["users.track"]
    assert getattr(stats, client_counter) == injected
    assert stats.retries == injected == sum(outcome.attempts - 1 for outcome in outcomes)
    assert stats.requests == 6 + injected


def test_an_html_502_every_time_ends_in_retries_exhausted_not_a_crash(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(faults={"status_502_html": 1.0})
    client = make_client(
        retry={"max_attempts": 4, "max_elapsed_s": 30, "base_delay_s": 0.01, "max_delay_s": 0.05}
    )
    outcome = client.track(requests_of(1, "html")[0])
    assert outcome.status == "retries_exhausted"
    assert outcome.http_status == 502 and outcome.attempts == 4
    assert "non-JSON body (text/html" in outcome.message
    assert outcome.errors == []
    assert client.snapshot()["users.track"].exhausted == 1
    assert admin.statuses("users.track") == {"502": 4}


def test_connections_dropped_every_time_end_in_retries_exhausted(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(faults={"drop_connection": 1.0})
    client = make_client(
        retry={"max_attempts": 3, "max_elapsed_s": 30, "base_delay_s": 0.01, "max_delay_s": 0.05}
    )
    outcome = client.track(requests_of(1, "dropped")[0])
    assert outcome.status == "retries_exhausted"
    assert outcome.http_status is None and outcome.attempts == 3
    assert "connection failed" in outcome.message
    assert client.snapshot()["users.track"].connection_errors == 3
    assert admin.count() == 0


def test_other_endpoints_raise_unavailable_when_retries_run_out(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(faults={"status_503": 1.0})
    client = make_client(
        retry={"max_attempts": 2, "max_elapsed_s": 30, "base_delay_s": 0.01, "max_delay_s": 0.05}
    )
    with pytest.raises(BrazeUnavailableError) as raised:
        client.export_ids(external_ids=["a"], fields_to_export=["external_id"])
    assert raised.value.attempts == 2 and raised.value.last_status == 503
    assert raised.value.endpoint == "/users/export/ids"


def test_the_elapsed_time_budget_bounds_retries(make_client: ClientFactory, admin: EmulatorAdmin) -> None:
    # Given a budget too small for the second backoff
    admin.configure(faults={"status_500": 1.0})
    client = make_client(
        retry={"max_attempts": 50, "max_elapsed_s": 0.3, "base_delay_s": 0.2, "max_delay_s": 0.2}
    )
    outcome = client.track(requests_of(1, "budget")[0])
    # Then it stops long before 50 attempts, saying why
    assert outcome.status == "retries_exhausted"
    assert outcome.attempts < 10
    assert "retry budget" in outcome.message


def test_slow_answers_within_the_timeout_are_simply_waited_for(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(faults={"slow_p": 1.0, "slow_ms": 300})
    client = make_client(timeout_s=3.0)
    outcome = client.track(requests_of(1, "slow")[0])
    assert outcome.status == "accepted" and outcome.attempts == 1
    assert client.snapshot()["users.track"].timeouts == 0


def test_answers_slower_than_the_timeout_are_retried_then_given_up(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given every answer takes 1 s and the client waits 0.25 s
    admin.configure(faults={"slow_p": 1.0, "slow_ms": 1000})
    client = make_client(
        timeout_s=0.25,
        retry={"max_attempts": 3, "max_elapsed_s": 30, "base_delay_s": 0.01, "max_delay_s": 0.05},
    )
    outcome = client.track(requests_of(1, "timeout")[0])
    # Then each attempt times out and the request ends as retries_exhausted (nothing known processed)
    assert outcome.status == "retries_exhausted" and outcome.http_status is None
    assert outcome.attempts == 3
    assert "no answer within 0.25s" in outcome.message
    assert client.snapshot()["users.track"].timeouts == 3
    let_abandoned_requests_finish(1000)
    assert admin.count() == 0


def test_some_slow_answers_past_the_timeout_still_end_accepted(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    admin.configure(seed=5, faults={"slow_p": 0.5, "slow_ms": 800})
    client = make_client(timeout_s=0.3)
    outcomes = track_all(client, requests_of(4, "mixed"))
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 4
    timeouts = client.snapshot()["users.track"].timeouts
    assert timeouts > 0 and timeouts == sum(outcome.attempts - 1 for outcome in outcomes)
    let_abandoned_requests_finish(800)
    # An abandoned attempt is either dropped or applies the same values: each user exists once.
    assert admin.count() == 20


def test_rate_limit_headers_shrink_the_bucket_so_braze_never_has_to_refuse(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given Braze allows 5 requests a second while the client was configured for 3,000 per 3 s
    admin.configure(rate_limits={"users.track": {"limit": 5, "window_s": 1}})
    client = make_client()
    # When 12 requests go one after another
    outcomes = track_all(client, requests_of(12, "headers", users_each=1))
    # Then the headers taught the client the real limit: no 429 at all, every request accepted
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 12
    assert admin.statuses("users.track") == {"201": 12}
    assert client.rate_limiter.for_family("users.track").capacity == 5
    assert client.snapshot()["users.track"].rate_limited == 0


def test_a_burst_over_brazes_limit_gets_429s_that_are_waited_out(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given Braze allows 8 requests a second and 8 threads send 16 requests at once
    admin.configure(rate_limits={"users.track": {"limit": 8, "window_s": 1}})
    client = make_client()
    requests = requests_of(16, "burst", users_each=2)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(client.track, requests))
    # Then every request is accepted after waiting for Braze's reset
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 16
    assert admin.count() == 32
    statuses = admin.statuses("users.track")
    assert statuses["201"] == 16
    assert client.snapshot()["users.track"].rate_limited == statuses.get("429", 0)
